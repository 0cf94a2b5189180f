//! The cluster registry's rules: names, references to secrets, what adding, draining, making
//! default and removing may do.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::store::{self, ClusterRow, Removal};
use crate::context::ControlPlane;
use crate::error::ControlError;

/// How long adding or listing waits for a cluster to answer before calling it unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub use shared::cluster::UrlRef;

/// A cluster's name: 1-32 characters, lowercase letters, digits and `-`, a letter first; not
/// `rebalance` (a path of the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn parse(raw: &str) -> Result<Self, ControlError> {
        let valid = raw != "rebalance"
            && raw.len() <= 32
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
    /// Plans pinned to it: their new tenants are placed here.
    pub plans: Vec<String>,
    /// Whether the control plane could reach it just now.
    pub reachable: bool,
    /// Size of the cluster's database, when reachable.
    pub database_bytes: Option<i64>,
    /// Connections open to that database, when reachable.
    pub connections: Option<i64>,
}

/// The cluster's database size and connections, or `None` when it does not answer within
/// `timeout`.
async fn probe(control: &ControlPlane, row: &ClusterRow, timeout: Duration) -> Option<(i64, i64)> {
    let query = async {
        let pool = control
            .clusters
            .pool(control, &row.name, row.url.as_ref())?;
        store::size_and_connections(&pool.get().await?).await
    };
    tokio::time::timeout(timeout, query).await.ok()?.ok()
}

async fn view(control: &ControlPlane, row: ClusterRow) -> ClusterView {
    let probed = probe(control, &row, PROBE_TIMEOUT).await;
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
        plans: row.plans,
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

/// The clusters a new tenant may be placed on (not drained), by name, and which is the
/// default: what a create form offers (no reachability probe).
pub async fn placeable(control: &ControlPlane) -> Result<Vec<(String, bool)>, ControlError> {
    let rows = store::list(&control.pool.get().await?).await?;
    Ok(rows
        .into_iter()
        .filter(|row| !row.drained)
        .map(|row| (row.name, row.is_default))
        .collect())
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
    // Data-plane nodes start serving it now (or at their next look at the registry, should
    // this be lost).
    shared::notify::notify(&catalog, &shared::notify::Change::Clusters).await?;
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

/// The cluster a new tenant goes to: `asked` if it is registered and not drained; without
/// it, the cluster the tenant's `plan` is pinned to (likewise); without either, the placement
/// policy's choice (docs/scale-out.md): among the clusters that are not
/// drained and answer within [`PLACEMENT_PROBE_TIMEOUT`], the one with the fewest tenants,
/// ties going to the smaller database, then to the default cluster, then by name. When none
/// answers, the default: its provisioning then fails like any other and is resumed by
/// `tenant retry`.
///
/// Takes catalog connections of its own and gives them back before returning: probing the
/// catalog's cluster takes one more, which a caller holding one could wait for.
pub async fn placement(
    control: &ControlPlane,
    asked: Option<&str>,
    plan: Option<&str>,
) -> Result<String, ControlError> {
    let rows = {
        let catalog = control.pool.get().await?;
        let pinned = match plan {
            Some(plan) => store::pinned_cluster(&catalog, plan).await?,
            None => None,
        };
        if let Some(name) = asked.or(pinned.as_deref()) {
            return match store::drained(&catalog, name).await? {
                None => Err(ControlError::UnknownCluster(name.to_owned())),
                Some(true) => Err(ControlError::ClusterDrained(name.to_owned())),
                Some(false) => Ok(name.to_owned()),
            };
        }
        store::list(&catalog).await?
    };
    let open: Vec<&ClusterRow> = rows.iter().filter(|row| !row.drained).collect();
    let probed = futures_util::future::join_all(
        open.iter()
            .map(|row| probe(control, row, PLACEMENT_PROBE_TIMEOUT)),
    )
    .await;
    let chosen = open
        .iter()
        .zip(probed)
        .filter_map(|(row, probed)| probed.map(|(bytes, _)| (*row, bytes)))
        .min_by_key(|(row, bytes)| (row.tenants, *bytes, !row.is_default, row.name.clone()));
    match chosen {
        Some((row, _)) => Ok(row.name.clone()),
        None => rows
            .iter()
            .find(|row| row.is_default)
            .map(|row| row.name.clone())
            .ok_or_else(|| ControlError::ClusterNotFound("(the default)".to_owned())),
    }
}

/// How long the placement policy waits for each cluster to answer before passing it over.
const PLACEMENT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Pins `plan`'s new tenants to cluster `name` (which must take new tenants).
pub async fn pin_plan(
    control: &ControlPlane,
    name: &str,
    plan: &str,
) -> Result<ClusterView, ControlError> {
    let catalog = control.pool.get().await?;
    let row = store::get(&catalog, name)
        .await?
        .ok_or_else(|| ControlError::ClusterNotFound(name.to_owned()))?;
    if row.drained {
        return Err(ControlError::ClusterDrained(name.to_owned()));
    }
    if !store::pin_plan(&catalog, plan, Some(name)).await? {
        return Err(ControlError::UnknownPlan(plan.to_owned()));
    }
    tracing::info!(cluster = name, plan, "plan pinned to cluster");
    drop(catalog);
    get(control, name).await
}

/// Unpins `plan` from cluster `name`: its new tenants are placed by the policy again.
pub async fn unpin_plan(
    control: &ControlPlane,
    name: &str,
    plan: &str,
) -> Result<(), ControlError> {
    let catalog = control.pool.get().await?;
    if store::pinned_cluster(&catalog, plan).await?.as_deref() != Some(name) {
        return Err(ControlError::PlanNotPinned {
            plan: plan.to_owned(),
            cluster: name.to_owned(),
        });
    }
    store::pin_plan(&catalog, plan, None).await?;
    tracing::info!(cluster = name, plan, "plan unpinned");
    Ok(())
}

/// Makes the cluster the default (the placement policy's fallback and tie-break); a drained
/// cluster cannot be.
pub async fn set_default(control: &ControlPlane, name: &str) -> Result<ClusterView, ControlError> {
    let mut catalog = control.pool.get().await?;
    let transaction = catalog.transaction().await?;
    let row = store::get(&transaction, name)
        .await?
        .ok_or_else(|| ControlError::ClusterNotFound(name.to_owned()))?;
    if row.drained {
        return Err(ControlError::ClusterDrained(name.to_owned()));
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
    fn exactly_one_reference_is_taken() {
        let input = |env: Option<&str>, file: Option<&str>| NewCluster {
            name: "eu-2".into(),
            description: None,
            url_env: env.map(Into::into),
            url_file: file.map(Into::into),
        };
        assert!(input(None, None).url().is_err());
        assert!(input(Some("A"), Some("/b")).url().is_err());
        assert!(input(Some(""), None).url().is_err());
    }
}
