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
use shared::events::chain::{self, ChainKey, Verification};
use shared::events::rows::{new_event_id, AuditRow};
use shared::tenant::Tenant;
use uuid::Uuid;

use crate::context::ControlPlane;
use crate::error::ControlError;

mod store;

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
    let wrapped_keys = shared::catalog::wrapped_data_keys(&client, tenant_id)
        .await
        .map_err(ControlError::from)?;
    let mut keys = BTreeMap::new();
    for (version, wrapped) in wrapped_keys {
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
        lifecycle_row(tenant, action, metadata, control.clock.now()),
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

/// A lifecycle event of `tenant` by the operator at `now`, not yet chained.
pub fn lifecycle_row(
    tenant: &Tenant,
    action: &str,
    metadata: Value,
    now: time::OffsetDateTime,
) -> AuditRow {
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
        // The control plane's events wait in the catalog's outbox.
        events.record_outboxed_audit(key, row, None)
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
    let anchors = store::chain_anchors(&client, tenant.id).await?;
    let pruned = store::pruned_streams(&client, tenant.id).await?;
    let rows = store::audit_rows(&control.clickhouse, tenant.id).await?;
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

/// Records, before retention deletes a tenant's audit events older than `cutoff`, how far
/// each chain is cut, so `verify` accepts those streams starting later.
async fn record_pruning(
    control: &ControlPlane,
    tenant_id: Uuid,
    cutoff: u32,
) -> Result<(), AuditError> {
    let cuts = store::stream_cuts(&control.clickhouse, tenant_id, cutoff).await?;
    let client = control.pool.get().await.map_err(ControlError::from)?;
    for cut in cuts {
        store::record_pruned(&client, tenant_id, &cut.chain_stream, cut.seq).await?;
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
    let tenants = store::retentions(&client).await?;
    // Rows are deleted where they are stored: each shard's local tables on a cluster.
    let storages = control.config.events.storage();
    let mut run = RetentionRun::default();
    let now_seconds = now.unix_timestamp();
    let cutoff =
        |days: i32| -> u32 { u32::try_from(now_seconds - i64::from(days) * 86_400).unwrap_or(0) };
    let mut longest_audit = 1;
    let mut longest_telemetry = 1;
    for tenant in &tenants {
        let id = tenant.tenant_id;
        let audit_days = tenant.audit_days;
        let telemetry_days = tenant.telemetry_days;
        longest_audit = longest_audit.max(audit_days);
        longest_telemetry = longest_telemetry.max(telemetry_days);
        for (tables, days, column) in [
            (AUDIT_TABLES, audit_days, "occurred_at"),
            (TELEMETRY_TABLES, telemetry_days, "time"),
        ] {
            for table in tables {
                let expired =
                    store::count_expired(&control.clickhouse, table, column, id, cutoff(days))
                        .await?;
                if expired > 0 {
                    if *table == "audit_log" {
                        record_pruning(control, id, cutoff(days)).await?;
                    }
                    for storage in &storages {
                        let local = storage.local(table);
                        store::delete_expired(&storage.client, &local, column, id, cutoff(days))
                            .await?;
                    }
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
            // Every shard's partitions: a month any of them holds past the boundary goes on
            // each that holds it.
            let mut months: std::collections::BTreeMap<i32, Vec<&shared::events::Storage>> =
                std::collections::BTreeMap::new();
            for storage in &storages {
                let partitions = store::active_partitions(
                    &storage.client,
                    &control.config.events.clickhouse_database,
                    &storage.local(table),
                )
                .await?;
                for partition in partitions {
                    if let Ok(month) = partition.trim_matches('\'').parse::<i32>() {
                        months.entry(month).or_default().push(storage);
                    }
                }
            }
            for (month, holders) in months {
                if month < boundary_month {
                    if *table == "audit_log" {
                        for tenant in &tenants {
                            let cut = u32::try_from(month_start).unwrap_or(0);
                            record_pruning(control, tenant.tenant_id, cut).await?;
                        }
                    }
                    for storage in holders {
                        store::drop_partition(&storage.client, &storage.local(table), month)
                            .await?;
                    }
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
    store::set_retention(&client, tenant.id, audit_days, telemetry_days).await
}

/// How often `serve` applies retention.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// `serve` runs the retention job hourly (the first run a minute after start). Several
/// control planes running it at once only repeat idempotent deletes.
pub fn spawn_retention_job(control: ControlPlane) {
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        loop {
            match apply_retention(&control, control.clock.now()).await {
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
