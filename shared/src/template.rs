//! Tenant templates: versioned SQL migrations applied inside each tenant's schema by refinery.
//!
//! Migrations run on a connection whose session role is the tenant's role and whose
//! `search_path` is the tenant's schema, so every object they create is owned by the tenant
//! role and lands in that schema; refinery's history table lives in the tenant schema too.
//! Rule for authors: a new version is additive (new tables, nullable columns, indexes) until
//! every tenant has it, because the data plane serves tenants one version behind during a
//! roll-out.

use refinery::Migration;

use crate::tenant::PgIdentifier;

mod embedded {
    refinery::embed_migrations!("../tenant-templates/default");
}

/// The name of the only template so far.
pub const DEFAULT_TEMPLATE: &str = "default";

/// The refinery history table, unqualified; it is created in the tenant schema.
const HISTORY_TABLE: &str = "refinery_schema_history";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template migration failed: {0}")]
    Migration(String),
    #[error("database error while preparing the tenant session: {0}")]
    Session(#[from] tokio_postgres::Error),
}

/// An error and its sources on one line: refinery's own message names only the step.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A set of template migrations, in version order.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    migrations: Vec<Migration>,
}

impl Template {
    /// The default template, embedded from `tenant-templates/default` at build time.
    pub fn default_template() -> Self {
        let mut migrations = embedded::migrations::runner().get_migrations().clone();
        migrations.sort_by_key(|migration| migration.version());
        Self {
            name: DEFAULT_TEMPLATE.to_owned(),
            migrations,
        }
    }

    /// This template plus `extra` migrations (used by tests and by operators trying a
    /// migration before committing it to the template folder).
    pub fn with_extra(mut self, extra: Vec<Migration>) -> Self {
        self.migrations.extend(extra);
        self.migrations.sort_by_key(|migration| migration.version());
        self
    }

    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// The newest version, 0 for an empty template.
    pub fn latest_version(&self) -> i32 {
        self.migrations
            .last()
            .map_or(0, |migration| migration.version())
    }

    /// Applies every migration `client`'s tenant schema lacks, as the tenant role, in one
    /// transaction. Returns the tenant's version afterwards.
    ///
    /// Changes the session's role and search_path for the duration; the caller must not
    /// return `client` to a pool if this fails (the reset may not have happened).
    #[tracing::instrument(skip_all, fields(schema = %schema))]
    pub async fn apply(
        &self,
        client: &mut tokio_postgres::Client,
        schema: &PgIdentifier,
        role: &PgIdentifier,
    ) -> Result<i32, TemplateError> {
        client
            .batch_execute(&format!(
                "SET ROLE {}; SET search_path TO {}",
                role.quoted(),
                schema.quoted()
            ))
            .await?;
        let mut runner = refinery::Runner::new(&self.migrations).set_grouped(true);
        runner.set_migration_table_name(format!("{}.{HISTORY_TABLE}", schema.quoted()));
        let outcome = runner.run_async(client).await;
        client
            .batch_execute("RESET ROLE; RESET search_path")
            .await?;
        outcome.map_err(|error| TemplateError::Migration(error_chain(&error)))?;
        let version: Option<i32> = client
            .query_one(
                &format!(
                    "SELECT max(version) FROM {}.{HISTORY_TABLE}",
                    schema.quoted()
                ),
                &[],
            )
            .await?
            .get(0);
        Ok(version.unwrap_or(0))
    }
}
