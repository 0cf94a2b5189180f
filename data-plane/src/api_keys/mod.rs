//! API keys: tenant admins create scoped keys for programs (`/v1/admin/api-keys`), and
//! requests authenticate with them (`X-API-Key: tnt_…` or `Authorization: Bearer tnt_…`).
//!
//! Invariants:
//! - The secret is shown once, in the response that creates or rotates it; the tenant's table
//!   holds only its keyed digest ([`key`]).
//! - A key is found by its public prefix in the tenant's own schema, so a key of tenant A
//!   presented to tenant B is simply unknown there (401).
//! - Unknown, malformed, wrong-secret, revoked and expired keys all get the same 401
//!   `invalid_api_key`; only a key that authenticates learns that its source address is
//!   outside its allow-list (403 `ip_not_allowed`).
//! - Nobody hands out more than they hold: every scope of a new key, and of a key being
//!   rotated, must be granted by the caller's own permissions. At request time a key may do
//!   what its scopes grant **and** its creator still holds, and nothing once its creator is
//!   disabled or deleted (checked in `authz::holds`).
//! - Revocation and rotation evict the key from every node's cache through NOTIFY on commit.
//! - Live keys (neither revoked nor expired) never exceed the tenant's `max_api_keys`, even
//!   under concurrent creations (they are serialised by a table lock).

pub mod cache;
pub mod input;
pub mod key;
pub mod routes;
pub mod service;
pub mod store;
pub mod usage;

use shared::envelope::EnvelopeError;
use shared::error::ApiError;
use shared::tenant_context::{TenantDb, TenantDbError};

use self::cache::ApiKeyCache;
use self::usage::UsageRecorder;

/// To create, list, rotate and revoke keys.
pub const MANAGE: &str = "api_keys:manage";

/// What the data plane keeps for API keys: the digest key, the cache of stored keys and the
/// usage tallies.
#[derive(Clone)]
pub struct ApiKeys {
    digest_key: ring::hmac::Key,
    pub cache: ApiKeyCache,
    usage: UsageRecorder,
}

impl ApiKeys {
    /// Starts the usage flush task: must run inside a Tokio runtime.
    pub fn new(digest_key: ring::hmac::Key, db: TenantDb) -> Self {
        Self {
            digest_key,
            cache: ApiKeyCache::new(),
            usage: UsageRecorder::spawn(db),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("no such API key")]
    NotFound,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("'{0}' is not a permission (expected resource:action, e.g. records:read)")]
    InvalidScope(String),
    #[error("'{0}' is not a CIDR range (e.g. 10.0.0.0/8, without host bits set)")]
    InvalidCidr(String),
    #[error("you cannot give a key permissions you do not hold: {}", .0.join(", "))]
    ScopeNotHeld(Vec<String>),
    #[error("the tenant has {limit} live API keys, its limit; revoke one first")]
    QuotaExceeded { limit: i64 },
    #[error("the API key is revoked")]
    Revoked,
    #[error("the API key has expired")]
    Expired,
    #[error(transparent)]
    Db(#[from] TenantDbError),
    #[error(transparent)]
    Random(#[from] EnvelopeError),
    #[error("no free key prefix after several draws")]
    PrefixExhausted,
    /// The guard's own answer (its database being unavailable, say), passed on as it is.
    #[error(transparent)]
    Guard(#[from] ApiError),
}

impl From<ApiKeyError> for ApiError {
    fn from(error: ApiKeyError) -> Self {
        let message = error.to_string();
        match error {
            ApiKeyError::NotFound => ApiError::not_found("api_key_not_found", message),
            ApiKeyError::Invalid { code, .. } => ApiError::bad_request(code, message),
            ApiKeyError::InvalidScope(scope) => ApiError::bad_request("invalid_scope", message)
                .with_details(serde_json::json!({ "scope": scope })),
            ApiKeyError::InvalidCidr(range) => ApiError::bad_request("invalid_cidr", message)
                .with_details(serde_json::json!({ "allowed_ip": range })),
            ApiKeyError::ScopeNotHeld(scopes) => ApiError::forbidden("scope_not_held", message)
                .with_details(serde_json::json!({ "scopes": scopes })),
            ApiKeyError::QuotaExceeded { limit } => ApiError::forbidden("quota_exceeded", message)
                .with_details(serde_json::json!({ "quota": "max_api_keys", "limit": limit })),
            ApiKeyError::Revoked => ApiError::conflict("api_key_revoked", message),
            ApiKeyError::Expired => ApiError::conflict("api_key_expired", message),
            ApiKeyError::Db(error) => error.into(),
            ApiKeyError::Guard(error) => error,
            ApiKeyError::Random(_) | ApiKeyError::PrefixExhausted => ApiError::internal(&error),
        }
    }
}

/// Why a presented key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefused {
    /// Unknown, malformed, wrong secret, revoked or expired: one answer for all.
    #[error("invalid API key")]
    Invalid,
    #[error("the request's source address is not in the key's allow-list")]
    IpNotAllowed,
    #[error(transparent)]
    Db(#[from] TenantDbError),
}

impl From<KeyRefused> for ApiError {
    fn from(refused: KeyRefused) -> Self {
        match refused {
            KeyRefused::Invalid => ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "the API key is invalid, expired or revoked",
            ),
            KeyRefused::IpNotAllowed => ApiError::forbidden(
                "ip_not_allowed",
                "this API key may not be used from this address",
            ),
            KeyRefused::Db(error) => error.into(),
        }
    }
}
