//! What every Postgres cluster that holds tenants needs besides their schemas: the data
//! plane's login role and the audit outbox its tenants' transactions write into
//! (`migrations/cluster/prepare.sql`). Idempotent; run when a cluster is added and by every
//! `control-plane migrate`.

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
