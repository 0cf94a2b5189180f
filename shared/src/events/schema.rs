//! The ClickHouse schema, created and migrated by our own small migrator.
//!
//! Migrations are numbered and applied in order; each applied version is recorded in the
//! database's `schema_migrations` table, so running [`migrate`] again does nothing. Each
//! statement is itself idempotent (`IF NOT EXISTS`), so a migration interrupted half-way is
//! finished by the next run. Two migrators racing may both record a version: harmless, the
//! versions are read as a set.
//!
//! Every table is ordered by tenant first, then time, and partitioned by month, so a tenant's
//! time-range query reads a narrow slice, and retention can drop whole months.
//!
//! **On a cluster** (`clickhouse_cluster`; docs/scale-out.md, "ClickHouse as a cluster") each
//! table is made on every shard twice: `<table>_local`, holding that shard's rows, and
//! `<table>`, a `Distributed` table over every shard's `<table>_local` with
//! `sipHash64(tenant_id)` as the sharding key, so a tenant's rows all live on one shard and
//! the planes keep using the plain names for inserts and queries on any shard. ClickHouse
//! 18.16 without ZooKeeper has neither `ON CLUSTER` DDL nor replication, so the migrator
//! connects to each shard itself (`clickhouse_shard_urls`); each shard records its own
//! `schema_migrations`. A later migration that changes a table must change both forms. The SQL runs on
//! ClickHouse 18.16 (Debian's); on servers from 20.1 on, low-cardinality columns are declared
//! `LowCardinality(String)` and tables get a TTL as a ceiling on retention (per-tenant
//! retention itself is the control plane's job, see `docs/audit.md`).

use clickhouse::Client;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("invalid ClickHouse database name {0:?}: use [a-z0-9_], at most 60 characters")]
    DatabaseName(String),
    #[error("invalid ClickHouse cluster name {0:?}: use [A-Za-z0-9_]")]
    ClusterName(String),
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
    tables: fn(&ServerFeatures) -> Vec<Table>,
}

/// A table a migration makes: its name, and its columns and engine.
struct Table {
    name: &'static str,
    definition: String,
}

/// How a server holds the tables.
enum Layout<'a> {
    /// One server: each table as it is defined.
    Single,
    /// A shard of cluster `cluster`: each table as `<table>_local`, and a `Distributed`
    /// table of the plain name over every shard's.
    Shard { cluster: &'a str, database: &'a str },
}

impl Layout<'_> {
    fn statements(&self, table: &Table) -> Vec<String> {
        let Table { name, definition } = table;
        match self {
            Layout::Single => vec![format!("CREATE TABLE IF NOT EXISTS {name} {definition}")],
            Layout::Shard { cluster, database } => {
                let local = format!("{name}{}", super::LOCAL_SUFFIX);
                vec![
                    format!("CREATE TABLE IF NOT EXISTS {local} {definition}"),
                    format!(
                        "CREATE TABLE IF NOT EXISTS {name} AS {local} \
                         ENGINE = Distributed({cluster}, {database}, {local}, sipHash64(tenant_id))"
                    ),
                ]
            }
        }
    }
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "audit_log",
        tables: audit_log,
    },
    Migration {
        version: 2,
        name: "telemetry",
        tables: telemetry,
    },
];

fn audit_log(features: &ServerFeatures) -> Vec<Table> {
    let lc = features.low_cardinality();
    vec![Table {
        name: "audit_log",
        definition: format!(
            "(
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
        ),
    }]
}

fn telemetry(features: &ServerFeatures) -> Vec<Table> {
    let lc = features.low_cardinality();
    let ttl = features.ttl("time");
    vec![
        Table {
            name: "telemetry_logs",
            definition: format!(
                "(
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
        },
        Table {
            name: "telemetry_metrics",
            definition: format!(
                "(
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
        },
        Table {
            name: "telemetry_spans",
            definition: format!(
                "(
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
        },
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

/// Migrates where `settings` say events go: the one server, or every shard of the cluster;
/// returns the versions applied by this call (on any shard).
pub async fn migrate_settings(settings: &super::EventSettings) -> Result<Vec<u32>, SchemaError> {
    let database = &settings.clickhouse_database;
    let Some(cluster) = &settings.clickhouse_cluster else {
        return migrate(&settings.client(), database).await;
    };
    if !valid_cluster_name(&cluster.name) {
        return Err(SchemaError::ClusterName(cluster.name.clone()));
    }
    let layout = Layout::Shard {
        cluster: &cluster.name,
        database,
    };
    let mut applied = Vec::new();
    for shard in settings.storage() {
        for version in migrate_with(&shard.client, database, &layout).await? {
            if !applied.contains(&version) {
                applied.push(version);
            }
        }
    }
    Ok(applied)
}

/// Whether `name` may name a cluster here (it is written into DDL).
pub fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// Creates `database` on one server if needed and applies the migrations it lacks; returns
/// the versions applied by this call. `client` may point at any database (it is re-pointed).
pub async fn migrate(client: &Client, database: &str) -> Result<Vec<u32>, SchemaError> {
    migrate_with(client, database, &Layout::Single).await
}

async fn migrate_with(
    client: &Client,
    database: &str,
    layout: &Layout<'_>,
) -> Result<Vec<u32>, SchemaError> {
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
        for table in (migration.tables)(&features) {
            for statement in layout.statements(&table) {
                client.query(&statement).execute().await?;
            }
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
