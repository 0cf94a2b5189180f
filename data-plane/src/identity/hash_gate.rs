//! Admission to password hashing: how many argon2id computations run at once, how many
//! requests may wait for one, how much of that one tenant may take, and the memory they run
//! in.
//!
//! An argon2id computation holds 19 MiB and a core for tens of milliseconds. Sent to
//! `spawn_blocking` with no bound, a flood of 1,000 wrong-password sign-ins ran hundreds of
//! them at once: the node went to 7.9 GB of memory it never gave back (glibc kept the
//! freed arenas), and hundreds of hashing threads took the cores from the HTTP workers, so
//! other tenants' reads starved.
//!
//! What the gate guarantees:
//! - At most `concurrency` computations run at once. Each runs in memory leased from the
//!   gate, which keeps at most one buffer per permit and reuses it. Hashing memory is at most
//!   `concurrency × 19 MiB` and is never handed back to the allocator to fragment.
//! - A computation keeps its permit until it finishes, even when the request that started it
//!   is gone: a client that hangs up cannot start more work than there are permits.
//! - At most `concurrency + queue` requests are admitted to password work at once, and one
//!   tenant at most `concurrency + queue / 2`. A flood from one tenant can use every core, but
//!   leaves the other tenants at least half of the queue.
//! - A request that finds no room is refused at once; one that waits longer than `wait` for
//!   a permit is refused then. Either way it gets [`Busy`] (503 `credential_check_busy` with
//!   `Retry-After`), no work was done and nothing changed. Admission is a counter check under
//!   a lock never held across an await, and callers ask for it before their first database
//!   step, so a refused request costs no connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use argon2::Block;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// How long an admitted request waits for a permit by default.
pub const DEFAULT_WAIT_MS: u64 = 2000;

/// How much password hashing a node admits (config `password_hash_concurrency`,
/// `password_hash_queue`, `password_hash_wait_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// Computations running at once.
    pub concurrency: usize,
    /// Requests admitted beyond those running, waiting for a permit.
    pub queue: usize,
    /// Longest an admitted request waits for a permit.
    pub wait: Duration,
}

impl HashLimits {
    /// The defaults for a node with `cores` cores: a computation per core but one (at least
    /// one), so that a flood of sign-ins leaves a core to the HTTP workers and Postgres
    /// answering everyone else. Measured on two cores (docs/benchmarks.md), one permit instead
    /// of two cost a fifth of the sign-ins per second under a flood and cut other tenants'
    /// read p99 from 10-16x idle to 4-5x.
    pub fn for_cores(cores: usize) -> Self {
        Self::with_concurrency(cores.saturating_sub(1).max(1))
    }

    /// `concurrency` permits with the default queue (four waiting per permit) and wait.
    pub fn with_concurrency(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            concurrency,
            queue: 4 * concurrency,
            wait: Duration::from_millis(DEFAULT_WAIT_MS),
        }
    }

    /// Requests admitted to password work at once, over all tenants.
    pub fn admitted(&self) -> usize {
        self.concurrency + self.queue
    }

    /// Requests one tenant may have admitted at once: every permit and half of the queue.
    pub fn per_tenant(&self) -> usize {
        self.concurrency + self.queue / 2
    }
}

/// No room for more password work now; retrying after `retry_after_seconds` can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks are in progress")]
pub struct Busy {
    /// What `Retry-After` says: the client's turn in its tenant's line ([`Pace`]); one second
    /// when there is no line.
    pub retry_after_seconds: u64,
}

/// The longest `Retry-After` the gate gives.
pub const MAX_RETRY_AFTER_SECONDS: u64 = 30;

