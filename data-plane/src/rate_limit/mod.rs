//! Rate limits: every tenant request is admitted or refused (429 `rate_limited`) before its
//! handler runs, by GCRA limiters (`gcra`) held in this node's memory.
//!
//! Which limiters a request meets (all must admit it; see docs/limits.md):
//! - **tenant**: every request of the tenant, at the tenant's quota (`requests_per_second`,
//!   `burst`). Reads (`GET`, `HEAD`) meet only this one.
//! - **write**: the tenant's other methods, at [`WRITE_SHARE_PERCENT`] of the quota, so a
//!   flood of writes leaves room for reads.
//! - **auth**: credential endpoints (declared `rate = Auth`: sign-in, registration, password
//!   reset, MFA verification, activation, password change), per tenant *and client IP* (IPv6 per /64),
//!   at the node's `auth_rate_limit_per_minute` / `auth_rate_limit_burst`: far stricter, so
//!   guessing passwords or codes is slow even from many accounts.
//! - **api_key**: requests with an API key, per key, at [`API_KEY_SHARE_PERCENT`] of the
//!   quota, so one runaway integration cannot take the tenant's whole budget. Checked where
//!   the key is authenticated (`RequestContext`).
//!
//! Invariants:
//! - Limits come from `ServedTenant::quotas`, which the registry reloads on the control
//!   plane's NOTIFY; a limiter made for other quotas is replaced at the tenant's next request
//!   (with a full bucket), so quota changes apply without restart.
//! - Each of `rate_limit_nodes` nodes enforces 1/N of every limit (no shared counter: that
//!   would put a database round trip into every request).
//! - Memory is bounded: limiters live in moka caches with a capacity and an idle expiry
//!   longer than any bucket takes to refill, so an evicted limiter was full anyway.
//! - A check costs a cache lookup and a compare-and-swap: no database, no allocation beyond
//!   a new limiter.

pub mod gcra;
pub mod hold;
pub mod middleware;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use shared::catalog::Quotas;
use shared::config::{ConfigError, ConfigSource};
use shared::error::ApiError;
use uuid::Uuid;

use self::gcra::{Gcra, Outcome, Rate};
use shared::clock::Clock;

/// Share of the tenant's rate and burst its writes may use.
pub const WRITE_SHARE_PERCENT: u32 = 50;
/// Share of the tenant's rate and burst one API key may use.
pub const API_KEY_SHARE_PERCENT: u32 = 50;

/// Limiters idle this long are dropped (longer than any bucket here takes to refill).
const IDLE_EXPIRY: Duration = Duration::from_secs(15 * 60);
const TENANTS_CACHED: u64 = 100_000;
const CLIENTS_CACHED: u64 = 200_000;
const KEYS_CACHED: u64 = 100_000;

/// The node's rate-limit settings (config keys `rate_limit_nodes`,
/// `auth_rate_limit_per_minute`, `auth_rate_limit_burst`, `credential_refusal_hold_ms`,
/// `credential_refusal_holds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Data-plane nodes sharing each tenant's limits; each enforces 1/N of them.
    pub nodes: u32,
    /// Sustained credential attempts per tenant and client IP, per minute.
    pub auth_per_minute: u32,
    /// Credential attempts per tenant and client IP admitted at once.
    pub auth_burst: u32,
    /// The longest a refused credential attempt is held before its answer ([`hold`]); zero
    /// answers refusals at once.
    pub refusal_hold: Duration,
    /// Refusals held at once on this node; past that they are answered at once and their
    /// connection closed.
    pub refusal_holds: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            nodes: 1,
            auth_per_minute: 20,
            auth_burst: 20,
            refusal_hold: hold::DEFAULT_HOLD,
            refusal_holds: hold::DEFAULT_HOLDS,
        }
    }
}

impl RateLimitSettings {
    pub fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let settings = Self {
            nodes: source.parse_or("rate_limit_nodes", defaults.nodes)?,
            auth_per_minute: source
                .parse_or("auth_rate_limit_per_minute", defaults.auth_per_minute)?,
            auth_burst: source.parse_or("auth_rate_limit_burst", defaults.auth_burst)?,
            refusal_hold: Duration::from_millis(source.parse_or(
                "credential_refusal_hold_ms",
                defaults.refusal_hold.as_millis() as u64,
            )?),
            refusal_holds: source.parse_or("credential_refusal_holds", defaults.refusal_holds)?,
        };
        if settings.nodes == 0 {
            return Err(ConfigError::Invalid {
                key: "rate_limit_nodes".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(settings)
    }
}

/// What kind of endpoint a request is for: its route's declared rate class.
pub use shared::routes::RateClass;

/// Which limiter refused or bounds a request (the `limit_class` in a 429's details).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitClass {
    Tenant,
    Write,
    Auth,
    ApiKey,
}

impl LimitClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Write => "write",
            Self::Auth => "auth",
            Self::ApiKey => "api_key",
        }
    }
}

