//! Tenant templates: versioned SQL migrations applied inside each tenant's schema by refinery.
//!
//! Migrations run as the tenant's role with `search_path` set to the tenant's schema (both
//! `SET LOCAL`, inside each of refinery's transactions), so every object they create is owned
//! by the tenant role and lands in that schema; refinery's history table lives in the tenant
//! schema too. Our refinery driver sends each of refinery's transactions as one message, so a
//! tenant's migration costs three round trips however many versions are pending, and leaves
//! no session state behind on the connection.
//!
//! Rule for authors: a new version is additive (new tables, nullable columns, indexes) until
//! every tenant has it, because the data plane serves tenants one version behind during a
//! roll-out.
//!
//! A new tenant's schema is not built by replaying every version: it is made from the
//! template's *baseline*, one script of plain `CREATE` statements that leaves the schema as
//! versions 1 to N leave it, with refinery's history of those versions written beside it in
//! the same transaction; the versions after N are then applied as usual. Replaying costs time
//! that grows with the cluster: on PostgreSQL 15, `ALTER TABLE … ADD COLUMN … DEFAULT` reads
//! the whole of `pg_index` (every index of every tenant), so provisioning slowed with each
//! tenant already there (docs/benchmarks.md, "Fleet"). `tests/api/templates.rs` checks that
//! the baseline and the versions it stands for make the same schema.

use refinery::Migration;
use refinery_core::traits::r#async::{AsyncMigrate, AsyncQuery, AsyncTransaction};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::db::{pipelined_transaction, Typed};
use crate::tenant::PgIdentifier;

mod embedded {
    refinery::embed_migrations!("../tenant-templates/default");
}

/// The name of the only template so far.
pub const DEFAULT_TEMPLATE: &str = "default";

/// The refinery history table, created in the tenant schema.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// A template's versions 1 to `version` as one script (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pub version: i32,
    pub sql: &'static str,
}

/// The default template's baseline. To move it to a newer version: make a tenant at that
/// version, dump its schema (docs/tenancy.md, "Templates"), and set the version here.
const DEFAULT_BASELINE: Baseline = Baseline {
    version: 12,
    sql: include_str!("../../tenant-templates/default.baseline.sql"),
};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template migration failed: {0}")]
    Migration(String),
}

/// Whether `sql` holds an `ALTER TABLE … ADD COLUMN … DEFAULT` statement (read word by word,
/// statements split at `;`, `--` comments left out).
fn adds_column_with_default(sql: &str) -> bool {
    sql.split(';').any(|statement| {
        let words: Vec<String> = statement
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default())
            .flat_map(str::split_whitespace)
            .map(str::to_ascii_uppercase)
            .collect();
        let has = |pair: [&str; 2]| words.windows(2).any(|window| window == pair);
        has(["ALTER", "TABLE"])
            && has(["ADD", "COLUMN"])
            && words.iter().any(|word| word == "DEFAULT")
    })
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
    baseline: Option<Baseline>,
}

impl Template {
    /// The default template, embedded from `tenant-templates/default` at build time.
    pub fn default_template() -> Self {
        let mut migrations = embedded::migrations::runner().get_migrations().clone();
        migrations.sort_by_key(|migration| migration.version());
        Self {
            name: DEFAULT_TEMPLATE.to_owned(),
            migrations,
            baseline: Some(DEFAULT_BASELINE),
        }
    }

    /// This template with every new schema built by replaying its versions one by one (for
    /// the test that compares the baseline with them).
    pub fn without_baseline(mut self) -> Self {
        self.baseline = None;
        self
    }

    /// The baseline new schemas are made from, if the template has one.
    pub fn baseline(&self) -> Option<Baseline> {
        self.baseline
    }