/// When to tell a refused client to come back.
///
/// A constant `Retry-After: 1` told 1,000 clients that honour it to come back together every
/// second or so: the node refused ~600 sign-ins a second that it could not check, and each
/// refusal (routed, audited, answered) took CPU from every other tenant. Instead the gate
/// hands out turns, as a ticket queue would: each refused request of a tenant is given the
/// next free moment in that tenant's line, one check's worth of time after the one before
/// (the time a computation holds a permit, averaged, over the permits). A burst of refusals is
/// spread over the time the gate needs to check them all, a refusal with no crowd before it
/// is told one second, and a client that ignores its turn moves the line on only by its own
/// place, up to [`MAX_RETRY_AFTER_SECONDS`].
///
/// Lines are per tenant, because a tenant's admission is: one tenant's crowd does not make
/// another tenant's users wait. A line whose last turn has passed is forgotten (looked for
/// at most once a second, so a flood over many tenants costs no scan per refusal).
#[derive(Debug)]
struct Pace {
    seconds_per_check: f64,
    next_turn: HashMap<Uuid, Instant>,
    last_pruned: Option<Instant>,
}

impl Pace {
    /// What a computation is taken to cost before one has been measured (argon2id at
    /// 19 MiB takes 25-60 ms on the machines we measured).
    const FIRST_GUESS_SECONDS_PER_CHECK: f64 = 0.05;

    fn new() -> Self {
        Self {
            seconds_per_check: Self::FIRST_GUESS_SECONDS_PER_CHECK,
            next_turn: HashMap::new(),
            last_pruned: None,
        }
    }

    /// A computation held a permit for `took`.
    fn finished(&mut self, took: Duration) {
        self.seconds_per_check = 0.9 * self.seconds_per_check + 0.1 * took.as_secs_f64();
    }

    /// A request of `tenant` was refused at `now`; the seconds until its turn.
    fn refused(&mut self, tenant: Uuid, now: Instant, concurrency: usize) -> u64 {
        let max = Duration::from_secs(MAX_RETRY_AFTER_SECONDS);
        let prune = self
            .last_pruned
            .is_none_or(|last| now.saturating_duration_since(last) >= Duration::from_secs(1));
        if prune {
            self.next_turn.retain(|_, turn| *turn > now);
            self.last_pruned = Some(now);
        }
        // A line whose last turn has passed (pruned or not yet) starts again from now.
        let turn = self
            .next_turn
            .get(&tenant)
            .copied()
            .filter(|turn| *turn > now)
            .unwrap_or(now)
            .min(now + max);
        let step = Duration::from_secs_f64(self.seconds_per_check / concurrency.max(1) as f64);
        self.next_turn.insert(tenant, (turn + step).min(now + max));
        let wait = turn.saturating_duration_since(now).as_secs_f64().ceil() as u64;
        wait.clamp(1, MAX_RETRY_AFTER_SECONDS)
    }
}

/// The gate; clones share it.
#[derive(Clone)]
pub struct HashGate {
    inner: Arc<Inner>,
}

struct Inner {
    limits: HashLimits,
    permits: Arc<Semaphore>,
    admitted: Mutex<Admitted>,
    pace: Mutex<Pace>,
    /// Buffers of `blocks` blocks not in use right now (at most one per permit).
    memory: Mutex<Vec<Box<[Block]>>>,
    blocks: usize,
}

#[derive(Default)]
struct Admitted {
    total: usize,
    per_tenant: HashMap<Uuid, usize>,
}

