//! The cluster registry (`control.postgres_clusters`) as both planes read it.

use tokio_postgres::types::Type;

use super::UrlRef;

/// A cluster as the catalog registers it, for the planes that connect to it.
#[derive(Debug, Clone)]
pub struct Registered {
    pub name: String,
    /// `None` for the catalog's own cluster.
    pub url: Option<UrlRef>,
}

/// Every registered cluster, by name. Sent unprepared, as the catalog's reads
/// (`crate::catalog::tenant_by_slug`).
pub async fn registered(
    client: &tokio_postgres::Client,
) -> Result<Vec<Registered>, tokio_postgres::Error> {
    let rows = client
        .query_typed(
            "SELECT id, url_env, url_file FROM control.postgres_clusters ORDER BY id",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Registered {
                name: row.try_get("id")?,
                url: UrlRef::from_columns(row.try_get("url_env")?, row.try_get("url_file")?),
            })
        })
        .collect()
}

/// Where cluster `name`'s URL is: `None` when no such cluster is registered, `Some(None)` for
/// the catalog's own cluster (reached through the planes' `database_url`).
pub async fn url_of(
    client: &tokio_postgres::Client,
    name: &str,
) -> Result<Option<Option<UrlRef>>, tokio_postgres::Error> {
    let rows = client
        .query_typed(
            "SELECT url_env, url_file FROM control.postgres_clusters WHERE id = $1",
            &[(&name, Type::TEXT)],
        )
        .await?;
    rows.first()
        .map(|row| {
            Ok(UrlRef::from_columns(
                row.try_get("url_env")?,
                row.try_get("url_file")?,
            ))
        })
        .transpose()
}
