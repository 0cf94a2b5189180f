//! Single sign-on: each tenant's identity providers (OIDC, generic OAuth2, SAML 2.0), their
//! configuration by tenant admins, email-domain discovery, and the sign-in flows that end in
//! the same session and tokens as a password sign-in (`amr` = the provider kind, `idp` = the
//! provider's name).
//!
//! Invariants:
//! - A sign-in is bound to a server-side login transaction in the serving tenant's schema
//!   (`sso_login_transactions`), found by the SHA-256 of its `state` (or SAML request id),
//!   spent before the IdP's answer is looked at, and at most ten minutes old. A callback at
//!   another tenant, for another provider, or a second time finds nothing.
//! - Client secrets are stored only sealed with the tenant's data key and never returned.
//! - A sign-in an application started returns to one of the tenant's allow-listed redirect
//!   URIs with a one-time code (single use, 60 s) that only the application's PKCE verifier
//!   exchanges for tokens (`handoff`).
//! - A SAML provider without a signing certificate is refused at configuration time (samael
//!   would check no signature at all), and only RSA-SHA256 or stronger is accepted.

pub mod admin;
pub mod client_key;
pub mod departure;
pub mod discovery;
pub mod handoff;
pub mod oauth;
pub mod oidc_metadata;
pub mod presets;
pub mod routes;
pub mod saml;
pub mod saml_encryption;
pub mod settings;
pub mod sign_in;
pub mod store;
pub mod transactions;

use shared::envelope::EnvelopeError;
use shared::error::ApiError;
use shared::sso::SsoConfigError;
use shared::tenant_context::TenantDbError;

use crate::identity::service::TokenResponse;
use crate::identity::IdentityError;
use crate::tenancy::data_keys::DataKeyError;

/// Where a browser sign-in started from the console lands: a console path, and the digest
/// of the secret the starting browser holds (cookie `tenantry_sso`), which the callback must
/// be shown again.
#[derive(Debug, Clone)]
pub struct Landing {
    pub return_to: String,
    pub browser_digest: Vec<u8>,
    /// An admin's test of the provider: nobody is signed in; the result is kept for them.
    pub test: bool,
}

/// Where a finished sign-in goes; its login transaction keeps it from the start.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Whoever calls the callback gets the tokens (JSON).
    Tokens,
    /// The console, signed in, in the browser that started it (or an admin's test).
    Console(Landing),
    /// The application that started it, with a one-time code.
    App(handoff::AppReturn),
}

impl Destination {
    /// An admin's test of the provider (which may not be enabled yet).
    pub fn is_test(&self) -> bool {
        matches!(self, Destination::Console(landing) if landing.test)
    }
}

/// How a callback ended: a sign-in, a code handed to an application, or an admin's test of
/// the provider.
pub enum Outcome {
    SignedIn(SignedIn),
    /// The application's redirect URI with the code and its `state`.
    HandedOff {
        redirect: String,
    },
    /// The test's result, kept under this id (`store::test_result`); where the admin goes.
    Tested {
        result_id: uuid::Uuid,
        landing: Landing,
    },
}

/// A finished SSO sign-in: the session's tokens, and where it lands if the console started it.
pub struct SignedIn {
    pub tokens: TokenResponse,
    pub landing: Option<Landing>,
}

/// Whether `landing` is the browser presenting `browser` (the digest of its `tenantry_sso`
/// cookie, if it sent one), compared in constant time.
pub fn same_browser(landing: &Landing, browser: Option<&[u8]>) -> bool {
    browser.is_some_and(|browser| {
        browser.len() == landing.browser_digest.len()
            && openssl::memcmp::eq(browser, &landing.browser_digest)
    })
}

/// Permission to read the SSO configuration.
pub const READ: &str = "sso:read";
/// Permission to change it.
pub const MANAGE: &str = "sso:manage";