/// A poisoned lock only means another thread panicked while holding it; the counters it
/// guards are updated in single statements, so they are still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl HashGate {
    /// A gate admitting work within `limits`, each computation in `blocks` argon2 blocks of
    /// 1 KiB (the hasher's memory cost).
    pub fn new(limits: HashLimits, blocks: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                limits,
                permits: Arc::new(Semaphore::new(limits.concurrency)),
                admitted: Mutex::new(Admitted::default()),
                pace: Mutex::new(Pace::new()),
                memory: Mutex::new(Vec::new()),
                blocks,
            }),
        }
    }

    pub fn limits(&self) -> HashLimits {
        self.inner.limits
    }

    /// Admits a request of `tenant` to password work, or refuses it when the node or the
    /// tenant has no room left. The ticket holds the place until it is dropped.
    pub fn admit(&self, tenant: Uuid) -> Result<HashTicket, Busy> {
        let limits = self.inner.limits;
        let mut admitted = lock(&self.inner.admitted);
        let of_tenant = admitted.per_tenant.get(&tenant).copied().unwrap_or(0);
        if admitted.total >= limits.admitted() || of_tenant >= limits.per_tenant() {
            drop(admitted);
            return Err(self.busy(tenant));
        }
        admitted.total += 1;
        admitted.per_tenant.insert(tenant, of_tenant + 1);
        Ok(HashTicket {
            gate: self.inner.clone(),
            tenant,
        })
    }

    /// Waits (at most the configured `wait`) for a permit to run one computation for the
    /// holder of `ticket`.
    pub async fn lease(&self, ticket: &HashTicket) -> Result<Lease, Busy> {
        debug_assert!(Arc::ptr_eq(&ticket.gate, &self.inner));
        let acquire = self.inner.permits.clone().acquire_owned();
        let permit = match tokio::time::timeout(self.inner.limits.wait, acquire).await {
            Ok(Ok(permit)) => permit,
            // Timed out, or the semaphore was closed (it never is).
            Ok(Err(_)) | Err(_) => return Err(self.busy(ticket.tenant)),
        };
        let memory = lock(&self.inner.memory).pop();
        Ok(Lease {
            since: Instant::now(),
            memory,
            oversized: None,
            gate: self.inner.clone(),
            _permit: permit,
        })
    }

    /// A refusal of `tenant`'s request now, with its turn in the tenant's line.
    fn busy(&self, tenant: Uuid) -> Busy {
        let concurrency = self.inner.limits.concurrency;
        let retry_after_seconds =
            lock(&self.inner.pace).refused(tenant, Instant::now(), concurrency);
        Busy {
            retry_after_seconds,
        }
    }

    /// Computations holding a permit now.
    pub fn running(&self) -> usize {
        self.inner.limits.concurrency - self.inner.permits.available_permits()
    }

    /// Requests admitted now, over all tenants and for `tenant`.
    pub fn admitted(&self, tenant: Uuid) -> (usize, usize) {
        let admitted = lock(&self.inner.admitted);
        let of_tenant = admitted.per_tenant.get(&tenant).copied().unwrap_or(0);
        (admitted.total, of_tenant)
    }
}

/// A request's place among those admitted to password work; dropping it frees the place.
pub struct HashTicket {
    gate: Arc<Inner>,
    tenant: Uuid,
}

impl Drop for HashTicket {
    fn drop(&mut self) {
        let mut admitted = lock(&self.gate.admitted);
        admitted.total = admitted.total.saturating_sub(1);
        if let Some(count) = admitted.per_tenant.get_mut(&self.tenant) {
            *count -= 1;
            if *count == 0 {
                admitted.per_tenant.remove(&self.tenant);
            }
        }
    }
}

/// The right to run one computation, and the memory to run it in. Moved into the blocking
/// task, so the permit is held until the computation ends whatever happens to the request.
pub struct Lease {
    since: Instant,
    memory: Option<Box<[Block]>>,
    oversized: Option<Box<[Block]>>,
    gate: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    /// Memory for a computation of `blocks` blocks: the gate's buffer, made at its first use.
    /// Its earlier contents do not matter: argon2 writes every block before reading it.
    ///
    /// A stored hash made with a higher memory cost than today's needs more than that; it gets
    /// a buffer of its own, freed when the lease ends (the caller bounds how large).
    pub fn memory(&mut self, blocks: usize) -> &mut [Block] {
        let standard = self.gate.blocks;
        if blocks > standard {
            return self
                .oversized
                .insert(vec![Block::new(); blocks].into_boxed_slice());
        }
        self.memory
            .get_or_insert_with(|| vec![Block::new(); standard].into_boxed_slice())
    }
}

