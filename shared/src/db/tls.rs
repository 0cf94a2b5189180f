//! TLS to Postgres (config `postgres_ca_file`; docs/scale-out.md, "TLS to Postgres").
//!
//! - With a CA file, every connection of the process uses TLS, its server certificate
//!   checked against that CA and the host name in the URL (libpq's `verify-full`), unless its
//!   URL says `sslmode=disable` (a plain connection the operator asked for). `sslmode=prefer`,
//!   the default, is taken as `require`: no quiet fallback to plain text.
//! - Without one, a URL with `sslmode=require` is checked the same way against the system's
//!   trust store; other URLs connect in plain text, as before.
//! - rustls with ring; a certificate error is an error, never a downgrade.

use std::path::Path;
use std::sync::OnceLock;

use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why the TLS settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    CaFile(#[from] crate::tls::CaFileError),
    #[error("cannot set up TLS to Postgres: {0}")]
    Rustls(#[from] rustls::Error),
}

/// How this process verifies Postgres servers.
#[derive(Clone)]
pub struct PostgresTls {
    connector: MakeRustlsConnect,
    /// Every connection uses TLS (a CA file was given).
    everywhere: bool,
}

impl PostgresTls {
    /// Servers whose certificates the CA in `path` (PEM, one or more certificates) signed.
    pub fn from_ca_file(path: &Path) -> Result<Self, TlsSetupError> {
        let roots = crate::tls::roots_from_ca_file("Postgres", path)?;
        Ok(Self {
            connector: connector(roots)?,
            everywhere: true,
        })
    }

    /// Servers the system's trust store vouches for, for URLs with `sslmode=require`.
    pub fn system() -> Result<Self, TlsSetupError> {
        Ok(Self {
            connector: connector(crate::tls::system_roots())?,
            everywhere: false,
        })
    }

    /// The connection `config` asks for under these settings: `Some` with TLS (and the mode
    /// made `require`), `None` in plain text.
    pub fn applied(
        &self,
        config: &tokio_postgres::Config,
    ) -> Option<(tokio_postgres::Config, MakeRustlsConnect)> {
        let tls = match config.get_ssl_mode() {
            SslMode::Disable => false,
            SslMode::Require => true,
            _ => self.everywhere,
        };
        tls.then(|| {
            let mut config = config.clone();
            config.ssl_mode(SslMode::Require);
            (config, self.connector.clone())
        })
    }
}

fn connector(roots: rustls::RootCertStore) -> Result<MakeRustlsConnect, TlsSetupError> {
    Ok(MakeRustlsConnect::new(crate::tls::client_config(roots)?))
}

static PROCESS: OnceLock<PostgresTls> = OnceLock::new();

/// Makes `tls` the settings of every Postgres connection this process opens from now on
/// ([`super::pool`], [`super::connect`], the notification listener). Set once, at start, by a
/// plane whose configuration names a CA file; a second call keeps the first.
pub fn use_for_process(tls: PostgresTls) {
    if PROCESS.set(tls).is_err() {
        tracing::debug!("Postgres TLS settings were set already; the first stay");
    }
}

/// The settings for a connection of this process: the CA configured at start, else the
/// system's trust store for URLs that require TLS (`None` if that store cannot be used:
/// such URLs then fail to connect).
pub fn for_process() -> Option<&'static PostgresTls> {
    static SYSTEM: OnceLock<Option<PostgresTls>> = OnceLock::new();
    PROCESS.get().or_else(|| {
        SYSTEM
            .get_or_init(|| match PostgresTls::system() {
                Ok(tls) => Some(tls),
                Err(error) => {
                    tracing::error!(%error, "no TLS to Postgres with the system's trust store");
                    None
                }
            })
            .as_ref()
    })
}

/// What [`super::pool`] and [`super::connect`] use for `config`: TLS (`Some`, the mode made
/// `require`) or plain text (`None`).
pub fn for_connection(
    config: &tokio_postgres::Config,
) -> Option<(tokio_postgres::Config, MakeRustlsConnect)> {
    for_process()?.applied(config)
}

pub use crate::tls::{describe, is_tls_failure};

/// Refuses to start on a TLS failure to Postgres: one connection to `config` within 5 s
/// ([`crate::tls::refuse_tls_failure`]).
pub async fn check_at_start(config: &tokio_postgres::Config) -> Result<(), String> {
    if for_connection(config).is_none() {
        return Ok(());
    }
    let probe = async {
        match super::connect(config).await {
            Ok(_) => Ok(()),
            // The driver's own error, whose causes say what TLS refused.
            Err(super::DbSetupError::Connect(error)) => {
                Err(Box::<dyn std::error::Error + Send + Sync>::from(error))
            }
            Err(other) => Err(other.into()),
        }
    };
    crate::tls::refuse_tls_failure(
        "Postgres",
        &hosts(config),
        "check postgres_ca_file and the host name in the URL",
        probe,
    )
    .await
}

fn hosts(config: &tokio_postgres::Config) -> String {
    config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}