/// How long a login transaction waits for the IdP's answer.
pub const TRANSACTION_LIFETIME: time::Duration = time::Duration::minutes(10);

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("no identity provider with this name")]
    ProviderNotFound,
    #[error(transparent)]
    Config(#[from] SsoConfigError),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidInput(String),
    /// The callback's transaction is unknown, spent, expired or another provider's.
    #[error("the sign-in is unknown, expired or already finished; start again")]
    InvalidState,
    /// A sign-in the console started, finished in another browser (or one without its
    /// cookie): never a session for whoever holds this browser.
    #[error("this sign-in was started in another browser; start it again here")]
    OtherBrowser,
    /// The IdP said no, or what it sent did not pass our checks (detail in the log only).
    #[error("the identity provider's answer was refused")]
    Rejected(String),
    #[error("the identity provider could not be reached or answered badly")]
    ProviderUnavailable(String),
    #[error("a user with this email address exists and this provider may not link to it")]
    AccountExists,
    #[error("the identity provider did not give a usable email address")]
    NoEmail,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("granting these roles needs permissions you do not hold")]
    Escalation(Vec<String>),
    /// An application's start: a redirect URI the tenant does not allow, or a PKCE challenge
    /// missing or not S256.
    #[error("{0}")]
    InvalidAppReturn(String),
    /// A code exchange that fails: unknown, spent, expired, another redirect URI or the wrong
    /// verifier (one answer for all; the code is spent either way).
    #[error("the code is unknown, expired, already used, or does not match this verifier and redirect URI")]
    InvalidGrant,
    #[error(transparent)]
    Db(#[from] TenantDbError),
    /// The admin's permissions could not be loaded (what they may hand out).
    #[error("permission lookup: {0}")]
    Permissions(#[from] ApiError),
    #[error(transparent)]
    DataKey(#[from] DataKeyError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Quota(#[from] crate::quotas::QuotaError),
}

impl From<tokio_postgres::Error> for SsoError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}

impl From<SsoError> for ApiError {
    fn from(error: SsoError) -> Self {
        let message = error.to_string();
        match error {
            SsoError::ProviderNotFound => ApiError::not_found("sso_provider_not_found", message),
            SsoError::Config(error) => error.into(),
            SsoError::InvalidConfig(_) => ApiError::bad_request("invalid_sso_config", message),
            SsoError::InvalidInput(_) => ApiError::bad_request("invalid_input", message),
            SsoError::InvalidState => ApiError::bad_request("invalid_sso_state", message),
            SsoError::OtherBrowser => ApiError::forbidden("sso_other_browser", message),
            SsoError::Rejected(detail) => {
                tracing::warn!(%detail, "SSO answer refused");
                ApiError::new(
                    actix_web::http::StatusCode::UNAUTHORIZED,
                    "sso_rejected",
                    message,
                )
            }
            SsoError::ProviderUnavailable(detail) => {
                tracing::warn!(%detail, "identity provider unavailable");
                ApiError::new(
                    actix_web::http::StatusCode::BAD_GATEWAY,
                    "sso_provider_unavailable",
                    message,
                )
            }
            SsoError::InvalidAppReturn(_) => ApiError::bad_request("invalid_app_return", message),
            SsoError::InvalidGrant => ApiError::bad_request("invalid_grant", message),
            SsoError::AccountExists => ApiError::conflict("sso_account_exists", message),
            SsoError::NoEmail => ApiError::bad_request("sso_no_email", message),
            SsoError::AccountDisabled => ApiError::forbidden("account_disabled", message),
            SsoError::Escalation(missing) => ApiError::forbidden("privilege_escalation", message)
                .with_details(serde_json::json!({ "missing_permissions": missing })),
            SsoError::Identity(error) => error.into(),
            SsoError::Quota(error) => error.into(),
            SsoError::Db(error) => error.into(),
            SsoError::Permissions(error) => error,
            SsoError::DataKey(error) => error.into(),
            SsoError::Envelope(_) => ApiError::internal(&error),
        }
    }
}