    /// The versions every new tenant replays after the baseline (all of them without one)
    /// that add a column with a default: on PostgreSQL 15 each such statement reads the whole
    /// of `pg_index`, so they make provisioning slow down as the cluster fills. Non-empty
    /// means the baseline should move past them (docs/tenancy.md, "Templates").
    pub fn replayed_column_defaults(&self) -> Vec<i32> {
        let after = self.baseline.map_or(0, |baseline| baseline.version);
        self.migrations
            .iter()
            .filter(|migration| migration.version() > after)
            .filter(|migration| migration.sql().is_some_and(adds_column_with_default))
            .map(|migration| migration.version())
            .collect()
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

    /// Applies every migration the tenant schema lacks, as the tenant role, in one
    /// transaction. Returns the tenant's version afterwards (the newest: refinery refuses to
    /// run when the schema's history diverges from the template). For roll-outs: the schema
    /// has its history already (a new one is made by [`apply_deferred`](Self::apply_deferred)),
    /// so no baseline is looked for.
    pub async fn apply(
        &self,
        client: &tokio_postgres::Client,
        schema: &PgIdentifier,
        role: &PgIdentifier,
    ) -> Result<i32, TemplateError> {
        self.run(client, schema, role, "", None, None).await?;
        Ok(self.latest_version())
    }

    /// [`apply`](Self::apply) for provisioning: a schema without a history is made from the
    /// baseline first, and commits do not wait for their WAL flush (provisioning's later
    /// durable commit flushes these too, and it re-runs whatever a crash lost).
    pub async fn apply_deferred(
        &self,
        client: &tokio_postgres::Client,
        schema: &PgIdentifier,
        role: &PgIdentifier,
    ) -> Result<i32, TemplateError> {
        let durability = "SET LOCAL synchronous_commit TO off; ";
        self.run(client, schema, role, durability, None, self.baseline)
            .await?;
        Ok(self.latest_version())
    }

    /// Applies the migrations up to `version` only, as provisioning does (for a copy of a
    /// tenant's schema on another cluster, at the version the tenant has): from the baseline
    /// when `version` is at least the baseline's.
    pub async fn apply_up_to(
        &self,
        client: &tokio_postgres::Client,
        schema: &PgIdentifier,
        role: &PgIdentifier,
        version: i32,
    ) -> Result<i32, TemplateError> {
        let baseline = self.baseline.filter(|baseline| baseline.version <= version);
        self.run(client, schema, role, "", Some(version), baseline)
            .await?;
        Ok(version)
    }

    /// refinery's run up to `target` (the newest without one), after making a schema that has
    /// no history from `baseline`, when one is given.
    #[tracing::instrument(skip_all, fields(schema = %schema))]
    async fn run(
        &self,
        client: &tokio_postgres::Client,
        schema: &PgIdentifier,
        role: &PgIdentifier,
        durability: &str,
        target: Option<i32>,
        baseline: Option<Baseline>,
    ) -> Result<(), TemplateError> {
        let mut session = TenantMigrationSession {
            client,
            opening: format!(
                "{durability}SET LOCAL ROLE {}; SET LOCAL search_path TO {}",
                role.quoted(),
                schema.quoted()
            ),
        };
        let history = format!("{}.{HISTORY_TABLE}", schema.quoted());
        if let Some(baseline) = baseline {
            self.lay_baseline(&mut session, &history, baseline)
                .await
                .map_err(|error| TemplateError::Migration(error_chain(&error)))?;
        }
        let mut runner = refinery::Runner::new(&self.migrations).set_grouped(true);
        if let Some(version) = target {
            runner = runner.set_target(refinery::Target::Version(version));
        }
        runner.set_migration_table_name(history);
        runner
            .run_async(&mut session)
            .await
            .map_err(|error| TemplateError::Migration(error_chain(&error)))?;
        Ok(())
    }

    /// Makes a schema that has no history yet from `baseline`, and records versions 1 to
    /// `baseline.version` as applied, in one transaction; a schema with a history is left to
    /// refinery. The history table is made by refinery's own statement, and its rows are
    /// written as refinery-core's (crate-private) `insert_migration_query` writes them, so
    /// later runs see those versions as applied with the checksums of their files.
    async fn lay_baseline(
        &self,
        session: &mut TenantMigrationSession<'_>,
        history: &str,
        baseline: Baseline,
    ) -> Result<(), SessionError> {
        let fresh = pipelined_transaction(
            session.client,
            &session.opening,
            &[Typed::new(
                "SELECT to_regclass($1) IS NULL",
                &[(&history, tokio_postgres::types::Type::TEXT)],
            )],
        )
        .await?;
        let fresh: bool = match fresh.first().and_then(|rows| rows.first()) {
            Some(row) => row.try_get(0)?,
            None => false,
        };
        if !fresh {
            return Ok(());
        }
        let applied_on = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(|_| SessionError::History("the time now".to_owned()))?;
        let mut statements = vec![
            baseline.sql.to_owned(),
            TenantMigrationSession::assert_migrations_table_query(history),
        ];
        statements.extend(
            self.migrations
                .iter()
                .filter(|migration| migration.version() <= baseline.version)
                .map(|migration| {
                    format!(
                        "INSERT INTO {history} (version, name, applied_on, checksum) \
                         VALUES ({}, '{}', '{applied_on}', '{}')",
                        migration.version(),
                        migration.name().replace('\'', "''"),
                        migration.checksum()
                    )
                }),
        );
        session
            .execute(statements.iter().map(String::as_str))
            .await?;
        Ok(())
    }
}

/// refinery's view of one tenant: every refinery transaction runs as the tenant role in the
/// tenant schema and is sent as a single message.
struct TenantMigrationSession<'a> {
    client: &'a tokio_postgres::Client,
    /// `SET LOCAL` statements that put a transaction in the tenant's context.
    opening: String,
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("the migration history holds an unreadable row: {0}")]
    History(String),
}

