//! Audit events and tenants' telemetry on their way to ClickHouse.
//!
//! - [`schema`]: the ClickHouse tables, created and migrated by our own versioned migrator;
//! - [`rows`]: the rows as they are stored (one struct per table);
//! - [`chain`]: the audit log's tamper evidence (a MAC chain per tenant and writer stream);
//! - [`writer`]: the bounded queue the request path enqueues into, and the background task
//!   that batches into ClickHouse;
//! - [`store`]: the SQL of the audit outbox, the chain anchors and the stored-id lookup;
//! - [`spool`]: the append-only, checksummed, fsync'd file where batches wait while
//!   ClickHouse is unreachable or slow.
//!
//! Both planes use this: the data plane for requests and telemetry, the control plane for
//! tenant lifecycle events.

pub mod chain;
pub mod outbox;
pub mod rows;
pub mod schema;
pub mod spool;
pub mod store;
pub mod tls;
pub mod writer;

pub use rows::{AuditRow, Event, LogRow, MetricRow, SpanRow};
pub use writer::{EventWriter, WriterSettings, WriterStats};

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ConfigError, ConfigSource};

/// Where events go and how they wait: `clickhouse_url`, `clickhouse_ca_file`,
/// `clickhouse_database`, `clickhouse_cluster`, `clickhouse_shard_urls`, `audit_spool_dir`,
/// `audit_spool_max_bytes`, `audit_flush_interval_ms`.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// The server the planes send inserts and queries to (with a cluster: any of its shards,
    /// or a balancer in front of them).
    pub clickhouse_url: String,
    /// TLS to ClickHouse, for an `https://` URL (see [`tls`]); `None`: plain HTTP.
    pub clickhouse_tls: Option<tls::ClickHouseTls>,
    pub clickhouse_database: String,
    /// A cluster of shards instead of one server (see [`schema`]); `None`: one server.
    pub clickhouse_cluster: Option<ClickHouseCluster>,
    /// Base directory; each writer process takes the first free `<plane>-<n>` slot in it.
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub flush_interval: Duration,
}

/// A ClickHouse cluster: its name in every shard's `remote_servers`, and each shard's own URL
/// (the migrator creates the local tables on each; retention deletes on each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseCluster {
    pub name: String,
    pub shard_urls: Vec<String>,
}

/// Where rows are stored: a server and the suffix of its local tables (`_local` on a shard
/// of a cluster, where the unsuffixed name is the `Distributed` table over all shards; none
/// on a single server).
#[derive(Clone)]
pub struct Storage {
    pub client: clickhouse::Client,
    pub local_suffix: &'static str,
}

impl Storage {
    /// The table holding this server's rows of `table`.
    pub fn local(&self, table: &str) -> String {
        format!("{table}{}", self.local_suffix)
    }
}

/// The suffix of a shard's local tables.
pub const LOCAL_SUFFIX: &str = "_local";

/// `clickhouse_cluster` and `clickhouse_shard_urls`: both or neither, a cluster name of
/// `[A-Za-z0-9_]`, each shard URL of the same scheme as `clickhouse_url` (one TLS setting).
fn clickhouse_cluster(
    source: &ConfigSource,
    url: &str,
) -> Result<Option<ClickHouseCluster>, ConfigError> {
    let invalid = |key: &str, reason: &str| ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let shard_urls: Vec<String> = source
        .get("clickhouse_shard_urls")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|shard| !shard.is_empty())
        .map(str::to_owned)
        .collect();
    let Some(name) = source.get("clickhouse_cluster") else {
        return match shard_urls.is_empty() {
            true => Ok(None),
            false => Err(invalid(
                "clickhouse_shard_urls",
                "set, but clickhouse_cluster is not",
            )),
        };
    };
    if !schema::valid_cluster_name(&name) {
        return Err(invalid("clickhouse_cluster", "use [A-Za-z0-9_]"));
    }
    if shard_urls.is_empty() {
        return Err(invalid(
            "clickhouse_shard_urls",
            "a cluster needs each shard's URL (comma-separated)",
        ));
    }
    if shard_urls.iter().any(|shard| scheme(shard) != scheme(url)) {
        return Err(invalid(
            "clickhouse_shard_urls",
            "every shard URL must use clickhouse_url's scheme (http:// or https://)",
        ));
    }
    Ok(Some(ClickHouseCluster { name, shard_urls }))
}

/// A URL's scheme, lowercased (`None` without `://`).
fn scheme(url: &str) -> Option<String> {
    url.split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
}

