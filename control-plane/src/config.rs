//! The control plane's typed configuration, read once at start from a TOML file and
//! `TENANTRY_*` environment variables (which win). See README "Configuration".

use std::net::SocketAddr;
use std::path::PathBuf;

use shared::config::{ConfigError, ConfigSource};
use shared::tenant::RolePrefix;

#[derive(Debug, Clone)]
pub struct Config {
    /// Catalog database, also where tenant schemas live (the one placement cluster).
    pub database_url: String,
    /// File holding the key-encryption key (64 hex characters).
    pub kek_file: PathBuf,
    /// Tenants are reachable as `<slug>.<base_domain>` on the data plane.
    pub base_domain: String,
    /// Prefix of every Postgres role this deployment creates.
    pub role_prefix: RolePrefix,
    /// Where `serve` listens.
    pub listen: SocketAddr,
    pub pool_size: usize,
    /// Plan of tenants created without `--plan`.
    pub default_plan: String,
    /// Scheme of tenants' public URLs (`https` or `http`), for the links in mails.
    pub public_scheme: String,
    /// ClickHouse and the event spool, for tenant lifecycle audit events, `audit verify`
    /// and the retention job.
    pub events: shared::events::EventSettings,
    /// Longest an operator API request may take (`control_request_deadline_ms`): past it the
    /// answer is 503 `request_timeout`, whatever it was waiting for.
    pub request_deadline: std::time::Duration,
    /// Where `/metrics` is served instead of the operator port (`control_metrics_listen`;
    /// default none: on the operator port).
    pub metrics_listen: Option<SocketAddr>,
    /// The CA whose certificates Postgres servers must show (`postgres_ca_file`; see
    /// `shared::db::tls`).
    pub postgres_ca_file: Option<PathBuf>,
    /// Internal networks a SAML metadata URL given for a tenant may reach
    /// (`egress_allow_networks`, default none; see `shared::egress`).
    pub egress: shared::egress::EgressPolicy,
}

impl Config {
    pub fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        source.warn_unknown(shared::config::KNOWN_KEYS);
        let role_prefix = source
            .get("role_prefix")
            .unwrap_or_else(|| "tenantry".to_owned());
        Ok(Self {
            database_url: source.require("database_url")?,
            kek_file: PathBuf::from(source.require("kek_file")?),
            base_domain: source
                .get("base_domain")
                .unwrap_or_else(|| "localhost".to_owned()),
            role_prefix: RolePrefix::parse(&role_prefix).map_err(|reason| {
                ConfigError::Invalid {
                    key: "role_prefix".to_owned(),
                    reason,
                }
            })?,
            listen: source.parse_or("control_listen", SocketAddr::from(([127, 0, 0, 1], 8780)))?,
            pool_size: source.parse_or("control_pool_size", 8)?,
            default_plan: source
                .get("default_plan")
                .unwrap_or_else(|| "free".to_owned()),
            public_scheme: source.public_scheme()?,
            events: shared::events::EventSettings::from_source(source)?,
            request_deadline: std::time::Duration::from_millis(
                source.parse_or("control_request_deadline_ms", 60_000)?,
            ),
            postgres_ca_file: source.get("postgres_ca_file").map(PathBuf::from),
            egress: shared::egress::EgressPolicy::from_source(source)?,
            metrics_listen: source
                .get("control_metrics_listen")
                .map(|address| {
                    address.parse().map_err(|error: std::net::AddrParseError| {
                        ConfigError::Invalid {
                            key: "control_metrics_listen".to_owned(),
                            reason: error.to_string(),
                        }
                    })
                })
                .transpose()?,
        })
    }
}