impl Drop for Lease {
    /// The buffer goes back before the permit is released (fields drop after this body), so
    /// the next holder of the permit finds it.
    fn drop(&mut self) {
        lock(&self.gate.pace).finished(self.since.elapsed());
        if let Some(memory) = self.memory.take() {
            lock(&self.gate.memory).push(memory);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> Busy {
        Busy {
            retry_after_seconds: 1,
        }
    }

    fn gate(concurrency: usize, queue: usize) -> HashGate {
        HashGate::new(
            HashLimits {
                concurrency,
                queue,
                wait: Duration::from_millis(50),
            },
            8,
        )
    }

    #[test]
    fn defaults_leave_a_core_to_the_rest_of_the_node() {
        let limits = HashLimits::for_cores(5);
        assert_eq!((limits.concurrency, limits.queue), (4, 16));
        assert_eq!((limits.admitted(), limits.per_tenant()), (20, 12));
        for cores in [0, 1, 2] {
            assert_eq!(HashLimits::for_cores(cores).concurrency, 1);
        }
        assert_eq!(HashLimits::with_concurrency(3).queue, 12);
    }

    #[test]
    fn one_tenant_gets_every_permit_and_half_the_queue_and_others_keep_the_rest() {
        let gate = gate(2, 4);
        let (flooding, other) = (Uuid::new_v4(), Uuid::new_v4());
        let held: Vec<HashTicket> = (0..4).map(|_| gate.admit(flooding).unwrap()).collect();
        assert_eq!(
            gate.admit(flooding).err(),
            Some(busy()),
            "over the tenant's share"
        );
        let others: Vec<HashTicket> = (0..2).map(|_| gate.admit(other).unwrap()).collect();
        assert_eq!(gate.admitted(flooding), (6, 4));
        assert_eq!(
            gate.admit(Uuid::new_v4()).err(),
            Some(busy()),
            "the node is full"
        );

        drop(others);
        assert_eq!(gate.admitted(other), (4, 0));
        assert_eq!(
            gate.admit(flooding).err(),
            Some(busy()),
            "still at its share"
        );
        drop(held);
        assert_eq!(gate.admitted(flooding), (0, 0));
        assert!(
            gate.admit(flooding).is_ok(),
            "places come back when tickets drop"
        );
    }

    #[test]
    fn with_no_queue_a_tenant_may_still_use_every_permit() {
        let gate = gate(2, 0);
        let tenant = Uuid::new_v4();
        let _held = (gate.admit(tenant).unwrap(), gate.admit(tenant).unwrap());
        assert_eq!(gate.admit(tenant).err(), Some(busy()));
        assert_eq!(gate.admit(Uuid::new_v4()).err(), Some(busy()));
    }

    #[tokio::test]
    async fn a_waiter_past_the_deadline_is_refused_and_the_next_one_gets_the_freed_permit() {
        let gate = gate(1, 2);
        let tenant = Uuid::new_v4();
        let (first, second) = (gate.admit(tenant).unwrap(), gate.admit(tenant).unwrap());
        let running = gate.lease(&first).await.unwrap();
        assert_eq!(gate.lease(&second).await.err(), Some(busy()));
        drop(running);
        assert!(gate.lease(&second).await.is_ok());
    }

    #[tokio::test]
    async fn buffers_are_reused_never_more_than_one_per_permit() {
        let gate = gate(2, 0);
        let tenant = Uuid::new_v4();
        let tickets = (gate.admit(tenant).unwrap(), gate.admit(tenant).unwrap());
        for _ in 0..5 {
            let mut leases = (
                gate.lease(&tickets.0).await.unwrap(),
                gate.lease(&tickets.1).await.unwrap(),
            );
            let first = leases.0.memory(8).as_ptr();
            let second = leases.1.memory(8).as_ptr();
            assert_ne!(first, second);
            drop(leases);
            assert_eq!(lock(&gate.inner.memory).len(), 2);
        }
        // A larger computation gets a buffer of its own, which is not kept.
        let mut lease = gate.lease(&tickets.0).await.unwrap();
        assert_eq!(lease.memory(16).len(), 16);
        drop(lease);
        let kept = lock(&gate.inner.memory);
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|buffer| buffer.len() == 8));
    }

