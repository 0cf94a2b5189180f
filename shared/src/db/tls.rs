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
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why the TLS settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the Postgres CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("the Postgres CA file {path} holds no certificate a TLS client can trust: {reason}")]
    NoCertificate { path: String, reason: String },
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
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|error| TlsSetupError::CaFile {
            path: shown.clone(),
            reason: error.to_string(),
        })?;
        let mut roots = rustls::RootCertStore::empty();
        let mut found = 0;
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate.map_err(|error| TlsSetupError::NoCertificate {
                path: shown.clone(),
                reason: error.to_string(),
            })?;
            roots
                .add(certificate)
                .map_err(|error| TlsSetupError::NoCertificate {
                    path: shown.clone(),
                    reason: error.to_string(),
                })?;
            found += 1;
        }
        if found == 0 {
            return Err(TlsSetupError::NoCertificate {
                path: shown,
                reason: "no PEM certificate in it".to_owned(),
            });
        }
        Ok(Self {
            connector: connector(roots)?,
            everywhere: true,
        })
    }

    /// Servers the system's trust store vouches for, for URLs with `sslmode=require`.
    pub fn system() -> Result<Self, TlsSetupError> {
        let mut roots = rustls::RootCertStore::empty();
        // Certificates the store holds but rustls cannot use are skipped, as libpq would.
        let (added, skipped) =
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        tracing::debug!(added, skipped, "system trust store for Postgres TLS");
        Ok(Self {
            connector: connector(roots)?,
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
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
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

/// Whether `error` (a failed connection) is a TLS failure: a certificate not trusted, a
/// name that does not match, a server that speaks no TLS. Such an error is a configuration
/// error, not an outage: the planes refuse to start on it.
pub fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
        }
        if error.to_string().contains("server does not support TLS") {
            return true;
        }
        current = error.source();
    }
    false
}

/// Refuses to start on a TLS failure: one connection to `config` within 5 s. A certificate
/// that is not trusted, a name that does not match, a server without TLS are configuration
/// errors and end the process with a message saying so; an unreachable server is an outage,
/// which the planes ride out (readiness reports it), so it only warns.
pub async fn check_at_start(config: &tokio_postgres::Config) -> Result<(), String> {
    if for_connection(config).is_none() {
        return Ok(());
    }
    let attempt =
        tokio::time::timeout(std::time::Duration::from_secs(5), super::connect(config)).await;
    match attempt {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(super::DbSetupError::Connect(error))) if is_tls_failure(&error) => Err(format!(
            "TLS to Postgres at {} failed: {} (check postgres_ca_file and the host name in \
             the URL)",
            hosts(config),
            describe(&error)
        )),
        Ok(Err(error)) => {
            tracing::warn!(%error, "Postgres is not reachable yet; starting anyway");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("Postgres did not answer within 5 s; starting anyway");
            Ok(())
        }
    }
}

/// `error` and what caused it, outermost first (`error performing TLS handshake: invalid peer
/// certificate: UnknownIssuer`).
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(cause) = current {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = cause.source();
    }
    parts.join(": ")
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
