//! The cluster registry's rules: names, references to secrets, what adding, draining, making
//! default and removing may do.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::store::{self, ClusterRow, Removal};
use crate::context::ControlPlane;
use crate::error::ControlError;

/// How long adding or listing waits for a cluster to answer before calling it unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a cluster's URL is: an environment variable or a file, read by each plane in its own
/// environment. The catalog stores only this reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRef {
    Env(String),
    File(PathBuf),
}

impl UrlRef {
    /// The catalog's two columns (`url_env`, `url_file`).
    pub fn columns(&self) -> (Option<&str>, Option<String>) {
        match self {
            Self::Env(variable) => (Some(variable), None),
            Self::File(path) => (None, Some(path.display().to_string())),
        }
    }

    /// The URL it refers to. Errors name the reference, never what it holds.
    pub fn resolve(&self) -> Result<String, ControlError> {
        let unreadable = |reason: String| ControlError::InvalidInput {
            field: "url",
            message: format!("{self}: {reason}"),
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
    pub fn pg_config(&self) -> Result<tokio_postgres::Config, ControlError> {
        shared::db::pg_config(&self.resolve()?, None).map_err(|_| self.not_a_url())
    }

    pub(super) fn not_a_url(&self) -> ControlError {
        ControlError::InvalidInput {
            field: "url",
            message: format!("{self} does not hold a valid Postgres URL"),
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

/// A cluster's name: 1-32 characters, lowercase letters, digits and `-`, a letter first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn parse(raw: &str) -> Result<Self, ControlError> {
        let valid = raw.len() <= 32
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(ControlError::InvalidInput {
                field: "name",
                message: "a cluster name is 1-32 lowercase letters, digits and '-', \
                          starting with a letter"
                    .to_owned(),
            });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What `POST /v1/clusters` takes: a name and exactly one reference to the URL.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "eu-2", "description": "second EU cluster", "url_env": "TENANTRY_CLUSTER_EU_2_URL"}))]
pub struct NewCluster {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The environment variable that holds the cluster's URL (in each plane's environment).
    #[serde(default)]
    pub url_env: Option<String>,
    /// The file that holds the cluster's URL (on each plane's machines).
    #[serde(default)]
    pub url_file: Option<String>,
}

impl NewCluster {
    fn url(&self) -> Result<UrlRef, ControlError> {
        match (&self.url_env, &self.url_file) {
            (Some(variable), None) if !variable.is_empty() => Ok(UrlRef::Env(variable.clone())),
            (None, Some(path)) if !path.is_empty() => Ok(UrlRef::File(path.into())),
            _ => Err(ControlError::InvalidInput {
                field: "url",
                message: "give exactly one of url_env and url_file".to_owned(),
            }),
        }
    }
}

/// A cluster as operators see it: the catalog's row and what the cluster itself says now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "primary", "description": "the cluster that holds the catalog", "url": "catalog", "default": true, "drained": false, "tenants": 12, "reachable": true, "database_bytes": 48_000_000, "connections": 9}))]
pub struct ClusterView {
    pub name: String,
    pub description: String,
    /// `catalog` for the catalog's own cluster, else `env:VARIABLE` or `file:PATH`.
    pub url: String,
    /// New tenants go here unless a policy or the operator says otherwise.
    pub default: bool,
    /// Takes no new tenants.
    pub drained: bool,
    /// Tenants placed on it (not deleted).
    pub tenants: i64,
    /// Whether the control plane could reach it just now.
    pub reachable: bool,
    /// Size of the cluster's database, when reachable.
    pub database_bytes: Option<i64>,
    /// Connections open to that database, when reachable.
    pub connections: Option<i64>,
}

/// The cluster's database size and connections, or `None` when it does not answer in time.
async fn probe(control: &ControlPlane, row: &ClusterRow) -> Option<(i64, i64)> {
    let query = async {
        let pool = control
            .clusters
            .pool(control, &row.name, row.url.as_ref())?;
        store::size_and_connections(&pool.get().await?).await
    };
    tokio::time::timeout(PROBE_TIMEOUT, query).await.ok()?.ok()
}

async fn view(control: &ControlPlane, row: ClusterRow) -> ClusterView {
    let probed = probe(control, &row).await;
    ClusterView {
        url: row
            .url
            .as_ref()
            .map_or_else(|| "catalog".to_owned(), ToString::to_string),
        name: row.name,
        description: row.description,
        default: row.is_default,
        drained: row.drained,
        tenants: row.tenants,
        reachable: probed.is_some(),
        database_bytes: probed.map(|(bytes, _)| bytes),
        connections: probed.map(|(_, connections)| connections),
    }
}

pub async fn list(control: &ControlPlane) -> Result<Vec<ClusterView>, ControlError> {
    let rows = store::list(&control.pool.get().await?).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        views.push(view(control, row).await);
    }
    Ok(views)
}

pub async fn get(control: &ControlPlane, name: &str) -> Result<ClusterView, ControlError> {
    let row = store::get(&control.pool.get().await?, name)
        .await?
        .ok_or_else(|| ControlError::ClusterNotFound(name.to_owned()))?;
    Ok(view(control, row).await)
}

/// Registers a cluster: checks the reference resolves, connects, prepares the cluster, and
/// only then stores the row. An unreachable cluster is refused and nothing is stored.
pub async fn add(control: &ControlPlane, input: &NewCluster) -> Result<ClusterView, ControlError> {
    let name = ClusterName::parse(&input.name)?;
    let url = input.url()?;
    let catalog = control.pool.get().await?;
    if store::get(&catalog, name.as_str()).await?.is_some() {
        return Err(ControlError::ClusterExists(name.as_str().to_owned()));
    }
    prepare(control, name.as_str(), &url).await?;
    let description = input.description.as_deref().unwrap_or("");
    if !store::insert(&catalog, name.as_str(), description, &url).await? {
        return Err(ControlError::ClusterExists(name.as_str().to_owned()));
    }
    tracing::info!(cluster = name.as_str(), url = %url, "cluster added and prepared");
    get(control, name.as_str()).await
}