/// The outcome of the limiter that decides a request's fate and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub class: LimitClass,
    pub outcome: Outcome,
}

impl Decision {
    /// Of two admitting decisions, the one with less room left (what the headers report); a
    /// refusal wins over an admission.
    pub fn tighter(self, other: Decision) -> Decision {
        match (self.outcome.admitted, other.outcome.admitted) {
            (true, false) => other,
            (false, _) => self,
            (true, true) if other.outcome.remaining < self.outcome.remaining => other,
            (true, true) => self,
        }
    }

    /// The 429 for a refusal, with `Retry-After` and the class in its details.
    pub fn refusal(&self) -> ApiError {
        let retry_after = retry_after_seconds(&self.outcome);
        ApiError::too_many_requests(
            "rate_limited",
            format!(
                "too many requests ({} limit); retry in {retry_after} s",
                self.class.as_str()
            ),
        )
        .with_details(serde_json::json!({
            "limit_class": self.class.as_str(),
            "limit": self.outcome.limit,
            "retry_after_seconds": retry_after,
        }))
        .with_retry_after(retry_after)
    }
}

/// Whole seconds to wait, rounded up (at least 1).
pub fn retry_after_seconds(outcome: &Outcome) -> u64 {
    outcome.retry_after_ns.div_ceil(1_000_000_000).max(1)
}

/// A tenant's own limiters, made for one set of quotas.
#[derive(Debug)]
struct TenantLimiters {
    made_for: (i32, i32),
    tenant: Option<Gcra>,
    write: Option<Gcra>,
}

impl TenantLimiters {
    fn new(quotas: &Quotas, nodes: u32) -> Self {
        let rate = tenant_rate(quotas, nodes);
        Self {
            made_for: (quotas.requests_per_second, quotas.burst),
            tenant: rate.map(Gcra::new),
            write: rate.map(|rate| Gcra::new(rate.share(WRITE_SHARE_PERCENT))),
        }
    }
}

fn tenant_rate(quotas: &Quotas, nodes: u32) -> Option<Rate> {
    Rate::per_second(
        u32::try_from(quotas.requests_per_second).unwrap_or(0),
        u32::try_from(quotas.burst).unwrap_or(0),
        nodes,
    )
}

fn check(limiter: Option<&Gcra>, class: LimitClass, now_ns: u64) -> Decision {
    Decision {
        class,
        outcome: limiter.map_or_else(gcra::blocked, |limiter| limiter.check(now_ns)),
    }
}

/// A client address as the auth limiter keys it: IPv6 addresses by their /64 (one host
/// usually holds a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
    }
}

fn bounded_cache<K, V>(capacity: u64) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(capacity)
        .time_to_idle(IDLE_EXPIRY)
        .build()
}

