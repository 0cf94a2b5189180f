//! Per-tenant CORS: which browser origins may call a tenant's API. Tenant admins set the
//! allowed origins (`GET`/`PUT /v1/settings/cors`, `settings:manage`); they are stored in the
//! tenant's `settings` table under `cors`.
//!
//! Invariants:
//! - A stored list only holds validated, normalised origins (`scheme://host[:port]`, http or
//!   https, no path, query, credentials or wildcard), at most [`MAX_ORIGINS`]. Anything else
//!   is refused with 400 `invalid_cors` and nothing is written.
//! - Each node caches a tenant's policy (moka, TTL = the tenant cache TTL). A change commits
//!   with a `cors:<tenant id>` notification on `SETTINGS_CHANGED`, and every node drops its
//!   entry when it arrives (the changing node at once).
//! - An origin not on the list gets no CORS headers at all (its preflight is a 403), and one
//!   tenant's list never applies to another: the policy is looked up by the tenant the
//!   request names.

pub mod middleware;
pub mod routes;
pub mod service;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde::{Deserialize, Serialize};
use shared::error::ApiError;
use shared::tenant_context::{TenantDb, TenantDbError, TenantScope};
use uuid::Uuid;

/// The `settings` key the policy is stored under.
pub const SETTINGS_KEY: &str = "cors";
/// Most origins one tenant may allow.
pub const MAX_ORIGINS: usize = 100;
const POLICIES_CACHED: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CorsError {
    #[error("invalid CORS settings: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] TenantDbError),
}

impl From<CorsError> for ApiError {
    fn from(error: CorsError) -> Self {
        match error {
            CorsError::Invalid(_) => ApiError::bad_request("invalid_cors", error.to_string()),
            CorsError::Db(error) => error.into(),
        }
    }
}

/// A tenant's CORS policy: the origins browsers may call its API from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorsPolicy {
    /// Normalised origins, sorted, without duplicates.
    pub allowed_origins: Vec<String>,
}

impl CorsPolicy {
    /// The policy in `submitted` (JSON as sent), validated and normalised.
    pub fn parse(submitted: serde_json::Value) -> Result<Self, CorsError> {
        let raw: CorsPolicy = serde_json::from_value(submitted)
            .map_err(|error| CorsError::Invalid(error.to_string()))?;
        if raw.allowed_origins.len() > MAX_ORIGINS {
            return Err(CorsError::Invalid(format!(
                "at most {MAX_ORIGINS} allowed origins"
            )));
        }
        let mut allowed_origins = raw
            .allowed_origins
            .iter()
            .map(|origin| normalise_origin(origin))
            .collect::<Result<Vec<_>, _>>()?;
        allowed_origins.sort();
        allowed_origins.dedup();
        Ok(Self { allowed_origins })
    }

    /// Whether a browser at `origin` (the `Origin` header as sent) may call the API.
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origins
            .binary_search_by(|allowed| allowed.as_str().cmp(origin))
            .is_ok()
    }
}

/// `raw` as browsers send it in `Origin`: `scheme://host[:port]` in lower case, without a
/// default port. Anything that is not exactly an origin is refused rather than guessed at.
pub fn normalise_origin(raw: &str) -> Result<String, CorsError> {
    let invalid = || {
        CorsError::Invalid(format!(
            "'{raw}' is not an origin: expected scheme://host[:port] with http or https, \
             no path, query, credentials or wildcard (e.g. https://app.example.com)"
        ))
    };
    if raw.len() > 253 + 16 || raw.contains('*') {
        return Err(invalid());
    }
    let url = url::Url::parse(raw).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(invalid());
    }
    let origin = url.origin().ascii_serialization();
    if origin != raw.to_ascii_lowercase() {
        return Err(invalid());
    }
    Ok(origin)
}

/// Every tenant's policy as this node has it cached.
#[derive(Clone)]
pub struct CorsCache {
    policies: Cache<Uuid, Arc<CorsPolicy>>,
}

impl CorsCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            policies: Cache::builder()
                .max_capacity(POLICIES_CACHED)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The tenant's policy, from the cache or its `settings` table.
    pub async fn policy(
        &self,
        tenant_db: &TenantDb,
        scope: &TenantScope,
    ) -> Result<Arc<CorsPolicy>, Arc<TenantDbError>> {
        self.policies
            .try_get_with(scope.tenant_id, async {
                store::load(tenant_db, scope).await.map(Arc::new)
            })
            .await
    }

    pub async fn invalidate(&self, tenant_id: Uuid) {
        self.policies.invalidate(&tenant_id).await;
    }

    pub fn invalidate_all(&self) {
        self.policies.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn origins_are_normalised_and_anything_else_is_refused() {
        assert_eq!(
            normalise_origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            normalise_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "https://*.example.com",
            "*",
            "ftp://app.example.com",
            "app.example.com",
            "https://app.example.com:443",
            "null",
            "",
        ] {
            assert!(normalise_origin(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_policy_allows_exactly_its_origins() {
        let policy = CorsPolicy::parse(json!({
            "allowed_origins": ["https://b.example.com", "https://a.example.com", "https://a.example.com"]
        }))
        .unwrap();
        assert_eq!(
            policy.allowed_origins,
            ["https://a.example.com", "https://b.example.com"]
        );
        assert!(policy.allows("https://a.example.com"));
        assert!(!policy.allows("https://c.example.com"));
        assert!(!policy.allows("http://a.example.com"));
        assert!(CorsPolicy::parse(json!({"allowed_origins": "x"})).is_err());
        assert!(CorsPolicy::parse(json!({"origins": []})).is_err());
    }
}
