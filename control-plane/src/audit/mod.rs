//! The control plane's side of the audit log: tenant lifecycle events, `audit verify` (the
//! tamper check of a tenant's chains) and the retention job.
//!
//! Lifecycle events are chained like the data plane's (one stream per control-plane
//! process), keyed from the tenant's data key, which the control plane unwraps with the KEK.
//! `tenant.create` is also written to the audit outbox in the transaction that activates the
//! tenant ([`record_outboxed`]), so it survives the control plane dying right after that
//! commit; the other lifecycle events are queued in memory after their change.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use shared::envelope::WrappedKey;
use shared::events::chain::{self, Anchor, ChainKey, Verification};
use shared::events::rows::{new_event_id, AuditRow};
use shared::tenant::Tenant;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::context::ControlPlane;
use crate::error::ControlError;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("tenant data key: {0}")]
    Key(String),
}

/// Every data key version of `tenant_id`, opened, as chain keys.
pub async fn chain_keys(
    control: &ControlPlane,
    tenant_id: Uuid,
) -> Result<BTreeMap<i32, ChainKey>, AuditError> {
    let client = control.pool.get().await.map_err(ControlError::from)?;
    let rows = client
        .query_typed(
            "SELECT version, kek_id, nonce, wrapped_key FROM control.tenant_data_keys
             WHERE tenant_id = $1",
            &[(&tenant_id, Type::UUID)],
        )
        .await
        .map_err(ControlError::from)?;
    let mut keys = BTreeMap::new();
    for row in rows {
        let version: i32 = row.get(0);
        let wrapped = WrappedKey {
            kek_id: row.get(1),
            nonce: row.get(2),
            ciphertext: row.get(3),
        };
        let key = control
            .kek
            .unwrap_key(&wrapped, tenant_id, version)
            .map_err(|error| AuditError::Key(error.to_string()))?;
        keys.insert(version, ChainKey::derive(&key, version));
    }
    Ok(keys)
}

/// Records a lifecycle event of `tenant` (after the change). A tenant without a data key yet
/// (provisioning failed before that step) has no chain: the event is logged only.
pub async fn lifecycle(control: &ControlPlane, tenant: &Tenant, action: &str, metadata: Value) {
    record(
        control,
        tenant,
        lifecycle_row(tenant, action, metadata),
        false,
    )
    .await;
}

/// Records `row`, a lifecycle event that was written to the audit outbox
/// (`control.audit_outbox`) in the transaction of its change: the writer deletes the outbox
/// row once the event is in ClickHouse or its spool. If this process dies first, or cannot
/// record it here, a data-plane node ships the row from the outbox (see
/// `shared::events::outbox`).
pub async fn record_outboxed(control: &ControlPlane, tenant: &Tenant, row: AuditRow) {
    record(control, tenant, row, true).await;
}

/// A lifecycle event of `tenant` by the operator, not yet chained.
pub fn lifecycle_row(tenant: &Tenant, action: &str, metadata: Value) -> AuditRow {
    let now = time::OffsetDateTime::now_utc();
    let millis = (now.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    AuditRow {
        tenant_id: tenant.id.to_string(),
        occurred_at: (millis / 1000) as u32,
        occurred_at_ms: millis,
        event_id: new_event_id(),
        request_id: String::new(),
        actor_type: "operator".to_owned(),
        actor_id: "control-plane".to_owned(),
        action: action.to_owned(),
        resource_type: "tenant".to_owned(),
        resource_id: tenant.slug.to_string(),
        result: "success".to_owned(),
        ip: String::new(),
        user_agent: String::new(),
        http_method: String::new(),
        http_path: String::new(),
        http_status: 0,
        duration_ms: 0,
        metadata: metadata.to_string(),
        chain_stream: String::new(),
        chain_seq: 0,
        key_version: 0,
        prev_mac: String::new(),
        mac: String::new(),
    }
}

async fn record(control: &ControlPlane, tenant: &Tenant, row: AuditRow, outboxed: bool) {
    let action = row.action.clone();
    let Some(events) = &control.events else {
        return;
    };
    let keys = match chain_keys(control, tenant.id).await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::error!(%error, tenant = %tenant.slug, action, "cannot record lifecycle event");
            return;
        }
    };
    let Some((_, key)) = keys.iter().next_back() else {
        tracing::warn!(tenant = %tenant.slug, action, "tenant has no data key; lifecycle event not chained");
        return;
    };
    let recorded = if outboxed {
        events.record_outboxed_audit(key, row)
    } else {
        events.record_audit(key, row)
    };
    if let Err(error) = recorded {
        tracing::error!(%error, tenant = %tenant.slug, action, outboxed, "lifecycle audit event not recorded");
    }
}

