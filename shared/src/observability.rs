//! Logging set-up shared by both binaries: `tracing` to stderr, level from `RUST_LOG`
//! (default `info`), JSON when `TENANTRY_LOG_FORMAT=json`; and the throttle that keeps a flood
//! of like warnings to a line a second ([`LogThrottle`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TENANTRY_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is not an error worth failing for.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Lets a kind of log line through at most once per period, counting the ones it holds back:
/// a flood of like events (refusals, a database that gives no connection) shows as one line a
/// second that says how many it stands for, and cannot flood the log. The kinds are a fixed
/// set named in code (status and error code, a failure's kind), so the map stays small.
pub struct LogThrottle<K> {
    every: Duration,
    kinds: Mutex<HashMap<K, (Instant, u64)>>,
}

impl<K: Eq + Hash> LogThrottle<K> {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            kinds: Mutex::default(),
        }
    }

    /// `Some(held back)` when a line of `kind` may be written now, with the number of lines
    /// of that kind held back since the last one written; `None` when it is held back.
    pub fn admit(&self, kind: K) -> Option<u64> {
        self.admit_at(kind, Instant::now())
    }

    fn admit_at(&self, kind: K, now: Instant) -> Option<u64> {
        let mut kinds = self
            .kinds
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match kinds.get_mut(&kind) {
            Some((last, held)) if now.duration_since(*last) < self.every => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

/// Calls `write` (with the number of lines held back since the last) at most once a second
/// per `kind`, process-wide: for the warnings a flood of failing requests would repeat.
pub fn at_most_once_a_second(kind: &'static str, write: impl FnOnce(u64)) {
    static LINES: LazyLock<LogThrottle<&'static str>> =
        LazyLock::new(|| LogThrottle::new(Duration::from_secs(1)));
    if let Some(held) = LINES.admit(kind) {
        write(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_let_through_once_a_period_and_counts_what_it_held_back() {
        let throttle = LogThrottle::new(Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(throttle.admit_at("busy", start), Some(0));
        for offset in [1, 500, 999] {
            let at = start + Duration::from_millis(offset);
            assert_eq!(throttle.admit_at("busy", at), None, "{offset} ms");
        }
        // Another kind is not held back by the first.
        assert_eq!(throttle.admit_at("gone", start), Some(0));
        // A period on, the line says how many it stands for, and counting starts again.
        let later = start + Duration::from_secs(1);
        assert_eq!(throttle.admit_at("busy", later), Some(3));
        assert_eq!(throttle.admit_at("busy", later), None);
        let much_later = later + Duration::from_secs(60);
        assert_eq!(throttle.admit_at("busy", much_later), Some(1));
        assert_eq!(throttle.admit_at("gone", much_later), Some(0));
    }
}
