//! SQL of the control plane's audit work: chain anchors and prune marks in the catalog
//! (Postgres), and the audit and telemetry tables in ClickHouse. Table and column names that
//! are spliced into ClickHouse statements come only from the constants in `super`, never from
//! input; every value is bound.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use shared::events::chain::Anchor;
use shared::events::rows::AuditRow;
use uuid::Uuid;

use crate::error::ControlError;

/// The anchored chain heads of a tenant's streams.
pub async fn chain_anchors(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<Vec<Anchor>, ControlError> {
    let rows = client
        .query(
            "SELECT stream_id, seq, mac FROM control.audit_chain_heads WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Anchor {
                stream: row.try_get("stream_id")?,
                seq: row.try_get::<_, i64>("seq")?.max(0) as u64,
                mac: row.try_get("mac")?,
            })
        })
        .collect()
}

/// How far retention cut each of a tenant's streams: the highest sequence number deleted.
pub async fn pruned_streams(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<BTreeMap<String, u64>, ControlError> {
    let rows = client
        .query(
            "SELECT stream_id, seq FROM control.audit_chain_pruned WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("stream_id")?,
                row.try_get::<_, i64>("seq")?.max(0) as u64,
            ))
        })
        .collect()
}

/// Notes that `stream` is cut at `seq` (a mark only ever moves forward).
pub async fn record_pruned(
    client: &impl GenericClient,
    tenant_id: Uuid,
    stream: &str,
    seq: u64,
) -> Result<(), ControlError> {
    client
        .execute(
            "INSERT INTO control.audit_chain_pruned (tenant_id, stream_id, seq)
             VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, stream_id) DO UPDATE
                 SET seq = greatest(control.audit_chain_pruned.seq, excluded.seq),
                     updated_at = now()",
            &[&tenant_id, &stream, &(seq as i64)],
        )
        .await?;
    Ok(())
}

/// A tenant's retention, in days.
pub struct Retention {
    pub tenant_id: Uuid,
    pub audit_days: i32,
    pub telemetry_days: i32,
}

/// Every tenant's retention (deleted tenants too: their events expire like any other).
pub async fn retentions(client: &impl GenericClient) -> Result<Vec<Retention>, ControlError> {
    let rows = client
        .query(
            "SELECT id, audit_retention_days, telemetry_retention_days FROM control.tenants",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Retention {
                tenant_id: row.try_get("id")?,
                audit_days: row.try_get("audit_retention_days")?,
                telemetry_days: row.try_get("telemetry_retention_days")?,
            })
        })
        .collect()
}

/// Sets a tenant's retention (`None` keeps a value); returns the (audit, telemetry) days now
/// in force.
pub async fn set_retention(
    client: &impl GenericClient,
    tenant_id: Uuid,
    audit_days: Option<i32>,
    telemetry_days: Option<i32>,
) -> Result<(i32, i32), ControlError> {
    let row = client
        .query_one(
            "UPDATE control.tenants
             SET audit_retention_days = coalesce($2, audit_retention_days),
                 telemetry_retention_days = coalesce($3, telemetry_retention_days),
                 updated_at = now()
             WHERE id = $1
             RETURNING audit_retention_days, telemetry_retention_days",
            &[&tenant_id, &audit_days, &telemetry_days],
        )
        .await?;
    Ok((
        row.try_get("audit_retention_days")?,
        row.try_get("telemetry_retention_days")?,
    ))
}

/// Every audit event of a tenant in ClickHouse.
pub async fn audit_rows(
    clickhouse: &clickhouse::Client,
    tenant_id: Uuid,
) -> Result<Vec<AuditRow>, clickhouse::error::Error> {
    clickhouse
        .query("SELECT ?fields FROM audit_log WHERE tenant_id = ?")
        .bind(tenant_id.to_string())
        .fetch_all()
        .await
}

/// One stream's highest sequence number older than a retention cutoff.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
pub struct StreamCut {
    pub chain_stream: String,
    pub seq: u64,
}

/// Per stream of the tenant, the last sequence number of its events before `cutoff` (Unix
/// seconds).
pub async fn stream_cuts(
    clickhouse: &clickhouse::Client,
    tenant_id: Uuid,
    cutoff: u32,
) -> Result<Vec<StreamCut>, clickhouse::error::Error> {
    clickhouse
        .query(
            "SELECT chain_stream, max(chain_seq) AS seq FROM audit_log \
             WHERE tenant_id = ? AND occurred_at < toDateTime(?) GROUP BY chain_stream",
        )
        .bind(tenant_id.to_string())
        .bind(cutoff)
        .fetch_all()
        .await
}

/// How many of the tenant's rows of `table` have `column` before `cutoff`.
pub async fn count_expired(
    clickhouse: &clickhouse::Client,
    table: &str,
    column: &str,
    tenant_id: Uuid,
    cutoff: u32,
) -> Result<u64, clickhouse::error::Error> {
    clickhouse
        .query(&format!(
            "SELECT count() FROM {table} WHERE tenant_id = ? AND {column} < toDateTime(?)"
        ))
        .bind(tenant_id.to_string())
        .bind(cutoff)
        .fetch_one()
        .await
}

/// Asks ClickHouse to delete those rows (a mutation, carried out in the background).
pub async fn delete_expired(
    clickhouse: &clickhouse::Client,
    table: &str,
    column: &str,
    tenant_id: Uuid,
    cutoff: u32,
) -> Result<(), clickhouse::error::Error> {
    clickhouse
        .query(&format!(
            "ALTER TABLE {table} DELETE WHERE tenant_id = ? AND {column} < toDateTime(?)"
        ))
        .bind(tenant_id.to_string())
        .bind(cutoff)
        .execute()
        .await
}

/// The active partitions of `database.table`, as ClickHouse names them.
pub async fn active_partitions(
    clickhouse: &clickhouse::Client,
    database: &str,
    table: &str,
) -> Result<Vec<String>, clickhouse::error::Error> {
    clickhouse
        .query(
            "SELECT DISTINCT partition FROM system.parts \
             WHERE database = ? AND table = ? AND active",
        )
        .bind(database)
        .bind(table)
        .fetch_all()
        .await
}

/// Drops the month partition `month` (YYYYMM) of `table` at once, without a mutation.
pub async fn drop_partition(
    clickhouse: &clickhouse::Client,
    table: &str,
    month: i32,
) -> Result<(), clickhouse::error::Error> {
    clickhouse
        .query(&format!("ALTER TABLE {table} DROP PARTITION {month}"))
        .execute()
        .await
}
