//! The control plane's shared state: catalog pool, key-encryption key, template. Built once
//! by `serve` or a CLI command, and passed to every service function.

use std::sync::Arc;

use deadpool_postgres::Pool;
use ring::rand::SystemRandom;
use shared::envelope::Kek;
use shared::template::Template;

use crate::config::Config;

#[derive(Clone)]
pub struct ControlPlane {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub kek: Arc<Kek>,
    pub template: Arc<Template>,
    pub rng: SystemRandom,
    /// ClickHouse (events database).
    pub clickhouse: clickhouse::Client,
    /// Lifecycle audit events; `None` outside a Tokio runtime or when the spool cannot be
    /// opened (then lifecycle changes are refused, see `crate::audit`).
    pub events: Option<shared::events::EventWriter>,
    /// What "now" is for time rules (token expiry, retention, timestamps the control plane
    /// writes): the system clock, or a test's manual one ([`Self::with_clock`]).
    pub clock: shared::clock::Clock,
    /// Pools to the registered clusters other than the catalog's, made at first use.
    pub clusters: Arc<crate::clusters::pools::ClusterPools>,
    /// `/metrics`: the process, the event writer, the pools by cluster.
    pub metrics: shared::metrics::NodeMetrics,
    /// The template roll-out this process runs in the background, if any.
    pub rollouts: Arc<crate::templates::Rollouts>,
    /// The HTTP client for URLs given for a tenant (a SAML IdP's metadata URL).
    pub egress: shared::egress::Egress,
}

impl ControlPlane {
    /// Connects (lazily) and loads the KEK. Fails on a bad URL or an unreadable KEK.
    pub fn new(config: Config, template: Template) -> anyhow::Result<Self> {
        if let Some(ca) = &config.postgres_ca_file {
            shared::db::tls::use_for_process(shared::db::tls::PostgresTls::from_ca_file(ca)?);
        }
        use anyhow::Context as _;
        let pg_config = shared::db::pg_config(&config.database_url, None)?;
        let pool = shared::db::pool(pg_config, config.pool_size)?;
        let kek = Kek::from_file(&config.kek_file).context("loading the key-encryption key")?;
        let clickhouse = config.events.client();
        let events = match tokio::runtime::Handle::try_current() {
            Ok(_) => Some(
                config
                    .events
                    .start_writer(
                        "control-plane",
                        Some(shared::events::outbox::Outboxes {
                            catalog: pool.clone(),
                            fleet: None,
                        }),
                    )
                    .context("starting the event writer")?,
            ),
            Err(_) => None,
        };
        let egress = shared::egress::Egress::new(config.egress.clone())
            .context("building the HTTP client for IdP metadata")?;
        Ok(Self {
            clickhouse,
            events,
            config: Arc::new(config),
            pool,
            kek: Arc::new(kek),
            template: Arc::new(template),
            rng: SystemRandom::new(),
            clock: shared::clock::Clock::System,
            clusters: Arc::default(),
            metrics: shared::metrics::NodeMetrics::new()?,
            rollouts: Arc::default(),
            egress,
        })
    }

    /// `/metrics`: the writer's and pools' state read now, then everything registered.
    pub fn render_metrics(&self) -> String {
        if let Some(events) = &self.events {
            self.metrics.observe_writer(events);
        }
        self.metrics
            .observe_pools(shared::catalog::CATALOG_CLUSTER, [&self.pool]);
        for (name, pool) in self.clusters.opened() {
            self.metrics.observe_pools(&name, [&pool]);
        }
        self.metrics.render()
    }

    /// The same control plane reading the time from `clock`.
    pub fn with_clock(self, clock: shared::clock::Clock) -> Self {
        Self { clock, ..self }
    }

    /// The same control plane with another template (tests, dry runs of new migrations).
    pub fn with_template(&self, template: Template) -> Self {
        Self {
            template: Arc::new(template),
            ..self.clone()
        }
    }

    /// Migrates the catalog and registers the template's versions, and creates or migrates
    /// the ClickHouse schema.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let mut client = self.pool.get().await?;
        shared::catalog::migrate(&mut client, &self.config.role_prefix, &self.template).await?;
        shared::events::schema::migrate_settings(&self.config.events)
            .await
            .context("migrating the ClickHouse schema")?;
        Ok(())
    }

    /// Writes out queued lifecycle events (a CLI command calls this before exiting).
    pub async fn flush_events(&self) {
        if let Some(events) = &self.events {
            events.stop().await;
        }
    }
}