/// Checks the audit log of `tenant` against its chain keys and anchored heads.
pub async fn verify(control: &ControlPlane, tenant: &Tenant) -> Result<Verification, AuditError> {
    if let Some(events) = &control.events {
        events.flush().await;
    }
    let keys = chain_keys(control, tenant.id).await?;
    let client = control.pool.get().await.map_err(ControlError::from)?;
    let anchors: Vec<Anchor> = client
        .query(
            "SELECT stream_id, seq, mac FROM control.audit_chain_heads WHERE tenant_id = $1",
            &[&tenant.id],
        )
        .await
        .map_err(ControlError::from)?
        .iter()
        .map(|row| Anchor {
            stream: row.get(0),
            seq: row.get::<_, i64>(1).max(0) as u64,
            mac: row.get(2),
        })
        .collect();
    let pruned: BTreeMap<String, u64> = client
        .query(
            "SELECT stream_id, seq FROM control.audit_chain_pruned WHERE tenant_id = $1",
            &[&tenant.id],
        )
        .await
        .map_err(ControlError::from)?
        .iter()
        .map(|row| (row.get(0), row.get::<_, i64>(1).max(0) as u64))
        .collect();
    let rows: Vec<AuditRow> = control
        .clickhouse
        .query("SELECT ?fields FROM audit_log WHERE tenant_id = ?")
        .bind(tenant.id.to_string())
        .fetch_all()
        .await?;
    let keys = std::sync::Mutex::new(keys);
    Ok(chain::verify(
        rows,
        |version| {
            keys.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&version)
        },
        &anchors,
        &pruned,
    ))
}

/// One stream's highest sequence number older than a retention cutoff.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct StreamCut {
    chain_stream: String,
    seq: u64,
}

/// Records, before retention deletes a tenant's audit events older than `cutoff`, how far
/// each chain is cut, so `verify` accepts those streams starting later.
async fn record_pruning(
    control: &ControlPlane,
    tenant_id: Uuid,
    cutoff: u32,
) -> Result<(), AuditError> {
    let cuts: Vec<StreamCut> = control
        .clickhouse
        .query(
            "SELECT chain_stream, max(chain_seq) AS seq FROM audit_log \
             WHERE tenant_id = ? AND occurred_at < toDateTime(?) GROUP BY chain_stream",
        )
        .bind(tenant_id.to_string())
        .bind(cutoff)
        .fetch_all()
        .await?;
    let client = control.pool.get().await.map_err(ControlError::from)?;
    for cut in cuts {
        client
            .execute(
                "INSERT INTO control.audit_chain_pruned (tenant_id, stream_id, seq)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, stream_id) DO UPDATE
                     SET seq = greatest(control.audit_chain_pruned.seq, excluded.seq),
                         updated_at = now()",
                &[&tenant_id, &cut.chain_stream, &(cut.seq as i64)],
            )
            .await
            .map_err(ControlError::from)?;
    }
    Ok(())
}

/// What one run of the retention job did.
#[derive(Debug, Default, Serialize)]
pub struct RetentionRun {
    /// Tenants whose expired rows were asked to be deleted.
    pub tenants: u64,
    /// Whole month partitions dropped (older than every tenant's retention).
    pub partitions_dropped: Vec<String>,
}

const AUDIT_TABLES: &[&str] = &["audit_log"];
const TELEMETRY_TABLES: &[&str] = &["telemetry_logs", "telemetry_metrics", "telemetry_spans"];

