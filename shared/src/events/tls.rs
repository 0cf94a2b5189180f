//! TLS to ClickHouse (config `clickhouse_ca_file`; docs/scale-out.md, "TLS to ClickHouse").
//!
//! - `clickhouse_url` says which: `https://` is TLS, the server's certificate checked against
//!   the CA in `clickhouse_ca_file` (without one, the system's trust store) and the host name
//!   in the URL; `http://` is plain text, the operator's explicit choice, and refused when a
//!   CA file is set (a CA file says TLS was meant).
//! - rustls with ring, as for Postgres ([`crate::tls`]); a certificate error is an error,
//!   never a downgrade.
//! - A certificate that is not trusted or a name it does not carry stops a plane at start
//!   ([`check_at_start`]); a ClickHouse that does not answer is an outage the event writer
//!   rides out on its spool.

use std::path::Path;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::tls::CaFileError;

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseTlsError {
    #[error(transparent)]
    CaFile(#[from] CaFileError),
    #[error("cannot set up TLS to ClickHouse: {0}")]
    Rustls(#[from] rustls::Error),
}

/// How this process verifies ClickHouse's certificate: an HTTPS-only connector over its
/// roots. Cloning shares it.
#[derive(Clone)]
pub struct ClickHouseTls {
    connector: hyper_rustls::HttpsConnector<HttpConnector>,
}

impl std::fmt::Debug for ClickHouseTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ClickHouseTls")
    }
}

/// The clickhouse crate's own defaults: TCP keepalive 60 s, idle connections dropped after
/// 2 s (ClickHouse closes them after 3).
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

impl ClickHouseTls {
    /// Servers whose certificates the CA in `path` (PEM) signed.
    pub fn from_ca_file(path: &Path) -> Result<Self, ClickHouseTlsError> {
        Self::with_roots(crate::tls::roots_from_ca_file("ClickHouse", path)?)
    }

    /// Servers the system's trust store vouches for.
    pub fn system() -> Result<Self, ClickHouseTlsError> {
        Self::with_roots(crate::tls::system_roots())
    }

    fn with_roots(roots: rustls::RootCertStore) -> Result<Self, ClickHouseTlsError> {
        let mut http = HttpConnector::new();
        http.set_keepalive(Some(TCP_KEEPALIVE));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config(roots)?)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self { connector })
    }

    /// A ClickHouse client (no URL yet) whose connections are TLS under these settings.
    pub fn client(&self) -> clickhouse::Client {
        clickhouse::Client::with_http_client(
            HyperClient::builder(TokioExecutor::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .build(self.connector.clone()),
        )
    }
}

/// Refuses to start on a TLS failure to ClickHouse: one query within 5 s
/// ([`crate::tls::refuse_tls_failure`]); the writers ride an outage out on their spools.
pub async fn check_at_start(settings: &super::EventSettings) -> Result<(), String> {
    if settings.clickhouse_tls.is_none() {
        return Ok(());
    }
    let client = settings.client();
    crate::tls::refuse_tls_failure(
        "ClickHouse",
        &settings.clickhouse_url,
        "check clickhouse_ca_file and the host name in clickhouse_url",
        async { super::store::answers(&client).await.map(|_| ()) },
    )
    .await
}