/// Prepares one cluster (`shared::cluster`), within the probe's deadline.
async fn prepare(control: &ControlPlane, name: &str, url: &UrlRef) -> Result<(), ControlError> {
    let unreachable = |reason: String| ControlError::ClusterUnreachable {
        name: name.to_owned(),
        reason,
    };
    let config = url.pg_config()?;
    let data_plane = control.config.role_prefix.data_plane_role();
    let work = async {
        let client = shared::db::connect(&config)
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        shared::cluster::prepare(&client, &data_plane)
            .await
            .map_err(|error| unreachable(error.to_string()))
    };
    tokio::time::timeout(PROBE_TIMEOUT, work)
        .await
        .map_err(|_| unreachable(format!("no answer within {PROBE_TIMEOUT:?}")))?
}

/// Prepares every registered cluster but the catalog's (which the catalog migrations
/// prepare); `migrate` runs it. Says, per cluster, whether it worked.
pub async fn prepare_all(
    control: &ControlPlane,
) -> Result<Vec<(String, Result<(), ControlError>)>, ControlError> {
    let rows = store::list(&control.pool.get().await?).await?;
    let mut outcomes = Vec::new();
    for row in rows {
        if let Some(url) = &row.url {
            let outcome = prepare(control, &row.name, url).await;
            outcomes.push((row.name, outcome));
        }
    }
    Ok(outcomes)
}

/// The cluster a new tenant goes to: `asked` if it is registered and not drained, else the
/// default. (A policy that spreads tenants over the clusters comes with the data plane serving
/// tenants of every cluster: until then the default is the catalog's cluster.)
pub async fn placement(
    catalog: &impl deadpool_postgres::GenericClient,
    asked: Option<&str>,
) -> Result<String, ControlError> {
    let Some(name) = asked else {
        return store::default_name(catalog)
            .await?
            .ok_or_else(|| ControlError::ClusterNotFound("(the default)".to_owned()));
    };
    match store::drained(catalog, name).await? {
        None => Err(ControlError::UnknownCluster(name.to_owned())),
        Some(true) => Err(ControlError::ClusterDrained(name.to_owned())),
        Some(false) => Ok(name.to_owned()),
    }
}

/// Stops (`true`) or resumes (`false`) placing new tenants on the cluster. The default
/// cluster cannot be drained: make another one default first.
pub async fn set_drained(
    control: &ControlPlane,
    name: &str,
    drained: bool,
) -> Result<ClusterView, ControlError> {
    let catalog = control.pool.get().await?;
    let row = store::get(&catalog, name)
        .await?
        .ok_or_else(|| ControlError::ClusterNotFound(name.to_owned()))?;
    if drained && row.is_default {
        return Err(ControlError::ClusterIsDefault(name.to_owned()));
    }
    store::set_drained(&catalog, name, drained).await?;
    tracing::info!(cluster = name, drained, "cluster drain changed");
    get(control, name).await
}

/// Makes the cluster the default; a drained cluster cannot be, nor (until placement is built)
/// any but the catalog's.
pub async fn set_default(control: &ControlPlane, name: &str) -> Result<ClusterView, ControlError> {
    let mut catalog = control.pool.get().await?;
    let transaction = catalog.transaction().await?;
    let row = store::get(&transaction, name)
        .await?
        .ok_or_else(|| ControlError::ClusterNotFound(name.to_owned()))?;
    if row.drained {
        return Err(ControlError::ClusterDrained(name.to_owned()));
    }
    // Tenants are provisioned and served on the catalog's cluster only, for now
    // (docs/scale-out.md): a default elsewhere would place tenants nobody can reach.
    if row.url.is_some() {
        return Err(ControlError::PlacementUnavailable(name.to_owned()));
    }
    store::set_default(&transaction, name).await?;
    transaction.commit().await?;
    tracing::info!(cluster = name, "cluster made default");
    get(control, name).await
}

/// Forgets a cluster that no tenant row names (deleted tenants' rows included) and that is
/// neither the default nor the catalog's own.
pub async fn remove(control: &ControlPlane, name: &str) -> Result<(), ControlError> {
    match store::remove(&control.pool.get().await?, name).await? {
        Removal::Removed => {
            control.clusters.forget(name);
            tracing::info!(cluster = name, "cluster removed");
            Ok(())
        }
        Removal::NotFound => Err(ControlError::ClusterNotFound(name.to_owned())),
        Removal::Refused => Err(ControlError::ClusterInUse(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_and_start_with_a_letter() {
        for good in ["primary", "eu-2", "a", &"x".repeat(32)] {
            assert!(ClusterName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "2eu", "EU", "eu_2", "eu 2", &"x".repeat(33), "-eu", "é"] {
            assert!(ClusterName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reference_names_its_secret_and_never_shows_it() {
        let input = |env: Option<&str>, file: Option<&str>| NewCluster {
            name: "eu-2".into(),
            description: None,
            url_env: env.map(Into::into),
            url_file: file.map(Into::into),
        };
        assert!(input(None, None).url().is_err());
        assert!(input(Some("A"), Some("/b")).url().is_err());
        assert!(input(Some(""), None).url().is_err());
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
        std::fs::remove_file(dir).unwrap();
    }
}
