//! Where configuration comes from: an optional TOML file, then `TENANTRY_*` environment
//! variables, which win. Each binary reads the keys it knows into its own typed config and
//! validates it at start; a missing setting is reported by both of its names.
//!
//! Unknown keys in the file only warn: a rolled-back binary must still start with a newer
//! file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("missing setting: set {env} or `{key}` in the config file")]
    Missing { key: String, env: String },
    #[error("invalid value for {key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// Every key either binary reads; one file may configure both planes.
pub const KNOWN_KEYS: &[&str] = &[
    "database_url",
    "data_plane_database_url",
    "listen_database_url",
    "kek_file",
    "base_domain",
    "role_prefix",
    "control_listen",
    "control_pool_size",
    "default_plan",
    "data_listen",
    "data_pool_size",
    "data_cluster_pool_size",
    "data_cluster_password_dir",
    "trusted_proxies",
    "egress_allow_networks",
    "data_metrics_listen",
    "control_metrics_listen",
    "postgres_ca_file",
    "forwarded_header",
    "data_connection_max_uses",
    "data_affinity_groups",
    "data_workers",
    "clickhouse_url",
    "clickhouse_ca_file",
    "clickhouse_cluster",
    "clickhouse_shard_urls",
    "clickhouse_database",
    "tenant_cache_ttl_seconds",
    "statement_timeout_ms",
    "password_pepper_file",
    "password_hash_concurrency",
    "password_hash_queue",
    "password_hash_wait_ms",
    "access_token_ttl_seconds",
    "public_scheme",
    "smtp_url",
    "mail_from",
    "rate_limit_nodes",
    "auth_rate_limit_per_minute",
    "auth_rate_limit_burst",
    "max_body_bytes",
    "audit_enabled",
    "audit_outbox_recover_after_ms",
    "shutdown_drain_ms",
    "request_deadline_ms",
    "http_keep_alive_seconds",
    "control_request_deadline_ms",
    "audit_spool_dir",
    "audit_spool_max_bytes",
    "audit_flush_interval_ms",
    "telemetry_max_body_bytes",
];

/// The merged settings: file values, overridden by environment variables.
#[derive(Debug, Default, Clone)]
pub struct ConfigSource {
    file: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

fn env_name(key: &str) -> String {
    format!("TENANTRY_{}", key.to_ascii_uppercase())
}

impl ConfigSource {
    /// Reads the file (when given) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut source = Self {
            env: std::env::vars()
                .filter(|(name, _)| name.starts_with("TENANTRY_"))
                .collect(),
            ..Self::default()
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let table: toml::Table = text.parse().map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source,
            })?;
            for (key, value) in table {
                let value = match value {
                    toml::Value::String(text) => text,
                    toml::Value::Integer(number) => number.to_string(),
                    toml::Value::Float(number) => number.to_string(),
                    toml::Value::Boolean(flag) => flag.to_string(),
                    _ => {
                        return Err(ConfigError::Invalid {
                            key,
                            reason: "expected a string, number or boolean".to_owned(),
                        })
                    }
                };
                source.file.insert(key, value);
            }
        }
        Ok(source)
    }

    /// A source made of explicit `key = value` pairs, as if read from a file.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            file: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            env: BTreeMap::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.env
            .get(&env_name(key))
            .or_else(|| self.file.get(key))
            .filter(|value| !value.is_empty())
            .cloned()
    }

    pub fn require(&self, key: &str) -> Result<String, ConfigError> {
        self.get(key).ok_or_else(|| ConfigError::Missing {
            key: key.to_owned(),
            env: env_name(key),
        })
    }

    /// `public_scheme`: the scheme of tenants' public URLs (`https`, the default, or `http`),
    /// the same for both planes: token issuers, and the links in account mails.
    pub fn public_scheme(&self) -> Result<String, ConfigError> {
        match self.get("public_scheme").as_deref() {
            None | Some("https") => Ok("https".to_owned()),
            Some("http") => Ok("http".to_owned()),
            Some(other) => Err(ConfigError::Invalid {
                key: "public_scheme".to_owned(),
                reason: format!("'{other}' is neither http nor https"),
            }),
        }
    }

    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|error: T::Err| ConfigError::Invalid {
                key: key.to_owned(),
                reason: error.to_string(),
            }),
        }
    }

    /// Logs a warning for every file key not in `known`.
    pub fn warn_unknown(&self, known: &[&str]) {
        for key in self
            .file
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
        {
            tracing::warn!(key = %key, "unknown configuration key ignored");
        }
    }
}

/// Config file path from `--config`, else `TENANTRY_CONFIG`.
pub fn config_path(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| std::env::var_os("TENANTRY_CONFIG").map(PathBuf::from))
}

/// A setting that lists networks (`trusted_proxies`, `egress_allow_networks`): addresses and
/// CIDR ranges separated by commas or spaces; an address is its own /32 or /128, and a range
/// is kept as its network (`10.1.2.3/8` is `10.0.0.0/8`).
pub fn parse_networks(text: &str) -> Result<Vec<ipnet::IpNet>, String> {
    use std::str::FromStr;
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .map(|part| {
            ipnet::IpNet::from_str(part)
                .or_else(|_| std::net::IpAddr::from_str(part).map(ipnet::IpNet::from))
                .map(|network| network.trunc())
                .map_err(|_| format!("'{part}' is not an IP address or CIDR range"))
        })
        .collect()
}
