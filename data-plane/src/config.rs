//! The data plane's typed configuration, read once at start from a TOML file and
//! `TENANTRY_*` environment variables (which win). See README "Configuration".

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shared::config::{ConfigError, ConfigSource};
use shared::tenant::RolePrefix;

use crate::identity::hash_gate::{self, HashLimits};
use crate::mail::MailSettings;
use crate::rate_limit::RateLimitSettings;

/// Affinity groups per HTTP worker unless configured: over 10,000 tenants four lending groups
/// gave reads at 72-76% of a bare pooled query (67-68% with one group), and one busy tenant
/// loses nothing measurable to them (docs/benchmarks.md, "Fleet" and "groups that lend").
pub const DEFAULT_AFFINITY_GROUPS: usize = 4;

/// The default of `http_keep_alive_seconds`: above the idle timeouts of common load balancers.
pub const DEFAULT_KEEP_ALIVE_SECONDS: u64 = 75;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the data plane connects: `data_plane_database_url` if set, else `database_url`
    /// as the deployment's data-plane role (`<role_prefix>_dataplane`).
    pub database: tokio_postgres::Config,
    /// Where the node's `LISTEN` connections go (one for cache invalidations, one for the mail
    /// worker): `listen_database_url`, as the same user as `database`, else `database`
    /// itself. Set it to Postgres directly when `database` is a transaction-mode pooler,
    /// which cannot carry a `LISTEN` (docs/scale-out.md, "PgBouncer").
    pub listen_database: tokio_postgres::Config,
    pub role_prefix: RolePrefix,
    pub base_domain: String,
    pub listen: SocketAddr,
    /// Postgres connections for requests, split evenly over the HTTP workers (each worker has
    /// a pool of its own; see `shared::tenant_context::TenantDb`).
    pub pool_size: usize,
    /// Postgres connections for requests to each tenant cluster other than the catalog's
    /// (`data_cluster_pool_size`, default `data_pool_size`), split over the HTTP workers the
    /// same way and opened at the first request for one of its tenants (see
    /// `shared::cluster::fleet`).
    pub cluster_pool_size: usize,
    /// A directory holding this node's password on each tenant cluster whose password differs
    /// from its catalog login's, in a file named like the cluster
    /// (`data_cluster_password_dir`, default none; see `shared::cluster::fleet`).
    pub cluster_password_dir: Option<PathBuf>,
    /// Proxies whose forwarding header names the client (`trusted_proxies`: addresses and
    /// CIDR ranges, default none; `forwarded_header`: `x-forwarded-for`, the default, or
    /// `forwarded`). See `crate::hygiene::client_address`.
    pub trusted_proxies: shared::http::client_address::TrustedProxies,
    /// Internal networks (addresses and CIDR ranges) that the URLs a tenant admin configures
    /// (OIDC issuers and what their discovery names, SAML metadata URLs) may reach
    /// (`egress_allow_networks`, default none: only public addresses). See `shared::egress`.
    pub egress: shared::egress::EgressPolicy,
    /// Where `/metrics` is served instead of the public port (`data_metrics_listen`; default
    /// none: on the public port).
    pub metrics_listen: Option<SocketAddr>,
    /// The CA whose certificates Postgres servers must show (`postgres_ca_file`; default none:
    /// TLS only where a URL says `sslmode=require`, against the system's trust store). See
    /// `shared::db::tls`.
    pub postgres_ca_file: Option<PathBuf>,
    /// Affinity groups each HTTP worker's pool is split into (`data_affinity_groups`, default
    /// [`DEFAULT_AFFINITY_GROUPS`], at most the worker's connections): a tenant takes its
    /// connections from the same group while it has one to give, so each backend sees about
    /// 1/groups of the tenants' schemas (`shared::tenant_context::affinity_group`); past that
    /// it borrows another group's (`shared::db::get_preferring`).
    pub affinity_groups: usize,
    /// Transactions a Postgres connection serves before it is closed and replaced
    /// (`data_connection_max_uses`, default 0: never), which bounds what each backend caches
    /// of the tenant schemas it touched, at a price in throughput
    /// (`TenantDb::with_connection_max_uses`, docs/scale-out.md).
    pub connection_max_uses: usize,
    /// HTTP worker threads (`data_workers`, or `serve --workers`; default: the number of
    /// cores).
    pub workers: usize,
    /// ClickHouse and the event spool (`clickhouse_url`, `clickhouse_database`,
    /// `audit_spool_dir`, `audit_spool_max_bytes`, `audit_flush_interval_ms`).
    pub events: shared::events::EventSettings,
    /// Whether requests leave audit events (`audit_enabled`, default true; off only to
    /// measure what auditing costs).
    pub audit_enabled: bool,
    /// Age at which an audit outbox row counts as left by a dead node and any node ships it
    /// (`audit_outbox_recover_after_ms`, default 60 s). Must exceed the longest a live node
    /// holds an event in memory: the flush interval plus two insert timeouts (about 10 s).
    pub audit_outbox_recover_after: Duration,
    /// Longest any request may take before it is answered 503 `request_timeout`
    /// (`request_deadline_ms`, default 30000).
    pub request_deadline: Duration,
    /// How long an idle keep-alive connection stays open (`http_keep_alive_seconds`, default
    /// [`DEFAULT_KEEP_ALIVE_SECONDS`]). Longer than a load balancer's idle timeout (AWS ALB
    /// 60 s, nginx's upstream 60 s), so the balancer, not the node, closes an idle connection:
    /// a node that closes first races the balancer's next request on it, which then fails
    /// (a 502 at the balancer).
    pub keep_alive: Duration,
    /// How long a stopping node keeps serving after `/readyz` turned `draining`, so the load
    /// balancer stops sending before the node stops accepting (`shutdown_drain_ms`, default
    /// 5000; 0 in tests that stop nodes).
    pub shutdown_drain: Duration,
    /// Largest body the telemetry ingestion endpoints accept (`telemetry_max_body_bytes`).
    pub telemetry_max_body_bytes: usize,
    /// Upper bound on how long a tenant's catalog entry is cached; changes normally arrive
    /// sooner through NOTIFY.
    pub tenant_cache_ttl: Duration,
    /// Per-statement limit inside tenant transactions, set with `SET LOCAL` in each
    /// (`TenantDb::with_statement_timeout`).
    pub statement_timeout_ms: u32,
    /// The key-encryption key (the control plane's): opens tenants' data keys, which seal
    /// their JWT signing keys and MFA secrets.
    pub kek_file: PathBuf,
    /// A secret mixed into every password hash (argon2's secret input), kept out of the
    /// database so a stolen database alone cannot be brute-forced.
    pub password_pepper_file: PathBuf,
    /// How much password hashing runs and waits at once (`password_hash_concurrency`, default
    /// the number of cores less one, at least one; `password_hash_queue`, default 4 × the
    /// concurrency;
    /// `password_hash_wait_ms`, default 2000). See `identity::hash_gate`.
    pub password_hashing: HashLimits,
    /// Lifetime of access tokens (JWTs).
    pub access_token_ttl: Duration,
    /// Scheme of tenants' public URLs, used in token issuers (`https` in production).
    pub public_scheme: String,
    /// SMTP server, sender and delivery timing (`smtp_url`, `mail_from`).
    pub mail: MailSettings,
    /// How many nodes share each tenant's limits, and the credential endpoints' limit
    /// (`rate_limit_nodes`, `auth_rate_limit_per_minute`, `auth_rate_limit_burst`).
    pub rate_limit: RateLimitSettings,
    /// Largest request body any endpoint accepts (`max_body_bytes`); JSON bodies are held to
    /// `shared::json_body::JSON_BODY_LIMIT` as well.
    pub max_body_bytes: usize,
}