impl AsyncTransaction for TenantMigrationSession<'_> {
    type Error = SessionError;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> Result<usize, SessionError> {
        let mut batch = format!("BEGIN; {};\n", self.opening);
        let mut count = 0;
        for query in queries {
            batch.push_str(query);
            batch.push_str(";\n");
            count += 1;
        }
        batch.push_str("COMMIT");
        if let Err(error) = self.client.batch_execute(&batch).await {
            // A failed statement skips the rest of the message, COMMIT included.
            self.client.batch_execute("ROLLBACK").await?;
            return Err(error.into());
        }
        Ok(count)
    }
}

impl AsyncQuery<Vec<Migration>> for TenantMigrationSession<'_> {
    async fn query<'a>(&'a mut self, query: &'a str) -> Result<Vec<Migration>, SessionError> {
        let results =
            pipelined_transaction(self.client, &self.opening, &[Typed::new(query, &[])]).await?;
        let mut applied = Vec::new();
        for row in results.iter().flatten() {
            let applied_on: String = row.try_get(2)?;
            let checksum: String = row.try_get(3)?;
            applied.push(Migration::applied(
                row.try_get(0)?,
                row.try_get(1)?,
                OffsetDateTime::parse(&applied_on, &Rfc3339)
                    .map_err(|_| SessionError::History(applied_on.clone()))?,
                checksum
                    .parse()
                    .map_err(|_| SessionError::History(checksum.clone()))?,
            ));
        }
        Ok(applied)
    }
}

impl AsyncMigrate for TenantMigrationSession<'_> {}

#[cfg(test)]
mod tests {
    use super::Template;

    fn migration(name: &str, sql: &str) -> refinery::Migration {
        refinery::Migration::unapplied(name, sql).expect("a migration name")
    }

    #[test]
    fn no_version_after_the_baseline_adds_a_column_with_a_default() {
        assert_eq!(
            Template::default_template().replayed_column_defaults(),
            Vec::<i32>::new(),
            "move the baseline past these versions (docs/tenancy.md, \"Templates\")"
        );
    }

    #[test]
    fn a_replayed_column_default_is_found_and_the_baseline_covers_its_own() {
        let template = Template::default_template().with_extra(vec![
            migration(
                "V100__flag",
                "CREATE TABLE notes (id int);\n\
                 -- a comment naming ALTER TABLE ADD COLUMN DEFAULT\n\
                 ALTER TABLE notes\n    ADD COLUMN pinned boolean NOT NULL default false;",
            ),
            migration("V101__plain", "ALTER TABLE notes ADD COLUMN body text"),
            migration(
                "V102__comment",
                "-- ALTER TABLE notes ADD COLUMN x int DEFAULT 1\nSELECT 1",
            ),
        ]);
        assert_eq!(template.replayed_column_defaults(), [100]);
        // Replaying every version, V5 and V9 are found too (their defaults are in the baseline).
        let replaying = template.without_baseline().replayed_column_defaults();
        assert!(
            replaying.contains(&5) && replaying.contains(&9),
            "{replaying:?}"
        );
    }
}
