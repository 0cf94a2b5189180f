//! The data plane's shared state, built once at start and handed to every handler.

use std::sync::Arc;

use anyhow::Context as _;
use ring::rand::SystemRandom;
use shared::envelope::Kek;
use shared::tenant_context::TenantDb;
use tokio::sync::watch;

use crate::api_keys::ApiKeys;
use crate::authz::cache::PermissionCache;
use crate::config::Config;
use crate::cors::CorsCache;
use crate::identity::passwords::PasswordHasher;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::records::collections::CollectionCache;
use crate::sessions::SessionCache;
use crate::tenancy::data_keys::DataKeys;
use crate::tenancy::listener::Caches;
use crate::tenancy::registry::TenantRegistry;
use crate::tokens::signing_keys::SigningKeys;
use crate::tokens::verified::VerifiedTokens;
use shared::clock::Clock;

/// Accepted access tokens remembered per node (about 0.5 KiB each).
const VERIFIED_TOKENS_CACHED: u64 = 200_000;
/// Collections whose settings are remembered per node.
const COLLECTIONS_CACHED: u64 = 100_000;
/// Users whose effective permissions are remembered per node.
const PERMISSIONS_CACHED: u64 = 200_000;
/// Connections for work off the HTTP workers: catalog lookups on cache misses, API-key usage
/// flushes (docs/scale-out.md counts them).
const SHARED_POOL_SIZE: usize = 2;

#[derive(Clone)]
pub struct DataPlane {
    pub config: Arc<Config>,
    pub tenant_db: TenantDb,
    pub registry: TenantRegistry,
    pub clickhouse: clickhouse::Client,
    /// The audit and telemetry writer (queue, batches, spool).
    pub events: shared::events::EventWriter,
    /// Telemetry events accepted per tenant today (the `events_per_day` quota).
    pub events_per_day: crate::ingest::quota::EventsPerDay,
    pub metrics: Metrics,
    pub data_keys: DataKeys,
    pub signing_keys: SigningKeys,
    pub verified_tokens: VerifiedTokens,
    pub sessions: SessionCache,
    /// API keys' digest key, cache of stored keys and usage tallies.
    pub api_keys: ApiKeys,
    /// Collection settings per (tenant, collection), evicted by NOTIFY.
    pub collections: CollectionCache,
    /// Effective permissions per (tenant, user), evicted by NOTIFY.
    pub permissions: PermissionCache,
    pub password_hasher: PasswordHasher,
    pub rng: SystemRandom,
    /// What "now" is: the system clock, or a test's manual clock.
    pub clock: Clock,
    /// This node's rate limiters (reading time from `clock`).
    pub rate_limits: RateLimits,
    /// Tenants' CORS policies.
    pub cors: CorsCache,
    /// True while the tenant-change listener is connected.
    pub listening: watch::Receiver<bool>,
    /// Set when the node shuts down: `/readyz` answers 503 so the balancer drains it.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// The HTTP client that talks to identity providers: only the addresses
    /// `egress_allow_networks` allows, no redirects followed, bounded timeouts.
    pub egress: shared::egress::Egress,
    /// OpenID providers' discovery documents and keys, per issuer (`sso::oidc_metadata`).
    pub oidc_metadata: crate::sso::oidc_metadata::MetadataCache,
    /// The other clusters this node serves tenants on.
    pub clusters: crate::tenancy::clusters::ClusterWatch,
}

impl DataPlane {
    /// `/metrics`: the writer's and pools' state read now, then everything registered.
    pub fn render_metrics(&self) -> String {
        let node = &self.metrics.node;
        node.observe_writer(&self.events);
        node.observe_pools(
            shared::catalog::CATALOG_CLUSTER,
            self.tenant_db
                .worker_pools()
                .iter()
                .chain([self.tenant_db.shared_pool()]),
        );
        if let Some(fleet) = self.tenant_db.fleet() {
            for cluster in fleet.opened() {
                node.observe_pools(cluster.name(), cluster.all());
            }
        }
        self.metrics.render()
    }

