//! Tenant settings that tenant admins edit (`settings:manage`): the auth policy
//! (`/v1/settings/auth-policy`) and the rotation of the tenant's JWT signing key
//! (`/v1/settings/signing-keys/rotate`).
//!
//! Invariants:
//! - A stored policy always parses and passes `AuthPolicy::validate`: anything else is refused
//!   with 400 `invalid_policy` and nothing is written. Sign-ins read the policy in their own
//!   transaction, so the next one uses a new policy.
//! - A rotation commits the new key and a `keys:<tenant>` notification together; every node
//!   drops its cached keys on commit. The retired key stays published and trusted until the
//!   tokens it signed have expired (`SigningKeys`).

pub mod routes;
pub mod service;
pub mod store;

use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

use crate::tenancy::data_keys::DataKeyError;
use crate::tokens::TokenError;

/// To read and change the tenant's settings.
pub const MANAGE: &str = "settings:manage";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid auth policy: {0}")]
    InvalidPolicy(String),
    #[error(transparent)]
    Db(#[from] TenantDbError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    DataKey(#[from] DataKeyError),
}

impl From<tokio_postgres::Error> for SettingsError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}

impl From<SettingsError> for ApiError {
    fn from(error: SettingsError) -> Self {
        match error {
            SettingsError::InvalidPolicy(_) => {
                ApiError::bad_request("invalid_policy", error.to_string())
            }
            SettingsError::Db(error) => error.into(),
            SettingsError::DataKey(error) => error.into(),
            SettingsError::Token(_) => ApiError::internal(&error),
        }
    }
}
