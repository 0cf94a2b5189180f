//! The ClickHouse schema, created and migrated by our own small migrator.
//!
//! Migrations are numbered and applied in order; each applied version is recorded in the
//! database's `schema_migrations` table, so running [`migrate`] again does nothing. Each
//! statement is itself idempotent (`IF NOT EXISTS`), so a migration interrupted half-way is
//! finished by the next run. Two migrators racing may both record a version: harmless, the
//! versions are read as a set.
//!
//! Every table is ordered by tenant first, then time, and partitioned by month, so a tenant's
//! time-range query reads a narrow slice, and retention can drop whole months. The SQL runs on
//! ClickHouse 18.16 (Debian's); on servers from 20.1 on, low-cardinality columns are declared
//! `LowCardinality(String)` and tables get a TTL as a ceiling on retention (per-tenant
//! retention itself is the control plane's job, see `docs/audit.md`).

use clickhouse::Client;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("invalid ClickHouse database name {0:?}: use [a-z0-9_], at most 60 characters")]
    DatabaseName(String),
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
}

/// What the server can do, from its version.
#[derive(Debug, Clone, Copy)]
pub struct ServerFeatures {
    pub major: u32,
    pub minor: u32,
}

impl ServerFeatures {
    pub fn parse(version: &str) -> Self {
        let mut parts = version
            .split('.')
            .map(|part| part.parse::<u32>().unwrap_or(0));
        Self {
            major: parts.next().unwrap_or(0),
            minor: parts.next().unwrap_or(0),
        }
    }

    /// `LowCardinality` without a setting, and column/table `TTL`.
    pub fn modern(&self) -> bool {
        self.major >= 20
    }

    fn low_cardinality(&self) -> &'static str {
        if self.modern() {
            "LowCardinality(String)"
        } else {
            "String"
        }
    }

    fn ttl(&self, column: &str) -> String {
        if self.modern() {
            format!("TTL {column} + INTERVAL {MAX_RETENTION_DAYS} DAY")
        } else {
            String::new()
        }
    }
}

/// Nothing is kept longer than this, whatever a tenant's retention says (modern servers
/// enforce it with TTL as well).
pub const MAX_RETENTION_DAYS: u32 = 3660;

struct Migration {
    version: u32,
    name: &'static str,
    statements: fn(&ServerFeatures) -> Vec<String>,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "audit_log",
        statements: audit_log,
    },
    Migration {
        version: 2,
        name: "telemetry",
        statements: telemetry,
    },
];

fn audit_log(features: &ServerFeatures) -> Vec<String> {
    let lc = features.low_cardinality();
    vec![format!(
        "CREATE TABLE IF NOT EXISTS audit_log (
            tenant_id String,
            occurred_at DateTime,
            occurred_at_ms UInt64,
            event_id String,
            request_id String,
            actor_type {lc},
            actor_id String,
            action {lc},
            resource_type {lc},
            resource_id String,
            result {lc},
            ip String,
            user_agent String,
            http_method {lc},
            http_path String,
            http_status UInt16,
            duration_ms UInt32,
            metadata String,
            chain_stream String,
            chain_seq UInt64,
            key_version Int32,
            prev_mac String,
            mac String
        ) ENGINE = ReplacingMergeTree()
        PARTITION BY toYYYYMM(occurred_at)
        ORDER BY (tenant_id, occurred_at, event_id)
        {ttl}",
        ttl = features.ttl("occurred_at")
    )]
}

fn telemetry(features: &ServerFeatures) -> Vec<String> {
    let lc = features.low_cardinality();
    let ttl = features.ttl("time");
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS telemetry_logs (
                tenant_id String,
                time DateTime,
                time_unix_nano UInt64,
                event_id String,
                service {lc},
                severity {lc},
                body String,
                trace_id String,
                span_id String,
                attributes String,
                ingested_at DateTime DEFAULT now()
            ) ENGINE = ReplacingMergeTree()
            PARTITION BY toYYYYMM(time)
            ORDER BY (tenant_id, time, event_id)
            {ttl}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS telemetry_metrics (
                tenant_id String,
                time DateTime,
                time_unix_nano UInt64,
                event_id String,
                service {lc},
                name {lc},
                kind {lc},
                value Float64,
                unit {lc},
                attributes String,
                ingested_at DateTime DEFAULT now()
            ) ENGINE = ReplacingMergeTree()
            PARTITION BY toYYYYMM(time)
            ORDER BY (tenant_id, time, event_id)
            {ttl}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS telemetry_spans (
                tenant_id String,
                time DateTime,
                start_unix_nano UInt64,
                end_unix_nano UInt64,
                event_id String,
                service {lc},
                trace_id String,
                span_id String,
                parent_span_id String,
                name String,
                kind {lc},
                status_code {lc},
                attributes String,
                ingested_at DateTime DEFAULT now()
            ) ENGINE = ReplacingMergeTree()
            PARTITION BY toYYYYMM(time)
            ORDER BY (tenant_id, time, event_id)
            {ttl}"
        ),
    ]
}

/// Whether `name` may be used as a ClickHouse database name here.
pub fn valid_database_name(name: &str) -> bool {
    (1..=60).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

/// Creates `database` if needed and applies the migrations it lacks; returns the versions
/// applied by this call. `client` may point at any database (it is re-pointed).
pub async fn migrate(client: &Client, database: &str) -> Result<Vec<u32>, SchemaError> {
    if !valid_database_name(database) {
        return Err(SchemaError::DatabaseName(database.to_owned()));
    }
    let server = client.clone().with_database("system");
    server
        .query(&format!("CREATE DATABASE IF NOT EXISTS `{database}`"))
        .execute()
        .await?;
    let version: String = server.query("SELECT version()").fetch_one().await?;
    let features = ServerFeatures::parse(&version);
    let client = client.clone().with_database(database);
    client
        .query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version UInt32,
                name String,
                applied_at DateTime
            ) ENGINE = MergeTree() ORDER BY version",
        )
        .execute()
        .await?;
    let applied: Vec<u32> = client
        .query("SELECT DISTINCT version FROM schema_migrations")
        .fetch_all()
        .await?;
    let mut done = Vec::new();
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        for statement in (migration.statements)(&features) {
            client.query(&statement).execute().await?;
        }
        client
            .query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())")
            .bind(migration.version)
            .bind(migration.name)
            .execute()
            .await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            database,
            "ClickHouse migration applied"
        );
        done.push(migration.version);
    }
    Ok(done)
}

/// The newest schema version this code knows.
pub fn latest_version() -> u32 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}
