//! Last-used time and use count of API keys, kept off the request path.
//!
//! A request with a key only adds to an in-memory tally ([`UsageRecorder::record`]); a
//! background task writes each tenant's tallies every [`FLUSH_INTERVAL`] in one `UPDATE` per
//! tenant (`use_count = use_count + n`, `last_used_at = greatest(…)`), so counts from several
//! nodes add up and a late flush never moves `last_used_at` back. A flush that fails is merged
//! back and retried at the next tick (for a minute at most). What a node has not flushed when it stops (at most about
//! one interval of use) is lost: the figures are for people, not for billing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use shared::tenant_context::{TenantDb, TenantScope};
use time::OffsetDateTime;
use uuid::Uuid;

use super::store;

/// How often each node writes its tallies.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Keys tallied at most between flushes; uses of further keys wait for the next interval
/// (bounds memory if the database is down for long).
const MAX_PENDING_KEYS: usize = 100_000;
/// Flushes a tally survives before it is dropped (a tenant deleted meanwhile fails forever).
const MAX_FAILED_FLUSHES: u32 = 60;

struct Tally {
    scope: TenantScope,
    uses: i64,
    last_used_at: OffsetDateTime,
    failed_flushes: u32,
}

type Pending = HashMap<(Uuid, Uuid), Tally>;

#[derive(Clone)]
pub struct UsageRecorder {
    pending: Arc<Mutex<Pending>>,
}

impl UsageRecorder {
    /// A recorder and its flush task, which ends when the last clone of the recorder is gone.
    /// Must run inside a Tokio runtime.
    pub fn spawn(db: TenantDb) -> Self {
        let recorder = Self {
            pending: Arc::new(Mutex::new(HashMap::new())),
        };
        let pending = Arc::downgrade(&recorder.pending);
        tokio::spawn(flush_loop(db, pending));
        recorder
    }

    /// Counts one use of `key_id` of the tenant `scope` at `now`.
    pub fn record(&self, scope: &TenantScope, key_id: Uuid, now: OffsetDateTime) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let full = pending.len() >= MAX_PENDING_KEYS;
        match pending.get_mut(&(scope.tenant_id, key_id)) {
            Some(tally) => {
                tally.uses = tally.uses.saturating_add(1);
                tally.last_used_at = tally.last_used_at.max(now);
            }
            None if full => {}
            None => {
                pending.insert(
                    (scope.tenant_id, key_id),
                    Tally {
                        scope: scope.clone(),
                        uses: 1,
                        last_used_at: now,
                        failed_flushes: 0,
                    },
                );
            }
        }
    }
}

fn merge_back(pending: &Mutex<Pending>, unwritten: Pending) {
    let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
    for (id, mut tally) in unwritten {
        tally.failed_flushes += 1;
        if tally.failed_flushes > MAX_FAILED_FLUSHES {
            continue;
        }
        match pending.get_mut(&id) {
            Some(newer) => {
                newer.uses = newer.uses.saturating_add(tally.uses);
                newer.last_used_at = newer.last_used_at.max(tally.last_used_at);
                newer.failed_flushes = tally.failed_flushes;
            }
            None => {
                pending.insert(id, tally);
            }
        }
    }
}

async fn flush_loop(db: TenantDb, pending: Weak<Mutex<Pending>>) {
    let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(pending) = pending.upgrade() else {
            return; // the data plane is gone
        };
        let taken = std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
        if taken.is_empty() {
            continue;
        }
        let mut by_tenant: HashMap<Uuid, Pending> = HashMap::new();
        for (id, tally) in taken {
            by_tenant.entry(id.0).or_default().insert(id, tally);
        }
        for (tenant_id, tallies) in by_tenant {
            if let Err(error) = flush_tenant(&db, &tallies).await {
                tracing::warn!(%tenant_id, %error, "writing API key usage failed; retrying");
                merge_back(&pending, tallies);
            }
        }
    }
}

async fn flush_tenant(
    db: &TenantDb,
    tallies: &Pending,
) -> Result<(), shared::tenant_context::TenantDbError> {
    let Some(scope) = tallies.values().next().map(|tally| tally.scope.clone()) else {
        return Ok(());
    };
    let mut ids = Vec::with_capacity(tallies.len());
    let mut uses = Vec::with_capacity(tallies.len());
    let mut last_used = Vec::with_capacity(tallies.len());
    for ((_, key_id), tally) in tallies {
        ids.push(*key_id);
        uses.push(tally.uses);
        last_used.push(tally.last_used_at);
    }
    store::add_usage(db, &scope, &ids, &uses, &last_used).await
}
