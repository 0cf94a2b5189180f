//! Refused credential attempts are answered late: a refusal with `Retry-After` (429 of a rate
//! limit or lockout, 503 `credential_check_busy`) on a route declared `rate = Auth` is held
//! until `min(Retry-After, credential_refusal_hold_ms)` after the request arrived, then
//! answered as it was. `Retry-After` then counts from the answer.
//!
//! Why: refusing is cheap, but not free. Each refusal is still routed, rate-limited, audited
//! and answered, on the same HTTP workers that serve every tenant. A client that ignores
//! `Retry-After` and asks again at once on its keep-alive connection (a password-guessing
//! script does) sent 15,000 sign-ins a second at a two-core node, and other tenants' reads
//! waited seconds behind them (docs/benchmarks.md, the sign-in flood). A held refusal costs a
//! timer and an idle connection, and an HTTP/1.1 client cannot send its next request on that
//! connection before the answer: each connection gets at most one refusal per hold, whether
//! its client honours `Retry-After` or not. A client that honours it waits at most twice as
//! long as it was told (the hold, then `Retry-After`); one that does not waits as long as it
//! should have, up to the hold. This is `pam_faildelay` and nginx's `limit_req` delay, kept to
//! the routes attackers flood.
//!
//! Bounded: at most `credential_refusal_holds` refusals are held at once on a node. Past
//! that, a refusal is answered at once with `Connection: close`, so a client with more
//! connections than there are holds pays a new connection for each attempt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::RETRY_AFTER;
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;
use tokio::time::Instant;

use super::RateClass;
use crate::state::DataPlane;

/// The longest a refusal is held by default (`credential_refusal_hold_ms`).
pub const DEFAULT_HOLD: Duration = Duration::from_secs(2);
/// Refusals held at once on a node by default (`credential_refusal_holds`).
pub const DEFAULT_HOLDS: usize = 4096;

/// The node's held refusals: how long, and how many at once.
#[derive(Debug, Clone)]
pub struct Holds {
    longest: Duration,
    capacity: usize,
    held: Arc<AtomicUsize>,
}

/// What becomes of one refusal.
enum Hold {
    /// Held for this long, in this place.
    For(Duration, Held),
    /// Every place is taken.
    Full,
    /// Not held: holding is turned off, or the refusal says to retry at once.
    Off,
}

/// One refusal being held; its place is given back when dropped.
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Holds {
    pub fn new(longest: Duration, capacity: usize) -> Self {
        Self {
            longest,
            capacity,
            held: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How a refusal told to retry after `retry_after` is held.
    fn take(&self, retry_after: Duration) -> Hold {
        let hold = retry_after.min(self.longest);
        if hold.is_zero() {
            return Hold::Off;
        }
        let placed = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held < self.capacity).then_some(held + 1)
            });
        match placed {
            Ok(_) => Hold::For(hold, Held(self.held.clone())),
            Err(_) => Hold::Full,
        }
    }

    /// Refusals held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// Route middleware (`crate::route_table`, outside the rate limit): holds the refusals of
/// credential routes as the module says.
pub async fn hold_refusals(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let arrived = Instant::now();
    let credential = shared::routes::served_by(req.request())
        .is_some_and(|route| route.policy.rate == RateClass::Auth);
    let state = credential
        .then(|| req.app_data::<web::Data<DataPlane>>().cloned())
        .flatten();
    let mut response = next.call(req).await?.map_into_boxed_body();
    let Some(state) = state else {
        return Ok(response);
    };
    let Some(retry_after) = refusal_retry_after(&response) else {
        return Ok(response);
    };
    match state.rate_limits.holds.take(retry_after) {
        Hold::For(hold, _place) => {
            state
                .metrics
                .refusals_held
                .with_label_values(&["held"])
                .inc();
            tokio::time::sleep_until(arrived + hold).await;
        }
        Hold::Full => {
            state
                .metrics
                .refusals_held
                .with_label_values(&["full"])
                .inc();
            response
                .response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        Hold::Off => {}
    }
    Ok(response)
}

/// The `Retry-After` of a refusal (429 or 503); `None` for any other answer.
fn refusal_retry_after(response: &ServiceResponse<BoxBody>) -> Option<Duration> {
    let status = response.status();
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let seconds = response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_for(hold: Hold) -> Option<Duration> {
        match hold {
            Hold::For(duration, place) => {
                drop(place);
                Some(duration)
            }
            Hold::Full | Hold::Off => None,
        }
    }

    #[test]
    fn a_refusal_is_held_for_its_retry_after_up_to_the_longest_hold() {
        let holds = Holds::new(Duration::from_secs(2), 8);
        let seconds = |s| held_for(holds.take(Duration::from_secs(s)));
        assert_eq!(seconds(1), Some(Duration::from_secs(1)));
        assert_eq!(seconds(30), Some(Duration::from_secs(2)));
        assert!(matches!(holds.take(Duration::ZERO), Hold::Off));
        assert_eq!(holds.held(), 0);
    }

    #[test]
    fn no_more_than_the_capacity_is_held_and_places_come_back() {
        let holds = Holds::new(Duration::from_secs(2), 2);
        let first = holds.take(Duration::from_secs(1));
        let second = holds.take(Duration::from_secs(1));
        assert!(matches!((&first, &second), (Hold::For(..), Hold::For(..))));
        assert!(matches!(holds.take(Duration::from_secs(1)), Hold::Full));
        assert_eq!(holds.held(), 2);
        drop(first);
        assert_eq!(holds.held(), 1);
        assert!(matches!(holds.take(Duration::from_secs(1)), Hold::For(..)));
        drop(second);
        assert_eq!(holds.held(), 0);
    }

    #[test]
    fn a_zero_hold_holds_nothing() {
        let holds = Holds::new(Duration::ZERO, 8);
        assert!(matches!(holds.take(Duration::from_secs(5)), Hold::Off));
        assert_eq!(holds.held(), 0);
    }
}