/// Every limiter of this node, and its held refusals.
#[derive(Clone)]
pub struct RateLimits {
    settings: RateLimitSettings,
    clock: Clock,
    tenants: Cache<Uuid, Arc<TenantLimiters>>,
    clients: Cache<(Uuid, IpAddr), Arc<Gcra>>,
    keys: Cache<Uuid, Arc<Gcra>>,
    pub holds: hold::Holds,
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings, clock: Clock) -> Self {
        Self {
            settings,
            clock,
            tenants: bounded_cache(TENANTS_CACHED),
            clients: bounded_cache(CLIENTS_CACHED),
            keys: bounded_cache(KEYS_CACHED),
            holds: hold::Holds::new(settings.refusal_hold, settings.refusal_holds),
        }
    }

    pub fn settings(&self) -> RateLimitSettings {
        self.settings
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.clock.now().unix_timestamp_nanos()).unwrap_or(0)
    }

    async fn tenant_limiters(&self, tenant_id: Uuid, quotas: &Quotas) -> Arc<TenantLimiters> {
        let wanted = (quotas.requests_per_second, quotas.burst);
        if let Some(limiters) = self.tenants.get(&tenant_id).await {
            if limiters.made_for == wanted {
                return limiters;
            }
        }
        // First request, or the quotas changed: a new limiter with a full bucket.
        let limiters = Arc::new(TenantLimiters::new(quotas, self.settings.nodes));
        self.tenants.insert(tenant_id, limiters.clone()).await;
        limiters
    }

    /// Admits or refuses a request of `class` for the tenant, from `client` (for the auth
    /// limiter). The narrower limiter is asked first, so a request it refuses is not charged
    /// to the tenant's budget.
    pub async fn admit(
        &self,
        tenant_id: Uuid,
        quotas: &Quotas,
        class: RateClass,
        client: Option<IpAddr>,
    ) -> Option<Decision> {
        let now = self.now_ns();
        let narrow = match class {
            RateClass::Unlimited => return None,
            RateClass::Read => None,
            RateClass::Write => {
                let limiters = self.tenant_limiters(tenant_id, quotas).await;
                Some(check(limiters.write.as_ref(), LimitClass::Write, now))
            }
            RateClass::Auth => match client {
                // Without a peer address (never over TCP) only the tenant limit applies.
                None => None,
                Some(ip) => Some(self.admit_client(tenant_id, ip, now).await),
            },
        };
        if let Some(narrow) = narrow.filter(|decision| !decision.outcome.admitted) {
            return Some(narrow);
        }
        let limiters = self.tenant_limiters(tenant_id, quotas).await;
        let overall = check(limiters.tenant.as_ref(), LimitClass::Tenant, now);
        Some(narrow.map_or(overall, |narrow| narrow.tighter(overall)))
    }

    async fn admit_client(&self, tenant_id: Uuid, ip: IpAddr, now: u64) -> Decision {
        let rate = Rate::per_minute(
            self.settings.auth_per_minute,
            self.settings.auth_burst,
            self.settings.nodes,
        );
        let Some(rate) = rate else {
            return check(None, LimitClass::Auth, now);
        };
        let limiter = self
            .clients
            .get_with((tenant_id, client_key(ip)), async {
                Arc::new(Gcra::new(rate))
            })
            .await;
        check(Some(&limiter), LimitClass::Auth, now)
    }

    /// Admits or refuses a request made with the API key `key_id` of a tenant with `quotas`.
    pub async fn admit_api_key(&self, key_id: Uuid, quotas: &Quotas) -> Decision {
        let now = self.now_ns();
        let Some(rate) = tenant_rate(quotas, self.settings.nodes) else {
            return check(None, LimitClass::ApiKey, now);
        };
        let rate = rate.share(API_KEY_SHARE_PERCENT);
        let mut limiter = self
            .keys
            .get_with(key_id, async { Arc::new(Gcra::new(rate)) })
            .await;
        if limiter.rate() != rate {
            limiter = Arc::new(Gcra::new(rate));
            self.keys.insert(key_id, limiter.clone()).await;
        }
        check(Some(&limiter), LimitClass::ApiKey, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::clock::ManualClock;
    use time::OffsetDateTime;

    fn quotas(requests_per_second: i32, burst: i32) -> Quotas {
        Quotas {
            max_users: 5,
            max_storage_bytes: 0,
            max_api_keys: 2,
            requests_per_second,
            burst,
            events_per_day: 0,
        }
    }

    fn limits(settings: RateLimitSettings) -> (RateLimits, ManualClock) {
        let clock = ManualClock::new(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap());
        (
            RateLimits::new(settings, Clock::Manual(clock.clone())),
            clock,
        )
    }

    async fn admitted(
        limits: &RateLimits,
        tenant: Uuid,
        quotas: &Quotas,
        class: RateClass,
        n: usize,
    ) -> usize {
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let mut count = 0;
        for _ in 0..n {
            if limits
                .admit(tenant, quotas, class, ip)
                .await
                .unwrap()
                .outcome
                .admitted
            {
                count += 1;
            }
        }
        count
    }

    #[tokio::test]
    async fn writes_get_half_the_tenant_budget_and_reads_the_rest() {
        let (limits, _) = limits(RateLimitSettings::default());
        let tenant = Uuid::now_v7();
        let quotas = quotas(1, 10);
        assert_eq!(
            admitted(&limits, tenant, &quotas, RateClass::Write, 20).await,
            5
        );
        assert_eq!(
            admitted(&limits, tenant, &quotas, RateClass::Read, 20).await,
            5
        );
    }

    #[tokio::test]
    async fn the_auth_limit_is_per_client_address_and_trips_first() {
        let settings = RateLimitSettings {
            auth_per_minute: 6,
            auth_burst: 3,
            ..RateLimitSettings::default()
        };
        let (limits, _) = limits(settings);
        let tenant = Uuid::now_v7();
        let quotas = quotas(100, 200);
        let from = |ip: [u8; 4]| Some(IpAddr::from(ip));
        for _ in 0..3 {
            let decision = limits
                .admit(tenant, &quotas, RateClass::Auth, from([10, 0, 0, 1]))
                .await
                .unwrap();
            assert!(decision.outcome.admitted);
            assert_eq!(decision.class, LimitClass::Auth);
        }
        let refused = limits
            .admit(tenant, &quotas, RateClass::Auth, from([10, 0, 0, 1]))
            .await
            .unwrap();
        assert!(!refused.outcome.admitted);
        assert_eq!(refused.class, LimitClass::Auth);
        assert_eq!(retry_after_seconds(&refused.outcome), 10);
        // Another address, and other endpoints from the same address, are unaffected.
        assert!(
            limits
                .admit(tenant, &quotas, RateClass::Auth, from([10, 0, 0, 2]))
                .await
                .unwrap()
                .outcome
                .admitted
        );
        assert!(
            limits
                .admit(tenant, &quotas, RateClass::Read, from([10, 0, 0, 1]))
                .await
                .unwrap()
                .outcome
                .admitted
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_bit_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
    }

    #[tokio::test]
    async fn a_quota_change_replaces_the_limiter() {
        let (limits, _) = limits(RateLimitSettings::default());
        let tenant = Uuid::now_v7();
        assert_eq!(
            admitted(&limits, tenant, &quotas(1, 2), RateClass::Read, 5).await,
            2
        );
        assert_eq!(
            admitted(&limits, tenant, &quotas(1, 4), RateClass::Read, 5).await,
            4
        );
    }

    #[tokio::test]
    async fn tenants_do_not_share_a_budget() {
        let (limits, _) = limits(RateLimitSettings::default());
        let quotas = quotas(1, 3);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(admitted(&limits, a, &quotas, RateClass::Read, 10).await, 3);
        assert_eq!(admitted(&limits, b, &quotas, RateClass::Read, 10).await, 3);
    }

    #[tokio::test]
    async fn a_zero_rate_admits_nothing() {
        let (limits, _) = limits(RateLimitSettings::default());
        let decision = limits
            .admit(Uuid::now_v7(), &quotas(0, 10), RateClass::Read, None)
            .await
            .unwrap();
        assert!(!decision.outcome.admitted);
        assert_eq!(decision.outcome.limit, 0);
        assert_eq!(decision.refusal().status().as_u16(), 429);
    }

    #[tokio::test]
    async fn each_api_key_has_its_own_share_of_the_tenant_rate() {
        let (limits, clock) = limits(RateLimitSettings::default());
        let quotas = quotas(1, 8);
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let count = |key| {
            let limits = limits.clone();
            let quotas = quotas.clone();
            async move {
                let mut admitted = 0;
                for _ in 0..10 {
                    let decision = limits.admit_api_key(key, &quotas).await;
                    assert_eq!(decision.class, LimitClass::ApiKey);
                    admitted += usize::from(decision.outcome.admitted);
                }
                admitted
            }
        };
        assert_eq!(count(first).await, 4);
        assert_eq!(count(second).await, 4);
        // The key's share refills at half the tenant's rate: one request per 2 s.
        clock.advance(time::Duration::seconds(2));
        assert_eq!(count(first).await, 1);
    }

    #[tokio::test]
    async fn with_n_nodes_each_node_admits_its_share() {
        let settings = RateLimitSettings {
            nodes: 4,
            ..RateLimitSettings::default()
        };
        let (limits, clock) = limits(settings);
        let tenant = Uuid::now_v7();
        let quotas = quotas(8, 20);
        assert_eq!(
            admitted(&limits, tenant, &quotas, RateClass::Read, 20).await,
            5
        );
        // 8 per second over 4 nodes: 2 per second here.
        clock.advance(time::Duration::seconds(1));
        assert_eq!(
            admitted(&limits, tenant, &quotas, RateClass::Read, 20).await,
            2
        );
    }

    #[test]
    fn the_settings_refuse_zero_nodes() {
        let source = ConfigSource::from_pairs([("rate_limit_nodes", "0")]);
        assert!(RateLimitSettings::from_source(&source).is_err());
        let source = ConfigSource::from_pairs([("rate_limit_nodes", "3")]);
        assert_eq!(RateLimitSettings::from_source(&source).unwrap().nodes, 3);
    }
}
