//! Postgres clusters that hold tenants.
//!
//! - [`prepare`]: what every such cluster needs besides the tenants' schemas (the data plane's
//!   login role, the audit outbox, the mail marks; `migrations/cluster/prepare.sql`).
//!   Idempotent; run when a cluster is added and by every `control-plane migrate`.
//! - [`UrlRef`]: where a cluster's URL is. The catalog stores only this reference; each plane
//!   reads it in its own environment.
//! - [`store`]: the registry's rows as the planes read them (which clusters, where their URLs
//!   are).
//! - [`fleet`]: the data plane's pools to every cluster other than the catalog's.

pub mod fleet;
pub mod store;

use std::path::PathBuf;

use crate::tenant::PgIdentifier;

const PREPARE: &str = include_str!("../../migrations/cluster/prepare.sql");

/// Prepares the cluster `client` is connected to, for the data plane's role `data_plane`.
/// Concurrent runs are serialised (`CREATE ROLE` and `CREATE … IF NOT EXISTS` race).
pub async fn prepare(
    client: &tokio_postgres::Client,
    data_plane: &PgIdentifier,
) -> Result<(), tokio_postgres::Error> {
    let sql = PREPARE.replace(":data_plane", &data_plane.quoted());
    client
        .batch_execute("SELECT pg_advisory_lock(7245002)")
        .await?;
    let outcome = client.batch_execute(&sql).await;
    client
        .batch_execute("SELECT pg_advisory_unlock(7245002)")
        .await?;
    outcome
}

/// Where a cluster's URL is: an environment variable or a file, read by each plane in its own
/// environment. The catalog stores only this reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRef {
    Env(String),
    File(PathBuf),
}

/// A reference that does not lead to a Postgres URL. Says which reference, never what it
/// holds.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("{reference}: {reason}")]
    Unreadable { reference: String, reason: String },
    #[error("{reference} does not hold a valid Postgres URL")]
    NotAUrl { reference: String },
}

impl UrlRef {
    /// The reference in the catalog's two columns (`url_env`, `url_file`); `None` for the
    /// catalog's own cluster, which has neither.
    pub fn from_columns(env: Option<String>, file: Option<String>) -> Option<Self> {
        match (env, file) {
            (Some(variable), _) => Some(Self::Env(variable)),
            (None, Some(path)) => Some(Self::File(path.into())),
            (None, None) => None,
        }
    }

    /// The catalog's two columns (`url_env`, `url_file`).
    pub fn columns(&self) -> (Option<&str>, Option<String>) {
        match self {
            Self::Env(variable) => (Some(variable), None),
            Self::File(path) => (None, Some(path.display().to_string())),
        }
    }

    /// The URL it refers to.
    pub fn resolve(&self) -> Result<String, UrlError> {
        let unreadable = |reason: String| UrlError::Unreadable {
            reference: self.to_string(),
            reason,
        };
        let url = match self {
            Self::Env(variable) => {
                std::env::var(variable).map_err(|_| unreadable("not set".to_owned()))?
            }
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|error| unreadable(error.kind().to_string()))?,
        };
        Ok(url.trim().to_owned())
    }

    /// The connection settings of the URL it refers to.
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, UrlError> {
        crate::db::pg_config(&self.resolve()?, None).map_err(|_| self.not_a_url())
    }

    pub fn not_a_url(&self) -> UrlError {
        UrlError::NotAUrl {
            reference: self.to_string(),
        }
    }
}

impl std::fmt::Display for UrlRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(variable) => write!(f, "env:{variable}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_its_secret_and_never_shows_it() {
        let missing = UrlRef::Env("TENANTRY_TEST_SURELY_UNSET_VARIABLE".into());
        assert_eq!(
            missing.to_string(),
            "env:TENANTRY_TEST_SURELY_UNSET_VARIABLE"
        );
        let error = missing.resolve().unwrap_err().to_string();
        assert!(
            error.contains("TENANTRY_TEST_SURELY_UNSET_VARIABLE"),
            "{error}"
        );
        let dir = std::env::temp_dir().join(format!("cluster-url-{}", std::process::id()));
        std::fs::write(&dir, "postgres://admin:s3cret@db.internal/tenantry\n").unwrap();
        let file = UrlRef::File(dir.clone());
        assert_eq!(
            file.resolve().unwrap(),
            "postgres://admin:s3cret@db.internal/tenantry"
        );
        assert!(!file.to_string().contains("s3cret"));
        std::fs::write(&dir, "not a url at all ::: \n").unwrap();
        let error = file.pg_config().unwrap_err().to_string();
        assert!(
            error.contains("does not hold a valid Postgres URL"),
            "{error}"
        );
        std::fs::remove_file(dir).unwrap();
    }
}
