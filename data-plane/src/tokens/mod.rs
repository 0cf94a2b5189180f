//! Access tokens (short-lived JWTs signed per tenant), refresh tokens (opaque, rotated on
//! every use) and what publishes the tenant's public keys (JWKS, discovery).
//!
//! Invariants:
//! - A token is accepted only by the tenant that issued it: its signature must verify under
//!   one of *that tenant's* keys (looked up by `kid`), and `iss`, `aud` and `tid` must name
//!   that tenant. A well-formed token of another tenant fails all four.
//! - Only EdDSA is accepted; `alg: none` or any other algorithm is refused before any key is
//!   looked at.

pub mod access;
pub mod refresh;
pub mod routes;
pub mod signing_keys;
mod store;
pub mod verified;

use shared::envelope::EnvelopeError;
use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

use crate::tenancy::data_keys::DataKeyError;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("signing keys unavailable: {0}")]
    Keys(String),
    #[error(transparent)]
    DataKey(#[from] DataKeyError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Db(#[from] TenantDbError),
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// A database that is down or slow is 503 `database_unavailable` (through the tenant context's
/// mapping); anything else about the keys is a logged 500.
impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Db(error) => error.into(),
            TokenError::DataKey(error) => error.into(),
            other => ApiError::internal(&other),
        }
    }
}

impl From<tokio_postgres::Error> for TokenError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}
