//! The generic cell rate algorithm (GCRA): a token bucket kept as a single number.
//!
//! A limiter remembers only its *theoretical arrival time* (TAT): when the bucket would be
//! full again if no further request came. A request at `now` is admitted when, after adding
//! one emission interval to `max(TAT, now)`, the TAT is at most `burst` intervals ahead of
//! `now`. So an idle limiter admits `burst` requests at once, then one per interval.
//!
//! Invariants:
//! - The state is one `AtomicU64` updated by compare-and-swap: no lock, no allocation, and
//!   concurrent requests can never admit more than the rate allows.
//! - Time is nanoseconds since the Unix epoch from the injected clock. A clock that jumps
//!   back cannot lock a limiter for the length of the jump: a TAT further ahead than the
//!   bucket's whole capacity is impossible with a forward-moving clock, and is reset.

use std::sync::atomic::{AtomicU64, Ordering};

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// A limit: the sustained rate (as the interval between requests) and the burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Nanoseconds between two requests at the sustained rate (> 0).
    interval_ns: u64,
    /// Requests an idle limiter admits at once (>= 1).
    burst: u32,
}

impl Rate {
    /// `requests` per `period_ns`, with `burst`, shared by `nodes` nodes that each enforce
    /// their share: the interval grows `nodes` times and the burst is divided (rounded up, at
    /// least 1). `None` when `requests` is 0: nothing is admitted.
    pub fn new(requests: u32, period_ns: u64, burst: u32, nodes: u32) -> Option<Self> {
        if requests == 0 {
            return None;
        }
        let nodes = nodes.max(1);
        let interval_ns = (period_ns.saturating_mul(u64::from(nodes)) / u64::from(requests)).max(1);
        Some(Self {
            interval_ns,
            burst: burst.max(1).div_ceil(nodes).max(1),
        })
    }

    /// `requests` per second (see [`Rate::new`]).
    pub fn per_second(requests: u32, burst: u32, nodes: u32) -> Option<Self> {
        Self::new(requests, NANOS_PER_SECOND, burst, nodes)
    }

    /// `requests` per minute (see [`Rate::new`]).
    pub fn per_minute(requests: u32, burst: u32, nodes: u32) -> Option<Self> {
        Self::new(requests, 60 * NANOS_PER_SECOND, burst, nodes)
    }

    /// `percent` of this rate and of its burst (at least one request per interval and a burst
    /// of 1).
    pub fn share(self, percent: u32) -> Self {
        let percent = u64::from(percent.clamp(1, 100));
        Self {
            interval_ns: self.interval_ns.saturating_mul(100) / percent,
            burst: u32::try_from((u64::from(self.burst) * percent).div_ceil(100))
                .unwrap_or(u32::MAX)
                .max(1),
        }
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// How far ahead of now the TAT of a full bucket may be.
    fn capacity_ns(&self) -> u64 {
        self.interval_ns.saturating_mul(u64::from(self.burst))
    }
}

/// What one check decided, with what the rate-limit headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub admitted: bool,
    /// The burst: the most requests admitted at once.
    pub limit: u32,
    /// Requests that would be admitted right now, after this one.
    pub remaining: u32,
    /// Nanoseconds until the limiter is back to its full burst.
    pub reset_ns: u64,
    /// When refused: nanoseconds until a retry can be admitted; 0 when admitted.
    pub retry_after_ns: u64,
}

/// One limiter's state.
#[derive(Debug)]
pub struct Gcra {
    rate: Rate,
    tat: AtomicU64,
}

impl Gcra {
    /// A limiter with a full bucket.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            tat: AtomicU64::new(0),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Admits or refuses one request at `now_ns`; an admitted request is counted.
    pub fn check(&self, now_ns: u64) -> Outcome {
        let interval = self.rate.interval_ns;
        let capacity = self.rate.capacity_ns();
        let mut current = self.tat.load(Ordering::Acquire);
        loop {
            let tat = if current > now_ns.saturating_add(capacity) {
                now_ns // the clock went back: start afresh rather than lock the caller out
            } else {
                current.max(now_ns)
            };
            let next = tat.saturating_add(interval);
            let ahead = next - now_ns;
            if ahead > capacity {
                return Outcome {
                    admitted: false,
                    limit: self.rate.burst,
                    remaining: 0,
                    reset_ns: tat - now_ns,
                    retry_after_ns: ahead - capacity,
                };
            }
            match self
                .tat
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Outcome {
                        admitted: true,
                        limit: self.rate.burst,
                        remaining: u32::try_from((capacity - ahead) / interval).unwrap_or(u32::MAX),
                        reset_ns: ahead,
                        retry_after_ns: 0,
                    }
                }
                Err(actual) => current = actual,
            }
        }
    }
}

