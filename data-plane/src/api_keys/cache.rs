//! Each node's cache of stored API keys, keyed by (tenant id, prefix), so a request with a
//! key costs an HMAC and no query on a warm cache.
//!
//! Entries are the stored rows (digests, scopes, allow-list, expiry, revocation), never a
//! verdict: the secret, expiry and rotation grace are checked on every request against the
//! injected clock. Entries live at most [`KEY_CACHE_TTL`]; revocation and rotation on any node
//! evict them everywhere through NOTIFY (`api_key:<tenant id>:<prefix>`), and a lost listener
//! connection empties the cache. Unknown prefixes are not cached (a new key's prefix is random,
//! but nothing would evict a "not found" once it exists).
//!
//! A load that raced an eviction does not put the stale row back ([`FreshCache`]).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::input::IpAllowList;
use crate::fresh_cache::FreshCache;
use crate::tenancy::ApiKeyPrincipal;

/// How long a node trusts a cached key row without news.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
const KEYS_CACHED: u64 = 100_000;

/// A key as stored, ready to check a presented secret against.
#[derive(Debug)]
pub struct StoredKey {
    pub secret_hash: Vec<u8>,
    /// The secret replaced by the last rotation, and until when it still works.
    pub previous_secret: Option<(Vec<u8>, OffsetDateTime)>,
    pub allowed_ips: Option<IpAllowList>,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked: bool,
    /// What a request with this key carries in its context.
    pub principal: Arc<ApiKeyPrincipal>,
}

#[derive(Clone)]
pub struct ApiKeyCache {
    keys: FreshCache<(Uuid, String), Arc<StoredKey>>,
}

impl ApiKeyCache {
    pub fn new() -> Self {
        Self {
            keys: FreshCache::new(KEY_CACHE_TTL, KEYS_CACHED),
        }
    }

    /// The cached row of `prefix` in `tenant_id`, or what `load` finds (cached when found).
    pub async fn get_or_load<E>(
        &self,
        tenant_id: Uuid,
        prefix: &str,
        load: impl std::future::Future<Output = Result<Option<StoredKey>, E>>,
    ) -> Result<Option<Arc<StoredKey>>, E> {
        self.keys
            .get_or_load((tenant_id, prefix.to_owned()), async {
                load.await.map(|found| found.map(Arc::new))
            })
            .await
    }

    /// Forgets the key `prefix` of `tenant_id` (revoked or rotated somewhere).
    pub async fn invalidate(&self, tenant_id: Uuid, prefix: &str) {
        self.keys.invalidate(&(tenant_id, prefix.to_owned()));
    }

    /// Drops this node's entry only, to read the key afresh (no eviction happened elsewhere,
    /// so loads in flight need not be discarded).
    pub async fn forget(&self, tenant_id: Uuid, prefix: &str) {
        self.keys.forget(&(tenant_id, prefix.to_owned()));
    }

    pub fn invalidate_all(&self) {
        self.keys.invalidate_all();
    }
}

impl Default for ApiKeyCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn stored(name: &str) -> StoredKey {
        StoredKey {
            secret_hash: vec![1; 32],
            previous_secret: None,
            allowed_ips: None,
            expires_at: None,
            revoked: false,
            principal: Arc::new(ApiKeyPrincipal {
                key_id: Uuid::new_v4(),
                name: name.to_owned(),
                scopes: vec!["usage:read".to_owned()],
                created_by: None,
            }),
        }
    }

    async fn load_count(cache: &ApiKeyCache, tenant: Uuid, loads: &AtomicU64) -> Option<String> {
        cache
            .get_or_load(tenant, "0123456789ab", async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(Some(stored("fresh")))
            })
            .await
            .unwrap()
            .map(|key| key.principal.name.clone())
    }

    #[tokio::test]
    async fn hits_skip_the_load_and_evictions_force_one() {
        let cache = ApiKeyCache::new();
        let tenant = Uuid::new_v4();
        let loads = AtomicU64::new(0);
        assert_eq!(
            load_count(&cache, tenant, &loads).await.as_deref(),
            Some("fresh")
        );
        load_count(&cache, tenant, &loads).await;
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        cache.invalidate(tenant, "0123456789ab").await;
        load_count(&cache, tenant, &loads).await;
        assert_eq!(loads.load(Ordering::SeqCst), 2);
        // Another tenant's entry under the same prefix is a different entry.
        load_count(&cache, Uuid::new_v4(), &loads).await;
        assert_eq!(loads.load(Ordering::SeqCst), 3);
        let missing = cache
            .get_or_load(tenant, "zzzzzzzzzzzz", async { Ok::<_, ()>(None) })
            .await
            .unwrap();
        assert!(missing.is_none());
    }

    #[tokio::test]
    async fn a_load_that_raced_an_eviction_is_not_kept() {
        let cache = ApiKeyCache::new();
        let tenant = Uuid::new_v4();
        let stale = cache
            .get_or_load(tenant, "0123456789ab", async {
                // The revocation's NOTIFY arrives while the row is being read.
                cache.invalidate(tenant, "0123456789ab").await;
                Ok::<_, ()>(Some(stored("stale")))
            })
            .await
            .unwrap();
        assert_eq!(stale.unwrap().principal.name, "stale");
        let loads = AtomicU64::new(0);
        assert_eq!(
            load_count(&cache, tenant, &loads).await.as_deref(),
            Some("fresh")
        );
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }
}