/// Applies retention: per tenant, `ALTER TABLE … DELETE` of rows older than its retention
/// (a ClickHouse mutation, carried out in the background); and whole month partitions older
/// than the longest retention of any tenant are dropped at once. `now` is injected for tests.
pub async fn apply_retention(
    control: &ControlPlane,
    now: time::OffsetDateTime,
) -> Result<RetentionRun, AuditError> {
    let client = control.pool.get().await.map_err(ControlError::from)?;
    let tenants = client
        .query(
            "SELECT id, audit_retention_days, telemetry_retention_days FROM control.tenants",
            &[],
        )
        .await
        .map_err(ControlError::from)?;
    let mut run = RetentionRun::default();
    let now_seconds = now.unix_timestamp();
    let cutoff =
        |days: i32| -> u32 { u32::try_from(now_seconds - i64::from(days) * 86_400).unwrap_or(0) };
    let mut longest_audit = 1;
    let mut longest_telemetry = 1;
    for row in &tenants {
        let id: Uuid = row.get(0);
        let audit_days: i32 = row.get(1);
        let telemetry_days: i32 = row.get(2);
        longest_audit = longest_audit.max(audit_days);
        longest_telemetry = longest_telemetry.max(telemetry_days);
        for (tables, days, column) in [
            (AUDIT_TABLES, audit_days, "occurred_at"),
            (TELEMETRY_TABLES, telemetry_days, "time"),
        ] {
            for table in tables {
                let expired: u64 = control
                    .clickhouse
                    .query(&format!(
                        "SELECT count() FROM {table} WHERE tenant_id = ? AND {column} < toDateTime(?)"
                    ))
                    .bind(id.to_string())
                    .bind(cutoff(days))
                    .fetch_one()
                    .await?;
                if expired > 0 {
                    if *table == "audit_log" {
                        record_pruning(control, id, cutoff(days)).await?;
                    }
                    control
                        .clickhouse
                        .query(&format!(
                            "ALTER TABLE {table} DELETE WHERE tenant_id = ? AND {column} < toDateTime(?)"
                        ))
                        .bind(id.to_string())
                        .bind(cutoff(days))
                        .execute()
                        .await?;
                }
            }
        }
        run.tenants += 1;
    }
    // Whole months past every tenant's retention go at once, without a mutation.
    for (tables, days) in [
        (AUDIT_TABLES, longest_audit),
        (TELEMETRY_TABLES, longest_telemetry),
    ] {
        let boundary =
            time::OffsetDateTime::from_unix_timestamp(i64::from(cutoff(days))).unwrap_or(now);
        let boundary_month = boundary.year() * 100 + i32::from(u8::from(boundary.month()));
        let month_start = time::Date::from_calendar_date(boundary.year(), boundary.month(), 1)
            .map(|date| date.midnight().assume_utc().unix_timestamp())
            .unwrap_or(0);
        for table in tables {
            let partitions: Vec<String> = control
                .clickhouse
                .query(
                    "SELECT DISTINCT partition FROM system.parts \
                     WHERE database = ? AND table = ? AND active",
                )
                .bind(control.config.events.clickhouse_database.as_str())
                .bind(*table)
                .fetch_all()
                .await?;
            for partition in partitions {
                let Ok(month) = partition.trim_matches('\'').parse::<i32>() else {
                    continue;
                };
                if month < boundary_month {
                    if *table == "audit_log" {
                        for row in &tenants {
                            let cut = u32::try_from(month_start).unwrap_or(0);
                            record_pruning(control, row.get(0), cut).await?;
                        }
                    }
                    control
                        .clickhouse
                        .query(&format!("ALTER TABLE {table} DROP PARTITION {month}"))
                        .execute()
                        .await?;
                    run.partitions_dropped.push(format!("{table}:{month}"));
                }
            }
        }
    }
    Ok(run)
}

/// Sets a tenant's retention (days; `None` leaves a value as it is).
pub async fn set_retention(
    control: &ControlPlane,
    tenant: &Tenant,
    audit_days: Option<i32>,
    telemetry_days: Option<i32>,
) -> Result<(i32, i32), ControlError> {
    for (field, days) in [
        ("audit_days", audit_days),
        ("telemetry_days", telemetry_days),
    ] {
        if let Some(days) = days {
            if !(1..=3650).contains(&days) {
                return Err(ControlError::InvalidInput {
                    field,
                    message: "retention must be 1 to 3650 days".to_owned(),
                });
            }
        }
    }
    let client = control.pool.get().await?;
    let row = client
        .query_one(
            "UPDATE control.tenants
             SET audit_retention_days = coalesce($2, audit_retention_days),
                 telemetry_retention_days = coalesce($3, telemetry_retention_days),
                 updated_at = now()
             WHERE id = $1
             RETURNING audit_retention_days, telemetry_retention_days",
            &[&tenant.id, &audit_days, &telemetry_days],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// How often `serve` applies retention.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// `serve` runs the retention job hourly (the first run a minute after start). Several
/// control planes running it at once only repeat idempotent deletes.
pub fn spawn_retention_job(control: ControlPlane) {
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        loop {
            match apply_retention(&control, time::OffsetDateTime::now_utc()).await {
                Ok(run) => tracing::info!(
                    tenants = run.tenants,
                    partitions_dropped = run.partitions_dropped.len(),
                    "retention applied"
                ),
                Err(error) => tracing::warn!(%error, "retention job failed; retrying next hour"),
            }
            tokio::time::sleep(RETENTION_EVERY).await;
        }
    });
}