/// The TLS `url` asks for: `https://` with the CA in `ca_file` (else the system's trust
/// store), `http://` none, and a CA file for an `http://` URL is refused.
fn clickhouse_tls(
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<Option<tls::ClickHouseTls>, ConfigError> {
    let invalid = |key: &str, reason: String| ConfigError::Invalid {
        key: key.to_owned(),
        reason,
    };
    match (scheme(url).as_deref(), ca_file) {
        (Some("https"), Some(path)) => tls::ClickHouseTls::from_ca_file(path)
            .map(Some)
            .map_err(|error| invalid("clickhouse_ca_file", error.to_string())),
        (Some("https"), None) => tls::ClickHouseTls::system()
            .map(Some)
            .map_err(|error| invalid("clickhouse_url", error.to_string())),
        (Some("http"), None) => Ok(None),
        (Some("http"), Some(_)) => Err(invalid(
            "clickhouse_ca_file",
            "set, but clickhouse_url is http:// (plain text): use https:// or drop the CA file"
                .to_owned(),
        )),
        _ => Err(invalid(
            "clickhouse_url",
            "must start with http:// or https://".to_owned(),
        )),
    }
}

/// Writer processes of one plane that may share a spool base directory.
const SPOOL_SLOTS: usize = 16;

impl EventSettings {
    pub fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        let clickhouse_database = source
            .get("clickhouse_database")
            .unwrap_or_else(|| "tenantry".to_owned());
        if !schema::valid_database_name(&clickhouse_database) {
            return Err(ConfigError::Invalid {
                key: "clickhouse_database".to_owned(),
                reason: "use [a-z0-9_], starting with a letter".to_owned(),
            });
        }
        let clickhouse_url = source
            .get("clickhouse_url")
            .unwrap_or_else(|| "http://127.0.0.1:18123".to_owned());
        let ca_file = source.get("clickhouse_ca_file").map(PathBuf::from);
        let clickhouse_tls = clickhouse_tls(&clickhouse_url, ca_file.as_deref())?;
        let clickhouse_cluster = clickhouse_cluster(source, &clickhouse_url)?;
        Ok(Self {
            clickhouse_url,
            clickhouse_tls,
            clickhouse_database,
            clickhouse_cluster,
            spool_dir: PathBuf::from(
                source
                    .get("audit_spool_dir")
                    .unwrap_or_else(|| "spool".to_owned()),
            ),
            spool_max_bytes: source.parse_or("audit_spool_max_bytes", 1u64 << 30)?,
            flush_interval: Duration::from_millis(source.parse_or("audit_flush_interval_ms", 200)?),
        })
    }

    /// A client of the events database. ClickHouse 18.16 (Debian's) rejects the settings
    /// that the crate's schema validation sends, so validation is off.
    ///
    /// With a cluster, an insert into a `Distributed` table returns once every shard holds
    /// its rows (`insert_distributed_sync`): a shard that is down fails the insert, and the
    /// writer spools the batch and replays it later (asking first which rows landed), rather
    /// than ClickHouse queueing it on the receiving server's disk, out of our sight.
    pub fn client(&self) -> clickhouse::Client {
        let client = self.client_of(&self.clickhouse_url);
        match &self.clickhouse_cluster {
            Some(_) => client.with_setting("insert_distributed_sync", "1"),
            None => client,
        }
    }

    fn client_of(&self, url: &str) -> clickhouse::Client {
        let client = match &self.clickhouse_tls {
            Some(tls) => tls.client(),
            None => clickhouse::Client::default(),
        };
        client
            .with_url(url)
            .with_database(&self.clickhouse_database)
            .with_validation(false)
    }

    /// Every server holding rows, and its local tables: each shard of the cluster, or the
    /// one server.
    pub fn storage(&self) -> Vec<Storage> {
        match &self.clickhouse_cluster {
            Some(cluster) => cluster
                .shard_urls
                .iter()
                .map(|url| Storage {
                    client: self.client_of(url),
                    local_suffix: LOCAL_SUFFIX,
                })
                .collect(),
            None => vec![Storage {
                client: self.client_of(&self.clickhouse_url),
                local_suffix: "",
            }],
        }
    }

    /// Starts a writer on the first spool slot `<plane>-<n>` no other process holds (a slot
    /// left by a process that stopped is taken over and replayed).
    pub fn start_writer(
        &self,
        plane: &str,
        outboxes: Option<outbox::Outboxes>,
    ) -> Result<EventWriter, spool::SpoolError> {
        let mut last = None;
        for slot in 0..SPOOL_SLOTS {
            let mut settings = WriterSettings::new(self.spool_dir.join(format!("{plane}-{slot}")));
            settings.spool_max_bytes = self.spool_max_bytes;
            settings.flush_interval = self.flush_interval;
            match EventWriter::start(self.client(), settings, outboxes.clone()) {
                Err(error @ spool::SpoolError::Locked(_)) => last = Some(error),
                outcome => return outcome,
            }
        }
        Err(last.unwrap_or_else(|| spool::SpoolError::Locked(self.spool_dir.display().to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<EventSettings, ConfigError> {
        EventSettings::from_source(&ConfigSource::from_pairs(pairs.iter().copied()))
    }

    fn refused_key(outcome: Result<EventSettings, ConfigError>) -> String {
        match outcome {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_cluster_takes_its_name_and_every_shards_url_of_the_urls_scheme() {
        assert_eq!(settings(&[]).unwrap().clickhouse_cluster, None);
        let read = settings(&[
            ("clickhouse_cluster", "events"),
            (
                "clickhouse_shard_urls",
                "http://ch-1:8123, http://ch-2:8123",
            ),
        ])
        .unwrap();
        assert_eq!(
            read.clickhouse_cluster,
            Some(ClickHouseCluster {
                name: "events".to_owned(),
                shard_urls: vec!["http://ch-1:8123".to_owned(), "http://ch-2:8123".to_owned()],
            })
        );
        let locals: Vec<String> = read
            .storage()
            .iter()
            .map(|storage| storage.local("audit_log"))
            .collect();
        assert_eq!(locals, ["audit_log_local", "audit_log_local"]);
        assert_eq!(
            settings(&[]).unwrap().storage()[0].local("audit_log"),
            "audit_log"
        );

        for (pairs, key) in [
            (
                &[("clickhouse_shard_urls", "http://ch-1:8123")][..],
                "clickhouse_shard_urls",
            ),
            (
                &[("clickhouse_cluster", "events")][..],
                "clickhouse_shard_urls",
            ),
            (
                &[
                    ("clickhouse_cluster", "events; DROP"),
                    ("clickhouse_shard_urls", "http://ch-1:8123"),
                ][..],
                "clickhouse_cluster",
            ),
            (
                &[
                    ("clickhouse_cluster", "events"),
                    ("clickhouse_shard_urls", "https://ch-1:8443"),
                ][..],
                "clickhouse_shard_urls",
            ),
        ] {
            assert_eq!(refused_key(settings(pairs)), key, "{pairs:?}");
        }
    }
}
