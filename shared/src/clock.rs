//! The clock of both planes, injected so tests can decide what "now" is.
//!
//! Production uses the system clock. Tests hand a [`ManualClock`] to both planes (through
//! `TestOptions::clock`) and set or advance it, so time-dependent rules (TOTP steps, challenge
//! expiry, session ages) are tested without sleeping. Clones of a manual clock share one time.

use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(ManualClock),
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        match self {
            Clock::System => OffsetDateTime::now_utc(),
            Clock::Manual(clock) => clock.now(),
        }
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_share_the_time() {
        let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let manual = ManualClock::new(start);
        let clock = Clock::Manual(manual.clone());
        assert_eq!(clock.now(), start);
        manual.advance(time::Duration::seconds(30));
        assert_eq!(clock.now(), start + time::Duration::seconds(30));
        manual.set(start);
        assert_eq!(clock.now(), start);
    }
}
