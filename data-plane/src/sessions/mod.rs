//! Sessions: one per sign-in, listed and ended by their user, limited per tenant policy.
//!
//! Access tokens name their session (`sid`); a request is served only while that session is
//! live. Each node caches "is this session live" for a minute at most, and drops the entry the
//! moment any node announces the session's end (NOTIFY on commit of the revocation), so a
//! revoked session stops working everywhere within milliseconds. Idle timeout is measured
//! between refreshes: a session whose refresh token was not used for the idle period cannot
//! be refreshed, and its last access token dies at its own expiry.

pub mod routes;
pub mod service;
pub mod store;

use std::time::Duration;

use moka::future::Cache;
use shared::tenant_context::{TenantDb, TenantDbError, TenantScope};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
struct LiveSession {
    user_id: Uuid,
    expires_at: OffsetDateTime,
}

#[derive(Clone)]
pub struct SessionCache {
    cache: Cache<(Uuid, Uuid), Option<LiveSession>>,
}

impl SessionCache {
    pub fn new() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }

    /// Whether `session_id` of `user_id` is live at `now`.
    pub async fn is_live(
        &self,
        db: &TenantDb,
        scope: &TenantScope,
        session_id: Uuid,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<bool, TenantDbError> {
        let entry = self
            .cache
            .try_get_with((scope.tenant_id, session_id), async {
                let live = store::live_session(db, scope, session_id).await?;
                Ok::<_, TenantDbError>(live.map(|(user_id, expires_at)| LiveSession {
                    user_id,
                    expires_at,
                }))
            })
            .await
            .map_err(|error| match std::sync::Arc::try_unwrap(error) {
                Ok(error) => error,
                Err(_) => TenantDbError::Closed,
            })?;
        Ok(entry.is_some_and(|live| live.user_id == user_id && live.expires_at > now))
    }

    pub async fn forget(&self, tenant_id: Uuid, session_id: Uuid) {
        self.cache.invalidate(&(tenant_id, session_id)).await;
    }

    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new()
    }
}
