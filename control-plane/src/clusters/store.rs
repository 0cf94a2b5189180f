//! SQL over `control.postgres_clusters`, and what a cluster says of itself.

use deadpool_postgres::GenericClient;
use shared::catalog::{tenant_from_row, TENANT_COLUMNS};
use shared::tenant::Tenant;
use tokio_postgres::Row;

use super::service::UrlRef;
use crate::error::ControlError;

/// A cluster as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRow {
    pub name: String,
    pub description: String,
    /// `None` for the catalog's own cluster.
    pub url: Option<UrlRef>,
    pub is_default: bool,
    pub drained: bool,
    /// Tenants placed on it, not deleted.
    pub tenants: i64,
    /// Plans whose new tenants are placed on it.
    pub plans: Vec<String>,
}

const COLUMNS: &str = "c.id, c.description, c.url_env, c.url_file, c.is_default, c.drained,
     (SELECT count(*) FROM control.tenants t
      WHERE t.cluster_id = c.id AND t.status <> 'deleted') AS tenants,
     array(SELECT p.name FROM control.plans p WHERE p.cluster_id = c.id ORDER BY p.name)
         AS plans";

fn url_from_row(row: &Row) -> Result<Option<UrlRef>, ControlError> {
    Ok(UrlRef::from_columns(
        row.try_get("url_env")?,
        row.try_get("url_file")?,
    ))
}

fn from_row(row: &Row) -> Result<ClusterRow, ControlError> {
    Ok(ClusterRow {
        name: row.try_get("id")?,
        description: row.try_get("description")?,
        url: url_from_row(row)?,
        is_default: row.try_get("is_default")?,
        drained: row.try_get("drained")?,
        tenants: row.try_get("tenants")?,
        plans: row.try_get("plans")?,
    })
}

