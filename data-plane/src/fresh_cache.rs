//! A moka cache of rows other nodes may change, evicted by NOTIFY, whose loads cannot put back
//! what an eviction removed while they read.
//!
//! Every eviction bumps an epoch first; a loader inserts what it read and then, if the epoch
//! moved since it started, evicts it again: either the eviction came after the insert (and
//! removed it) or the loader sees the moved epoch. Only found values are cached; "not found" is
//! never remembered, since nothing would evict it once the row appears.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

pub struct FreshCache<K, V> {
    entries: Cache<K, V>,
    epoch: Arc<AtomicU64>,
}

impl<K, V> Clone for FreshCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            epoch: self.epoch.clone(),
        }
    }
}

impl<K, V> FreshCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.entries.get(key)
    }

    /// The cached value of `key`, or what `load` finds (cached when found).
    pub async fn get_or_load<E>(
        &self,
        key: K,
        load: impl std::future::Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E> {
        if let Some(hit) = self.entries.get(&key) {
            return Ok(Some(hit));
        }
        let started = self.epoch.load(Ordering::SeqCst);
        let Some(loaded) = load.await? else {
            return Ok(None);
        };
        self.entries.insert(key.clone(), loaded.clone());
        if self.epoch.load(Ordering::SeqCst) != started {
            // An eviction happened while we read: what we read may predate it.
            self.entries.invalidate(&key);
        }
        Ok(Some(loaded))
    }

    /// Evicts `key` everywhere this node caches it (news from another node).
    pub fn invalidate(&self, key: &K) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(key);
    }

    /// Drops this node's entry only, to read it afresh: no eviction happened elsewhere, so
    /// loads in flight need not be discarded.
    pub fn forget(&self, key: &K) {
        self.entries.invalidate(key);
    }

    /// Evicts every entry `matches` selects (all of one tenant's, say).
    pub fn invalidate_if(&self, matches: impl Fn(&K, &V) -> bool + Send + Sync + 'static) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Err(error) = self.entries.invalidate_entries_if(matches) {
            // Only possible without `support_invalidation_closures`: drop everything instead.
            tracing::error!(%error, "selective cache eviction failed; dropping all");
            self.entries.invalidate_all();
        }
    }

    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_load_racing_an_eviction_is_not_kept_and_misses_are_not_remembered() {
        let cache: FreshCache<u32, u32> = FreshCache::new(Duration::from_secs(60), 100);
        let loaded = cache
            .get_or_load(1, async {
                cache.invalidate(&7);
                Ok::<_, ()>(Some(10))
            })
            .await;
        assert_eq!(loaded, Ok(Some(10)));
        assert_eq!(cache.get(&1), None);
        assert_eq!(
            cache.get_or_load(1, async { Ok::<_, ()>(None) }).await,
            Ok(None)
        );
        assert_eq!(
            cache.get_or_load(1, async { Ok::<_, ()>(Some(11)) }).await,
            Ok(Some(11))
        );
        assert_eq!(cache.get(&1), Some(11));
        cache.invalidate_if(|key, _| *key == 1);
        assert_eq!(cache.get(&1), None);
    }
}
