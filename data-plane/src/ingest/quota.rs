//! The `events_per_day` quota: telemetry events a tenant may send per UTC day.
//!
//! Each node keeps, per tenant, the day's count: seeded from ClickHouse at its first request
//! of the day (and re-read at most every [`RESEED`], taking the larger of the two, so other
//! nodes' events are seen), plus what this node accepted since. A batch that would go past the
//! quota is refused whole (429 `events_quota_exceeded`); nothing of it is stored. Several
//! nodes can together overshoot by what they accept within one re-read interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use tokio::sync::Mutex;
use uuid::Uuid;

const RESEED: Duration = Duration::from_secs(30);

struct Day {
    /// Days since the epoch (UTC).
    day: i64,
    count: u64,
    seeded_at: Instant,
}

#[derive(Clone)]
pub struct EventsPerDay {
    days: Cache<Uuid, Arc<Mutex<Option<Day>>>>,
}

impl Default for EventsPerDay {
    fn default() -> Self {
        Self {
            days: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        }
    }
}

/// The quota's verdict.
pub enum Admission {
    Admitted,
    /// Over the quota: what was used and the limit.
    Exceeded {
        used: u64,
        limit: u64,
    },
}

impl EventsPerDay {
    /// Takes `events` from the tenant's day if they fit under `limit`. `stored_today` reads
    /// the day's count from ClickHouse (seconds of the day's start given).
    pub async fn admit<F, Fut>(
        &self,
        tenant: Uuid,
        day: i64,
        events: u64,
        limit: u64,
        stored_today: F,
    ) -> Admission
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Option<u64>>,
    {
        let slot = self.days.get_with(tenant, || Arc::new(Mutex::new(None)));
        let mut slot = slot.lock().await;
        let stale = match slot.as_ref() {
            Some(current) => current.day != day || current.seeded_at.elapsed() > RESEED,
            None => true,
        };
        if stale {
            let stored = stored_today().await;
            let kept = slot
                .as_ref()
                .filter(|current| current.day == day)
                .map_or(0, |current| current.count);
            *slot = Some(Day {
                day,
                count: stored.map_or(kept, |stored| stored.max(kept)),
                seeded_at: Instant::now(),
            });
        }
        let Some(current) = slot.as_mut() else {
            return Admission::Exceeded { used: 0, limit };
        };
        if current.count.saturating_add(events) > limit {
            return Admission::Exceeded {
                used: current.count,
                limit,
            };
        }
        current.count += events;
        Admission::Admitted
    }

    /// Gives back events admitted but not queued (the writer refused them).
    pub async fn release(&self, tenant: Uuid, events: u64) {
        if let Some(slot) = self.days.get(&tenant) {
            if let Some(current) = slot.lock().await.as_mut() {
                current.count = current.count.saturating_sub(events);
            }
        }
    }
}