/// What the headers say for a limit of 0 requests: nothing is ever admitted.
pub fn blocked() -> Outcome {
    Outcome {
        admitted: false,
        limit: 0,
        remaining: 0,
        reset_ns: 0,
        retry_after_ns: 60 * NANOS_PER_SECOND,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = NANOS_PER_SECOND;
    const START: u64 = 1_700_000_000 * SECOND;

    #[test]
    fn an_idle_limiter_admits_its_burst_then_refuses_with_the_wait() {
        let limiter = Gcra::new(Rate::per_second(2, 3, 1).unwrap());
        let remaining: Vec<u32> = (0..3).map(|_| limiter.check(START).remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check(START);
        assert!(!refused.admitted);
        assert_eq!(refused.limit, 3);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after_ns, SECOND / 2);
        assert_eq!(refused.reset_ns, 3 * SECOND / 2);
    }

    #[test]
    fn the_bucket_refills_at_the_sustained_rate() {
        let limiter = Gcra::new(Rate::per_second(2, 3, 1).unwrap());
        for _ in 0..3 {
            assert!(limiter.check(START).admitted);
        }
        assert!(!limiter.check(START + SECOND / 4).admitted);
        let after_one_interval = limiter.check(START + SECOND / 2);
        assert!(after_one_interval.admitted);
        assert_eq!(after_one_interval.remaining, 0);
        // Idle long enough, the whole burst is back.
        assert_eq!(limiter.check(START + 10 * SECOND).remaining, 2);
    }

    #[test]
    fn refused_requests_are_not_counted() {
        let limiter = Gcra::new(Rate::per_second(1, 1, 1).unwrap());
        assert!(limiter.check(START).admitted);
        for _ in 0..100 {
            assert!(!limiter.check(START).admitted);
        }
        assert!(limiter.check(START + SECOND).admitted);
    }

    #[test]
    fn each_of_n_nodes_enforces_its_share() {
        let whole = Rate::per_second(100, 200, 1).unwrap();
        let share = Rate::per_second(100, 200, 4).unwrap();
        assert_eq!(share.burst(), 50);
        assert_eq!(share.interval_ns(), whole.interval_ns() * 4);
        // Rounded up, never below one request.
        assert_eq!(Rate::per_second(10, 5, 3).unwrap().burst(), 2);
        assert_eq!(Rate::per_second(1, 1, 8).unwrap().burst(), 1);
        assert_eq!(Rate::per_second(0, 10, 1), None);
    }

    #[test]
    fn a_share_is_a_fraction_of_rate_and_burst() {
        let half = Rate::per_second(100, 200, 1).unwrap().share(50);
        assert_eq!(half.burst(), 100);
        assert_eq!(half.interval_ns(), SECOND / 50);
        assert_eq!(Rate::per_second(1, 1, 1).unwrap().share(50).burst(), 1);
    }

    #[test]
    fn a_zero_burst_still_admits_one_request_per_interval() {
        let limiter = Gcra::new(Rate::per_second(1, 0, 1).unwrap());
        assert!(limiter.check(START).admitted);
        assert!(!limiter.check(START).admitted);
    }

    #[test]
    fn a_clock_that_jumps_back_does_not_lock_the_limiter_out() {
        let limiter = Gcra::new(Rate::per_second(1, 2, 1).unwrap());
        assert!(limiter.check(START + 3600 * SECOND).admitted);
        assert!(limiter.check(START).admitted);
    }

    #[test]
    fn concurrent_checks_never_admit_more_than_the_burst() {
        let limiter = std::sync::Arc::new(Gcra::new(Rate::per_second(1, 50, 1).unwrap()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || {
                    (0..100).filter(|_| limiter.check(START).admitted).count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 50);
    }
}
