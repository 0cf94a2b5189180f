//! TOTP multi-factor authentication: enrolment (a secret sealed with the tenant's data key,
//! an `otpauth://` URI and its QR code), backup codes, the second step of sign-in
//! (`mfa_token` + code) and turning MFA off.
//!
//! Invariants:
//! - A TOTP time step is accepted at most once per user: `users.totp_last_step` only moves
//!   forward, in one guarded `UPDATE`, so a code (or two concurrent uses of it) signs in once.
//! - Codes are checked within ±1 step of the data plane's clock, and compared in constant
//!   time (totp-rs compares tokens in constant time; backup codes are looked up by a keyed
//!   digest, never compared as text).
//! - Backup codes are stored only as HMAC-SHA256 digests under a key derived from the
//!   password pepper (which is not in the database), bound to tenant and user: a database
//!   dump alone cannot test guesses against them. Each works once.
//! - An MFA challenge is stored as a digest, is single-use, lives [`CHALLENGE_LIFETIME`] and
//!   dies after [`MAX_CHALLENGE_FAILURES`] wrong codes; it exists only in its tenant's schema,
//!   so it means nothing to another tenant.

pub mod codes;
pub mod routes;
pub mod service;
pub mod store;
pub mod totp;

use shared::envelope::EnvelopeError;
use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

use crate::identity::IdentityError;
use crate::tenancy::data_keys::DataKeyError;

/// Prefix of the token that names an MFA challenge.
pub const CHALLENGE_PREFIX: &str = "tnmf_";
/// How long the second step of a sign-in may take.
pub const CHALLENGE_LIFETIME: time::Duration = time::Duration::minutes(5);
/// Wrong codes after which a challenge is dead (sign in with the password again).
pub const MAX_CHALLENGE_FAILURES: i32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error("{0}")]
    MalformedCode(&'static str),
    #[error("the code is wrong or expired")]
    InvalidCode,
    #[error("this code was already used; wait for the next one")]
    CodeReused,
    #[error("the MFA token is invalid, used or expired; sign in again")]
    InvalidChallenge,
    #[error("the code is wrong or expired")]
    SignInCodeInvalid,
    #[error("this code was already used; wait for the next one")]
    SignInCodeReused,
    #[error("TOTP is already enabled; turn it off first to enrol a new authenticator")]
    AlreadyEnabled,
    #[error("TOTP is not set up: call POST /v1/me/mfa/totp/setup first")]
    SetupRequired,
    #[error("TOTP is not enabled")]
    NotEnabled,
    #[error("this tenant requires MFA for this account; it cannot be turned off")]
    RequiredByPolicy,
    #[error("the password is wrong")]
    WrongPassword,
    #[error("{0}")]
    InvalidInput(&'static str),
    #[error("TOTP: {0}")]
    Totp(String),
    #[error(transparent)]
    Db(#[from] TenantDbError),
    #[error(transparent)]
    DataKey(#[from] DataKeyError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl From<shared::totp::TotpError> for MfaError {
    fn from(error: shared::totp::TotpError) -> Self {
        match error {
            shared::totp::TotpError::Totp(message) => Self::Totp(message),
            shared::totp::TotpError::Envelope(error) => Self::Envelope(error),
        }
    }
}

impl From<tokio_postgres::Error> for MfaError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}

impl From<crate::identity::passwords::PasswordError> for MfaError {
    fn from(error: crate::identity::passwords::PasswordError) -> Self {
        Self::Identity(IdentityError::Password(error))
    }
}

impl From<MfaError> for ApiError {
    fn from(error: MfaError) -> Self {
        let message = error.to_string();
        match error {
            MfaError::MalformedCode(_) => ApiError::bad_request("invalid_code_format", message),
            MfaError::InvalidInput(_) => ApiError::bad_request("invalid_input", message),
            MfaError::InvalidCode => ApiError::bad_request("invalid_mfa_code", message),
            MfaError::CodeReused => ApiError::bad_request("mfa_code_reused", message),
            MfaError::InvalidChallenge => unauthorized("invalid_mfa_token", message),
            MfaError::SignInCodeInvalid => unauthorized("invalid_mfa_code", message),
            MfaError::SignInCodeReused => unauthorized("mfa_code_reused", message),
            MfaError::WrongPassword => unauthorized("invalid_credentials", message),
            MfaError::AlreadyEnabled => ApiError::conflict("totp_already_enabled", message),
            MfaError::SetupRequired => ApiError::conflict("totp_setup_required", message),
            MfaError::NotEnabled => ApiError::conflict("totp_not_enabled", message),
            MfaError::RequiredByPolicy => ApiError::conflict("mfa_required_by_policy", message),
            MfaError::Identity(error) => error.into(),
            MfaError::Db(error) => error.into(),
            MfaError::DataKey(error) => error.into(),
            MfaError::Totp(_) | MfaError::Envelope(_) => ApiError::internal(&error),
        }
    }
}

fn unauthorized(code: &'static str, message: String) -> ApiError {
    ApiError::new(actix_web::http::StatusCode::UNAUTHORIZED, code, message)
}