    /// Builds the pools and caches and starts the notification listener, and the mail worker
    /// when SMTP is configured. Must run inside a Tokio runtime.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        if let Some(ca) = &config.postgres_ca_file {
            shared::db::tls::use_for_process(shared::db::tls::PostgresTls::from_ca_file(ca)?);
        }
        // No connection options (a transaction-mode pooler refuses them): the statement
        // timeout goes with each tenant transaction (`TenantDb::with_statement_timeout`).
        let database = &config.database;
        // `pool_size` connections split over the HTTP workers, each worker a pool of its own
        // per affinity group (see `TenantDb`), and a small shared pool for tenant lookups
        // (cached) and background work.
        let per_worker = config.pool_size.div_ceil(config.workers);
        let group_sizes = shared::db::group_sizes(per_worker, config.affinity_groups);
        let groups = group_sizes.len();
        let pool = shared::db::pool(database.clone(), per_worker.min(SHARED_POOL_SIZE))?;
        let worker_pools = (0..config.workers)
            .flat_map(|_| group_sizes.iter())
            .map(|size| shared::db::pool(database.clone(), *size))
            .collect::<Result<Vec<_>, _>>()?;
        let metrics = Metrics::new()?;
        let catalog_deadline =
            shared::tenant_context::round_trip_deadline(config.statement_timeout());
        let registry = TenantRegistry::new(
            pool.clone(),
            config.tenant_cache_ttl,
            catalog_deadline,
            metrics.clone(),
        );
        let kek = Kek::from_file(&config.kek_file).context("loading the key-encryption key")?;
        let data_keys = DataKeys::new(
            pool.clone(),
            Arc::new(kek),
            config.tenant_cache_ttl,
            catalog_deadline,
        );
        let signing_keys = SigningKeys::new(config.access_token_ttl, config.tenant_cache_ttl);
        let verified_tokens = VerifiedTokens::new(config.access_token_ttl, VERIFIED_TOKENS_CACHED);
        let sessions = SessionCache::new();
        let cors = CorsCache::new(config.tenant_cache_ttl);
        let permissions = PermissionCache::new(config.tenant_cache_ttl, PERMISSIONS_CACHED);
        let password_hasher =
            PasswordHasher::from_pepper_file(&config.password_pepper_file, config.password_hashing)
                .context("loading the password pepper")?;
        // Tenants on other clusters than the catalog's: pools of their own, opened at the
        // first request for one of their tenants, reached as this node's own login.
        let fleet = shared::cluster::fleet::Fleet::new(
            pool.clone(),
            database.clone(),
            config.cluster_password_dir.clone(),
            config.cluster_pool_size,
            config.workers,
            groups,
        );
        let tenant_db = TenantDb::with_worker_pools(pool, worker_pools, groups)
            .with_statement_timeout(config.statement_timeout())
            .with_fleet(fleet)
            .with_connection_max_uses(Some(config.connection_max_uses));
        let collections = CollectionCache::new(config.tenant_cache_ttl, COLLECTIONS_CACHED);
        let api_keys = ApiKeys::new(
            password_hasher.derived_key(crate::api_keys::key::DIGEST_KEY_PURPOSE),
            tenant_db.clone(),
        );
        let clusters = crate::tenancy::clusters::ClusterWatch::default();
        let caches = Caches {
            registry: registry.clone(),
            data_keys: data_keys.clone(),
            signing_keys: signing_keys.clone(),
            sessions: sessions.clone(),
            cors: cors.clone(),
            api_keys: api_keys.cache.clone(),
            collections: collections.clone(),
            permissions: permissions.clone(),
            clusters: clusters.clone(),
        };
        let listening =
            crate::tenancy::listener::spawn(config.listen_database.clone(), caches.clone());
        crate::mail::worker::spawn(
            &config,
            &config.database,
            &config.listen_database,
            tenant_db.shared_pool().clone(),
            metrics.clone(),
        )?;
        let clickhouse = config.events.client();
        // Chain heads are anchored through a pool of their own (the data plane's role may
        // write `control.audit_chain_heads` only). Not the request pool: a connection is driven
        // by the runtime that opened it, and one opened by the writer's task and then lent to a
        // request handler on an HTTP worker made every query of that request cross threads
        // (measured: +20% p50 on an audited write, docs/benchmarks.md).
        let anchors = shared::db::pool(config.database.clone(), 1)
            .context("building the audit anchor pool")?;
        let outboxes = shared::events::outbox::Outboxes {
            catalog: anchors,
            fleet: tenant_db.fleet().cloned(),
        };
        let events = config
            .events
            .start_writer("data-plane", Some(outboxes))
            .context("starting the event writer")?;
        crate::audit::schema::ensure_in_background(&config.events);
        let egress = shared::egress::Egress::new(config.egress.clone())
            .context("building the identity providers' HTTP client")?;
        let state = Self {
            egress,
            oidc_metadata: Default::default(),
            rate_limits: RateLimits::new(config.rate_limit, Clock::System),
            config: Arc::new(config),
            tenant_db,
            registry,
            clickhouse,
            events,
            events_per_day: crate::ingest::quota::EventsPerDay::default(),
            metrics,
            data_keys,
            signing_keys,
            verified_tokens,
            sessions,
            api_keys,
            collections,
            permissions,
            password_hasher,
            rng: SystemRandom::new(),
            clock: Clock::System,
            cors,
            listening,
            draining: Arc::default(),
            clusters,
        };
        if state.config.audit_enabled {
            let catalog = state.tenant_db.shared_pool().clone();
            crate::audit::recovery::spawn(&state, None, catalog);
        }
        crate::tenancy::clusters::spawn(&state, caches);
        Ok(state)
    }

    /// The state the `worker`-th HTTP worker serves with: the same caches and clients, tenant
    /// work on that worker's own pool.
    pub fn for_worker(&self, worker: usize) -> Self {
        Self {
            tenant_db: self.tenant_db.for_worker(worker),
            ..self.clone()
        }
    }

    /// The same state reading time from `clock` (tests pass a manual clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.rate_limits = RateLimits::new(self.config.rate_limit, clock.clone());
        self.clock = clock;
        self
    }

    /// Waits until the tenant-change listener is in place (at start, and in tests).
    pub async fn wait_until_listening(&self) {
        let mut listening = self.listening.clone();
        let _ = listening.wait_for(|ready| *ready).await;
    }
}
