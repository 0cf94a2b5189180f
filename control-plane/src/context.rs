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
}

impl ControlPlane {
    /// Connects (lazily) and loads the KEK. Fails on a bad URL or an unreadable KEK.
    pub fn new(config: Config, template: Template) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let pg_config = shared::db::pg_config(&config.database_url, None)?;
        let pool = shared::db::pool(pg_config, config.pool_size)?;
        let kek = Kek::from_file(&config.kek_file).context("loading the key-encryption key")?;
        Ok(Self {
            config: Arc::new(config),
            pool,
            kek: Arc::new(kek),
            template: Arc::new(template),
            rng: SystemRandom::new(),
        })
    }

    /// The same control plane with another template (tests, dry runs of new migrations).
    pub fn with_template(&self, template: Template) -> Self {
        Self {
            template: Arc::new(template),
            ..self.clone()
        }
    }

    /// Migrates the catalog and registers the template's versions.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let mut client = self.pool.get().await?;
        shared::catalog::migrate(&mut client, &self.config.role_prefix, &self.template).await?;
        Ok(())
    }
}
