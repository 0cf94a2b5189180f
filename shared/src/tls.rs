//! What TLS to our stores (Postgres: [`crate::db::tls`]; ClickHouse: [`crate::events::tls`])
//! shares: the roots a server's certificate must chain to (a CA file, or the system's trust
//! store), one rustls client configuration (ring, safe protocol versions, no client
//! certificate), and telling a TLS failure (a configuration error) from an outage.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Why a CA file gave no roots. `store` names whose CA file it is (`Postgres`, `ClickHouse`).
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("cannot read the {store} CA file {path}: {reason}")]
    Read {
        store: &'static str,
        path: String,
        reason: String,
    },
    #[error("the {store} CA file {path} holds no certificate a TLS client can trust: {reason}")]
    NoCertificate {
        store: &'static str,
        path: String,
        reason: String,
    },
}

/// The certificates in the PEM file at `path` (one or more), as trust roots.
pub fn roots_from_ca_file(
    store: &'static str,
    path: &Path,
) -> Result<rustls::RootCertStore, CaFileError> {
    let shown = path.display().to_string();
    let no_certificate = |reason: String| CaFileError::NoCertificate {
        store,
        path: shown.clone(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|error| CaFileError::Read {
        store,
        path: shown.clone(),
        reason: error.to_string(),
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|error| no_certificate(error.to_string()))?;
        roots
            .add(certificate)
            .map_err(|error| no_certificate(error.to_string()))?;
    }
    if roots.is_empty() {
        return Err(no_certificate("no PEM certificate in it".to_owned()));
    }
    Ok(roots)
}

/// The system's trust store; certificates rustls cannot use are skipped, as libpq or curl
/// would.
pub fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let (added, skipped) =
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    tracing::debug!(added, skipped, "system trust store");
    roots
}

/// A client configuration that trusts `roots` and checks the server's name: rustls with
/// ring, its safe default protocol versions, no client certificate.
pub fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// A store's start-up check: `probe` (one connection or query) within 5 s. A TLS failure (a
/// certificate that is not trusted, a name that does not match, a server without TLS) is a
/// configuration error: `Err` with a message naming the `store`, where it is (`at`) and what
/// to check (`hint`), and the process ends. An unreachable or silent store is an outage,
/// which the planes ride out (readiness reports it): it only warns.
pub async fn refuse_tls_failure<E>(
    store: &str,
    at: &str,
    hint: &str,
    probe: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            let error: Box<dyn std::error::Error + Send + Sync> = error.into();
            if is_tls_failure(&*error) {
                return Err(format!(
                    "TLS to {store} at {at} failed: {} ({hint})",
                    describe(&*error)
                ));
            }
            tracing::warn!(%error, "{store} is not reachable yet; starting anyway");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("{store} did not answer within 5 s; starting anyway");
            Ok(())
        }
    }
}

/// Whether `error` (a failed connection) is a TLS failure: a certificate not trusted, a
/// name that does not match, a server that speaks no TLS. Such an error is a configuration
/// error, not an outage: the planes refuse to start on it.
pub fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    causes(error).any(|cause| {
        cause.downcast_ref::<rustls::Error>().is_some()
            || cause.to_string().contains("server does not support TLS")
    })
}

/// `error` and what caused it, outermost first (`error performing TLS handshake: invalid peer
/// certificate: UnknownIssuer`).
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(error) {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// `error`, then each error that caused it. An `io::Error` wrapping another error leads to that
/// error itself: its `source()` would skip it (and give that error's own source), and the TLS
/// stacks (tokio-rustls under hyper-rustls, wrapped again by hyper-util) carry rustls's
/// error as an `io::Error` inside an `io::Error`.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |error| {
        match error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        }
    })
}
