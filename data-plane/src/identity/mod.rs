//! Identity: the tenant's users, their passwords and how they sign in — activation of the
//! first password, password sign-in with lockout, token refresh, password change, `/v1/me`.
//!
//! Everything lives in the tenant's own schema, so two tenants may each have a user with the
//! same email address and never see each other.

pub mod hash_gate;
pub mod passwords;
pub mod policy;
pub mod routes;
pub mod service;
pub mod store;

use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

use crate::tokens::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("too many failed sign-ins for this address; try again in {retry_after} seconds")]
    Locked { retry_after: u64 },
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("this account's email address is not verified yet")]
    EmailNotVerified,
    #[error("the token is invalid, used or expired")]
    InvalidToken,
    #[error("the password does not meet the tenant's policy")]
    WeakPassword(Vec<String>),
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    #[error("this refresh token was just used by another request; use the tokens it received")]
    RefreshAlreadyUsed,
    #[error("this refresh token was used before; the session has been ended")]
    RefreshReused,
    #[error("{0}")]
    InvalidInput(String),
    #[error("addresses of this domain sign in through single sign-on")]
    SsoRequired { provider: String },
    #[error(transparent)]
    Db(#[from] TenantDbError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Password(#[from] passwords::PasswordError),
}

impl From<tokio_postgres::Error> for IdentityError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        let message = error.to_string();
        match error {
            IdentityError::InvalidCredentials => ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                message,
            ),
            IdentityError::Locked { retry_after } => {
                ApiError::too_many_requests("login_locked", message).with_retry_after(retry_after)
            }
            IdentityError::AccountDisabled => ApiError::forbidden("account_disabled", message),
            IdentityError::EmailNotVerified => ApiError::forbidden("email_not_verified", message),
            IdentityError::InvalidToken => ApiError::bad_request("invalid_token", message),
            IdentityError::WeakPassword(rules) => ApiError::bad_request("password_policy", message)
                .with_details(serde_json::json!({ "failed_rules": rules })),
            IdentityError::InvalidRefreshToken | IdentityError::RefreshReused => ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                if matches!(error, IdentityError::RefreshReused) {
                    "refresh_token_reused"
                } else {
                    "invalid_grant"
                },
                message,
            ),
            IdentityError::RefreshAlreadyUsed => {
                ApiError::conflict("refresh_token_already_used", message)
            }
            IdentityError::InvalidInput(_) => ApiError::bad_request("invalid_input", message),
            IdentityError::SsoRequired { provider } => ApiError::forbidden("sso_required", message)
                .with_details(serde_json::json!({
                    "provider": provider,
                    "start_url": format!("/v1/auth/sso/{provider}/start"),
                })),
            IdentityError::Db(error) => error.into(),
            IdentityError::Password(error) => error.into(),
            IdentityError::Token(_) => ApiError::internal(&error),
        }
    }
}