impl Config {
    /// [`Self::statement_timeout_ms`] as a duration.
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.statement_timeout_ms))
    }

    pub fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        source.warn_unknown(shared::config::KNOWN_KEYS);
        let invalid = |key: &str| {
            let key = key.to_owned();
            move |reason: String| ConfigError::Invalid {
                key: key.clone(),
                reason,
            }
        };
        let role_prefix = RolePrefix::parse(
            &source
                .get("role_prefix")
                .unwrap_or_else(|| "tenantry".to_owned()),
        )
        .map_err(invalid("role_prefix"))?;
        let database = match source.get("data_plane_database_url") {
            Some(url) => shared::db::pg_config(&url, None),
            None => shared::db::pg_config(
                &source.require("database_url")?,
                Some(role_prefix.data_plane_role().as_str()),
            ),
        }
        .map_err(|error| ConfigError::Invalid {
            key: "database_url".to_owned(),
            reason: error.to_string(),
        })?;
        let listen_database = match source.get("listen_database_url") {
            Some(url) => {
                listener_config(&url, &database).map_err(invalid("listen_database_url"))?
            }
            None => database.clone(),
        };
        let at_least_one = |key: &str, value: usize| match value {
            0 => Err(invalid(key)("must be at least 1".to_owned())),
            value => Ok(value),
        };
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let hash_concurrency = at_least_one(
            "password_hash_concurrency",
            source.parse_or(
                "password_hash_concurrency",
                HashLimits::for_cores(cores).concurrency,
            )?,
        )?;
        let hash_defaults = HashLimits::with_concurrency(hash_concurrency);
        let password_hashing = HashLimits {
            concurrency: hash_concurrency,
            queue: source.parse_or("password_hash_queue", hash_defaults.queue)?,
            wait: Duration::from_millis(
                source.parse_or("password_hash_wait_ms", hash_gate::DEFAULT_WAIT_MS)?,
            ),
        };
        let pool_size = at_least_one("data_pool_size", source.parse_or("data_pool_size", 16)?)?;
        Ok(Self {
            database,
            listen_database,
            role_prefix,
            base_domain: source
                .get("base_domain")
                .unwrap_or_else(|| "localhost".to_owned())
                .to_ascii_lowercase(),
            listen: source.parse_or("data_listen", SocketAddr::from(([127, 0, 0, 1], 8781)))?,
            pool_size,
            cluster_pool_size: at_least_one(
                "data_cluster_pool_size",
                source.parse_or("data_cluster_pool_size", pool_size)?,
            )?,
            cluster_password_dir: source.get("data_cluster_password_dir").map(PathBuf::from),
            postgres_ca_file: source.get("postgres_ca_file").map(PathBuf::from),
            metrics_listen: source
                .get("data_metrics_listen")
                .map(|address| {
                    address
                        .parse()
                        .map_err(|error: std::net::AddrParseError| error.to_string())
                })
                .transpose()
                .map_err(invalid("data_metrics_listen"))?,
            egress: shared::egress::EgressPolicy::from_source(source)?,
            trusted_proxies: shared::http::client_address::TrustedProxies::parse(
                &source.get("trusted_proxies").unwrap_or_default(),
                source.parse_or("forwarded_header", Default::default())?,
            )
            .map_err(invalid("trusted_proxies"))?,
            workers: at_least_one("data_workers", source.parse_or("data_workers", cores)?)?,
            connection_max_uses: source.parse_or("data_connection_max_uses", 0)?,
            affinity_groups: at_least_one(
                "data_affinity_groups",
                source.parse_or("data_affinity_groups", DEFAULT_AFFINITY_GROUPS)?,
            )?,
            events: shared::events::EventSettings::from_source(source)?,
            audit_enabled: source.parse_or("audit_enabled", true)?,
            shutdown_drain: Duration::from_millis(source.parse_or("shutdown_drain_ms", 5000)?),
            request_deadline: Duration::from_millis(
                source.parse_or("request_deadline_ms", 30_000)?,
            ),
            keep_alive: Duration::from_secs(
                source.parse_or("http_keep_alive_seconds", DEFAULT_KEEP_ALIVE_SECONDS)?,
            ),
            audit_outbox_recover_after: Duration::from_millis(
                source.parse_or("audit_outbox_recover_after_ms", 60_000)?,
            ),
            telemetry_max_body_bytes: source.parse_or("telemetry_max_body_bytes", 4 << 20)?,
            tenant_cache_ttl: Duration::from_secs(source.parse_or("tenant_cache_ttl_seconds", 60)?),
            statement_timeout_ms: source.parse_or("statement_timeout_ms", 5000)?,
            kek_file: PathBuf::from(source.require("kek_file")?),
            password_pepper_file: PathBuf::from(source.require("password_pepper_file")?),
            password_hashing,
            access_token_ttl: Duration::from_secs(
                source.parse_or("access_token_ttl_seconds", 900)?,
            ),
            public_scheme: source.public_scheme()?,
            mail: MailSettings::from_source(source)?,
            rate_limit: RateLimitSettings::from_source(source)?,
            max_body_bytes: source.parse_or("max_body_bytes", shared::http::RAW_BODY_LIMIT)?,
        })
    }
}

