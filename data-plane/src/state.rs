//! The data plane's shared state, built once at start and handed to every handler.

use std::sync::Arc;

use shared::tenant_context::TenantDb;
use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::tenancy::registry::TenantRegistry;

#[derive(Clone)]
pub struct DataPlane {
    pub config: Arc<Config>,
    pub tenant_db: TenantDb,
    pub registry: TenantRegistry,
    pub clickhouse: clickhouse::Client,
    pub metrics: Metrics,
    /// True while the tenant-change listener is connected.
    pub listening: watch::Receiver<bool>,
}

impl DataPlane {
    /// Builds the pool and caches and starts the notification listener, and the mail worker
    /// when SMTP is configured. Must run inside a Tokio runtime.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        // Statement timeout as a connection option: a limit on every statement at no cost per
        // request (a `SET LOCAL` would be one more statement in every transaction).
        let mut database = config.database.clone();
        database.options(format!(
            "-c statement_timeout={}",
            config.statement_timeout_ms
        ));
        let pool = shared::db::pool(database.clone(), config.pool_size)?;
        let metrics = Metrics::new()?;
        let registry = TenantRegistry::new(pool.clone(), config.tenant_cache_ttl, metrics.clone());
        let listening = crate::tenancy::listener::spawn(config.database.clone(), registry.clone());
        crate::mail::worker::spawn(&config.mail, &database, &config.database, metrics.clone())?;
        // ClickHouse 18.16 (Debian) rejects the settings that schema validation sends.
        let clickhouse = clickhouse::Client::default()
            .with_url(&config.clickhouse_url)
            .with_database(&config.clickhouse_database)
            .with_validation(false);
        Ok(Self {
            config: Arc::new(config),
            tenant_db: TenantDb::new(pool),
            registry,
            clickhouse,
            metrics,
            listening,
        })
    }

    /// Waits until the tenant-change listener is in place (at start, and in tests).
    pub async fn wait_until_listening(&self) {
        let mut listening = self.listening.clone();
        let _ = listening.wait_for(|ready| *ready).await;
    }
}