    /// A pace whose checks take `millis` each.
    fn measured(millis: u64) -> Pace {
        let mut pace = Pace::new();
        for _ in 0..100 {
            pace.finished(Duration::from_millis(millis));
        }
        pace
    }

    #[test]
    fn a_refusal_with_no_line_before_it_is_told_one_second() {
        let mut pace = measured(25);
        let (tenant, start) = (Uuid::new_v4(), Instant::now());
        // Five a second, against 40 checks a second: never a line.
        for i in 0..100 {
            let at = start + Duration::from_millis(200 * i);
            assert_eq!(pace.refused(tenant, at, 1), 1);
        }
    }

    #[test]
    fn a_burst_is_given_turns_over_the_time_it_takes_to_check_it() {
        // One permit, 25 ms a check: 40 checks a second. 1,000 refused at once are told to
        // come back over 25 seconds, 40 to each second, and never more than the cap.
        let mut pace = measured(25);
        let (tenant, start) = (Uuid::new_v4(), Instant::now());
        let turns: Vec<u64> = (0..1000).map(|_| pace.refused(tenant, start, 1)).collect();
        assert_eq!(turns[0], 1);
        assert_eq!(*turns.last().unwrap(), 25);
        let in_second_10 = turns.iter().filter(|&&wait| wait == 10).count();
        assert!((39..=41).contains(&in_second_10), "{in_second_10}");
        // Two permits halve the wait.
        let mut two = measured(25);
        let turns: Vec<u64> = (0..1000).map(|_| two.refused(tenant, start, 2)).collect();
        assert_eq!(turns.last(), Some(&13));
        // Another tenant's users are not put behind the crowd.
        assert_eq!(pace.refused(Uuid::new_v4(), start, 1), 1);
        // Once the turns have passed, a refusal is alone again.
        let later = start + Duration::from_secs(26);
        assert_eq!(pace.refused(tenant, later, 1), 1);
        assert_eq!(
            pace.next_turn.len(),
            1,
            "lines that have passed are forgotten"
        );
        // A new burst then starts its line from now, not from the old line's end: 400 turns
        // in all at 25 ms, the last 9.975 s away.
        let burst: Vec<u64> = (0..399).map(|_| pace.refused(tenant, later, 1)).collect();
        assert_eq!(burst.last(), Some(&10));
    }

    #[test]
    fn a_client_that_ignores_its_turn_cannot_push_the_line_past_the_cap() {
        let mut pace = measured(25);
        let (tenant, start) = (Uuid::new_v4(), Instant::now());
        for _ in 0..100_000 {
            assert!(pace.refused(tenant, start, 1) <= MAX_RETRY_AFTER_SECONDS);
        }
        assert_eq!(pace.refused(tenant, start, 1), MAX_RETRY_AFTER_SECONDS);
        // The end of the line comes nearer with time like any other turn.
        let later = start + Duration::from_secs(10);
        assert_eq!(pace.refused(tenant, later, 1), MAX_RETRY_AFTER_SECONDS - 10);
    }

    #[tokio::test]
    async fn a_refusal_carries_its_turn_in_the_tenants_line() {
        let gate = gate(1, 0);
        let tenant = Uuid::new_v4();
        let _held = gate.admit(tenant).unwrap();
        let first = gate.admit(tenant).err().unwrap();
        assert_eq!(first.retry_after_seconds, 1);
        let refusals: Vec<Busy> = (0..200)
            .map(|_| gate.admit(tenant).err().unwrap())
            .collect();
        let last = refusals.last();
        // Nothing measured yet: 50 ms a check, so the 201st turn is ten seconds away.
        assert_eq!(last.map(|busy| busy.retry_after_seconds), Some(10));
    }
}