/// The listener's connection: host, port, database and TLS from `url`, user and password
/// from `pool` unless `url` names a user, so pointing it past a pooler is the only change.
fn listener_config(
    url: &str,
    pool: &tokio_postgres::Config,
) -> Result<tokio_postgres::Config, String> {
    let mut config = shared::db::pg_config(url, None).map_err(|error| error.to_string())?;
    if config.get_user().is_none() {
        if let Some(user) = pool.get_user() {
            config.user(user);
        }
        if let Some(password) = pool.get_password() {
            config.password(password);
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let required = [
            ("database_url", "postgres://tenantry@127.0.0.1/tenantry"),
            ("kek_file", "kek"),
            ("password_pepper_file", "pepper"),
        ];
        Config::from_source(&ConfigSource::from_pairs(
            required.iter().chain(pairs).copied(),
        ))
    }

    #[test]
    fn password_hashing_limits_default_to_the_cores_and_are_read() {
        let defaults = config(&[]).unwrap().password_hashing;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        assert_eq!(defaults, HashLimits::for_cores(cores));
        let read = config(&[
            ("password_hash_concurrency", "3"),
            ("password_hash_wait_ms", "500"),
        ])
        .unwrap()
        .password_hashing;
        assert_eq!(
            (read.concurrency, read.queue, read.wait),
            (3, 12, Duration::from_millis(500))
        );
        let no_queue = config(&[("password_hash_queue", "0")]).unwrap();
        assert_eq!(no_queue.password_hashing.queue, 0);
        match config(&[("password_hash_concurrency", "0")]) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "password_hash_concurrency"),
            other => panic!("a concurrency of 0 was not refused: {other:?}"),
        }
    }

    #[test]
    fn credential_refusals_are_held_two_seconds_by_default_and_the_hold_is_read() {
        let defaults = config(&[]).unwrap().rate_limit;
        assert_eq!(
            (defaults.refusal_hold, defaults.refusal_holds),
            (Duration::from_secs(2), 4096)
        );
        let read = config(&[
            ("credential_refusal_hold_ms", "0"),
            ("credential_refusal_holds", "10"),
        ])
        .unwrap()
        .rate_limit;
        assert_eq!(
            (read.refusal_hold, read.refusal_holds),
            (Duration::ZERO, 10)
        );
    }

    #[test]
    fn idle_connections_are_kept_longer_than_a_balancers_idle_timeout_and_the_setting_is_read() {
        assert_eq!(config(&[]).unwrap().keep_alive, Duration::from_secs(75));
        let read = config(&[("http_keep_alive_seconds", "620")]).unwrap();
        assert_eq!(read.keep_alive, Duration::from_secs(620));
        assert!(config(&[("http_keep_alive_seconds", "soon")]).is_err());
    }

    #[test]
    fn workers_and_pool_sizes_are_read_and_zero_is_refused() {
        let read = config(&[("data_workers", "3"), ("data_pool_size", "7")]).unwrap();
        assert_eq!((read.workers, read.pool_size), (3, 7));
        assert_eq!(
            read.cluster_pool_size, 7,
            "a cluster's budget defaults to the pool size"
        );
        let budget = config(&[("data_cluster_pool_size", "4")]).unwrap();
        assert_eq!((budget.pool_size, budget.cluster_pool_size), (16, 4));
        assert!(config(&[]).unwrap().workers >= 1);
        for key in ["data_workers", "data_pool_size", "data_cluster_pool_size"] {
            match config(&[(key, "0")]) {
                Err(ConfigError::Invalid { key: refused, .. }) => assert_eq!(refused, key),
                other => panic!("{key} = 0 was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn the_listener_goes_where_listen_database_url_says_as_the_pools_user() {
        let pooled = [(
            "data_plane_database_url",
            "postgres://node:secret@127.0.0.1:6432/tenantry",
        )];
        let same = config(&pooled).unwrap();
        assert_eq!(same.listen_database.get_ports(), &[6432]);

        let direct = config(&[
            pooled[0],
            ("listen_database_url", "postgres://127.0.0.1:5432/tenantry"),
        ])
        .unwrap();
        let listen = &direct.listen_database;
        assert_eq!(listen.get_ports(), &[5432]);
        assert_eq!(listen.get_user(), Some("node"));
        assert_eq!(listen.get_password(), Some(&b"secret"[..]));
        assert_eq!(
            direct.database.get_ports(),
            &[6432],
            "the pool stays behind the pooler"
        );

        let other_user = config(&[
            pooled[0],
            (
                "listen_database_url",
                "postgres://listener@127.0.0.1/tenantry",
            ),
        ])
        .unwrap();
        assert_eq!(other_user.listen_database.get_user(), Some("listener"));
        assert_eq!(other_user.listen_database.get_password(), None);

        match config(&[("listen_database_url", "postgres://[::1")]) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "listen_database_url"),
            other => panic!("a malformed listen_database_url was not refused: {other:?}"),
        }
    }
}
