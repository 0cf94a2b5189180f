//! Account flows that go through the user's mailbox: self-registration with email
//! verification, resending the verification, and password reset.
//!
//! Invariants:
//! - A mailed token and its mail are written in one tenant transaction (`mail::enqueue`), so
//!   a token exists only with its mail queued, and a mail only for a stored token.
//! - Tokens are stored as digests (`user_tokens`); the clear token is only in the mail body,
//!   never in a log line, an error or a response.
//! - The answers of register, resend and reset never tell whether an address has an account:
//!   the same status and body either way, after the same password hashing for registration.
//! - At most [`service::MAILS_PER_HOUR`] account mails per address and purpose per hour; more
//!   requests are answered the same and send nothing (no mail-bombing through these
//!   endpoints).

pub mod routes;
pub mod service;
pub mod store;

use shared::envelope::EnvelopeError;
use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

use crate::identity::passwords::PasswordError;
use crate::mail::{EnqueueError, InvalidMail};
use crate::quotas::QuotaError;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("this tenant does not allow self sign-up; ask an administrator for an invitation")]
    SelfSignupDisabled,
    #[error("the token is invalid, used or expired")]
    InvalidToken,
    #[error("the password does not meet the tenant's policy")]
    WeakPassword(Vec<String>),
    #[error("not a valid email address")]
    InvalidEmail,
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error(transparent)]
    Db(#[from] TenantDbError),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    #[error(transparent)]
    Mail(#[from] InvalidMail),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Random(#[from] EnvelopeError),
}

impl From<tokio_postgres::Error> for AccountsError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}

impl From<AccountsError> for ApiError {
    fn from(error: AccountsError) -> Self {
        let message = error.to_string();
        match error {
            AccountsError::SelfSignupDisabled => {
                ApiError::forbidden("self_signup_disabled", message)
            }
            AccountsError::InvalidToken => ApiError::bad_request("invalid_token", message),
            AccountsError::WeakPassword(rules) => ApiError::bad_request("password_policy", message)
                .with_details(serde_json::json!({ "failed_rules": rules })),
            AccountsError::InvalidEmail => ApiError::bad_request("invalid_email", message),
            AccountsError::InvalidInput(_) => ApiError::bad_request("invalid_input", message),
            AccountsError::Quota(error) => error.into(),
            AccountsError::Db(error) => error.into(),
            AccountsError::Enqueue(error) => error.into(),
            AccountsError::Password(error) => error.into(),
            AccountsError::Mail(_) | AccountsError::Random(_) => ApiError::internal(&error),
        }
    }
}