pub async fn list(client: &impl GenericClient) -> Result<Vec<ClusterRow>, ControlError> {
    let sql = format!("SELECT {COLUMNS} FROM control.postgres_clusters c ORDER BY c.id");
    client
        .query(&sql, &[])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn get(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<ClusterRow>, ControlError> {
    let sql = format!("SELECT {COLUMNS} FROM control.postgres_clusters c WHERE c.id = $1");
    client
        .query_opt(&sql, &[&name])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Where cluster `name`'s URL is (`Some(None)`: the catalog's cluster), by primary key alone:
/// what every provisioning step asks.
pub async fn url_of(
    client: &tokio_postgres::Client,
    name: &str,
) -> Result<Option<Option<UrlRef>>, ControlError> {
    Ok(shared::cluster::store::url_of(client, name).await?)
}

/// The default cluster's name.
pub async fn default_name(client: &impl GenericClient) -> Result<Option<String>, ControlError> {
    let row = client
        .query_opt(
            "SELECT id FROM control.postgres_clusters WHERE is_default",
            &[],
        )
        .await?;
    Ok(row.as_ref().map(|row| row.try_get("id")).transpose()?)
}

/// Whether cluster `name` is drained (`None`: no such cluster), by primary key alone.
pub async fn drained(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<bool>, ControlError> {
    let row = client
        .query_opt(
            "SELECT drained FROM control.postgres_clusters WHERE id = $1",
            &[&name],
        )
        .await?;
    Ok(row.as_ref().map(|row| row.try_get("drained")).transpose()?)
}

/// Inserts the cluster; `false` when the name is taken.
pub async fn insert(
    client: &impl GenericClient,
    name: &str,
    description: &str,
    url: &UrlRef,
) -> Result<bool, ControlError> {
    let (env, file) = url.columns();
    let inserted = client
        .execute(
            "INSERT INTO control.postgres_clusters (id, description, url_env, url_file)
             VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            &[&name, &description, &env, &file],
        )
        .await?;
    Ok(inserted == 1)
}

/// Sets whether the cluster takes new tenants; `false` when there is no such cluster.
pub async fn set_drained(
    client: &impl GenericClient,
    name: &str,
    drained: bool,
) -> Result<bool, ControlError> {
    let updated = client
        .execute(
            "UPDATE control.postgres_clusters SET drained = $2 WHERE id = $1",
            &[&name, &drained],
        )
        .await?;
    Ok(updated == 1)
}

/// Makes `name` the default cluster and no other; `false` when there is no such cluster.
/// Two statements (the one-default index is checked row by row): run it in a transaction.
pub async fn set_default(client: &impl GenericClient, name: &str) -> Result<bool, ControlError> {
    if get(client, name).await?.is_none() {
        return Ok(false);
    }
    client
        .execute(
            "UPDATE control.postgres_clusters SET is_default = false WHERE is_default AND id <> $1",
            &[&name],
        )
        .await?;
    client
        .execute(
            "UPDATE control.postgres_clusters SET is_default = true WHERE id = $1",
            &[&name],
        )
        .await?;
    Ok(true)
}

/// The size of the database `client` is connected to, and the connections open to it.
pub async fn size_and_connections(client: &impl GenericClient) -> Result<(i64, i64), ControlError> {
    let row = client
        .query_one(
            "SELECT pg_database_size(current_database()) AS bytes,
                    (SELECT numbackends FROM pg_stat_database
                     WHERE datname = current_database())::bigint AS connections",
            &[],
        )
        .await?;
    Ok((row.try_get("bytes")?, row.try_get("connections")?))
}

/// What removing a cluster found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    NotFound,
    /// It holds tenants (deleted ones included: their rows still name it), or it is the
    /// default or the catalog's own.
    Refused,
}

pub async fn remove(client: &impl GenericClient, name: &str) -> Result<Removal, ControlError> {
    // Finished moves that name it are forgotten with it; a move under way, a plan pinned to
    // it or a tenant row naming it keeps it.
    let row = client
        .query_one(
            "WITH target AS (SELECT id, is_default, url_env, url_file
                             FROM control.postgres_clusters WHERE id = $1),
                  removable AS (
                      SELECT target.id FROM target
                      WHERE NOT target.is_default
                        AND (target.url_env IS NOT NULL OR target.url_file IS NOT NULL)
                        AND NOT EXISTS (SELECT 1 FROM control.tenants t
                                        WHERE t.cluster_id = target.id)
                        AND NOT EXISTS (SELECT 1 FROM control.plans p
                                        WHERE p.cluster_id = target.id)
                        AND NOT EXISTS (SELECT 1 FROM control.tenant_moves m
                                        WHERE target.id IN (m.source, m.target)
                                          AND m.step IN ('copying', 'frozen', 'switched'))),
                  forgotten AS (
                      DELETE FROM control.tenant_moves m USING removable
                      WHERE removable.id IN (m.source, m.target)),
                  removed AS (
                      DELETE FROM control.postgres_clusters c USING removable
                      WHERE c.id = removable.id
                      RETURNING c.id)
             SELECT EXISTS (SELECT 1 FROM target) AS found,
                    EXISTS (SELECT 1 FROM removed) AS removed",
            &[&name],
        )
        .await?;
    Ok(match (row.try_get("found")?, row.try_get("removed")?) {
        (_, true) => Removal::Removed,
        (false, _) => Removal::NotFound,
        (true, false) => Removal::Refused,
    })
}

/// Pins `plan`'s new tenants to cluster `cluster` (`None`: unpins). False when there is no
/// such plan.
pub async fn pin_plan(
    client: &impl GenericClient,
    plan: &str,
    cluster: Option<&str>,
) -> Result<bool, ControlError> {
    let updated = client
        .execute(
            "UPDATE control.plans SET cluster_id = $2 WHERE name = $1",
            &[&plan, &cluster],
        )
        .await?;
    Ok(updated > 0)
}

/// The cluster `plan` pins its tenants to, if any; `Err(UnknownPlan)` when there is no such
/// plan.
pub async fn pinned_cluster(
    client: &impl GenericClient,
    plan: &str,
) -> Result<Option<String>, ControlError> {
    let row = client
        .query_opt(
            "SELECT cluster_id FROM control.plans WHERE name = $1",
            &[&plan],
        )
        .await?
        .ok_or_else(|| ControlError::UnknownPlan(plan.to_owned()))?;
    Ok(row.try_get("cluster_id")?)
}

/// Every plan pinned to a cluster, with that cluster.
pub async fn pinned_plans(
    client: &impl GenericClient,
) -> Result<std::collections::BTreeMap<String, String>, ControlError> {
    let rows = client
        .query(
            "SELECT name, cluster_id FROM control.plans WHERE cluster_id IS NOT NULL",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("name")?, row.try_get("cluster_id")?)))
        .collect()
}

/// Every tenant that is not deleted, wherever it is placed.
pub async fn live_tenants(client: &impl GenericClient) -> Result<Vec<Tenant>, ControlError> {
    let sql = format!(
        "SELECT {TENANT_COLUMNS} FROM control.tenants t WHERE t.status <> 'deleted' ORDER BY t.slug"
    );
    let rows = client.query(&sql, &[]).await?;
    Ok(rows.iter().map(tenant_from_row).collect::<Result<_, _>>()?)
}

/// The size of each of `schemas` on the cluster `client` reaches (tables with their indexes
/// and TOAST), by schema name; schemas not there are left out.
pub async fn schema_sizes(
    client: &impl GenericClient,
    schemas: &[String],
) -> Result<std::collections::BTreeMap<String, i64>, ControlError> {
    let rows = client
        .query(
            "SELECT n.nspname::text AS schema,
                    coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes
             FROM pg_namespace n
             LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm')
             WHERE n.nspname = ANY($1)
             GROUP BY n.nspname",
            &[&schemas],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("schema")?, row.try_get("bytes")?)))
        .collect()
}
