//! Ships the audit events that nodes left in the audit outbox when they died.
//!
//! A live node deletes its outbox rows once their events are in ClickHouse or its spool,
//! within a flush interval and two insert timeouts. A row older than
//! `audit_outbox_recover_after` was therefore left by a node that died between committing the
//! change and making its event durable. Every node looks for such rows periodically (and once
//! at start) on every cluster it serves (each has its own outbox, `crate::tenancy::clusters`),
//! claims a batch (`FOR UPDATE SKIP LOCKED`, so nodes do not ship the same rows), deletes those
//! ClickHouse already has (the dead node delivered them but had not cleared the outbox yet),
//! and hands the rest to its own writer, which links them into its chain for the tenant,
//! delivers them and deletes their rows. See `shared::events::outbox`.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use shared::events::outbox;
use shared::events::writer::stored_event_ids;
use uuid::Uuid;

use crate::state::DataPlane;

/// Most rows claimed per round.
const BATCH: i64 = 1000;
/// A claim not finished within this long (the claiming node died too) expires.
const RECLAIM_AFTER: Duration = Duration::from_secs(300);
/// Deadline of each database round trip of a round.
const DEADLINE: Duration = Duration::from_secs(5);

/// Starts the periodic recovery, on this node, of the audit outbox `pool` reaches: the
/// catalog cluster's (`cluster` `None`) or another tenant cluster's.
pub fn spawn(state: &DataPlane, cluster: Option<Arc<str>>, pool: Pool) {
    let state = state.clone();
    let age = state.config.audit_outbox_recover_after;
    let period = (age / 4).clamp(Duration::from_millis(250), Duration::from_secs(15));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // A full batch means more may wait: go on at once.
            while matches!(recover_once(&state, age, &cluster, &pool).await, Ok(shipped) if shipped as i64 >= BATCH)
            {
            }
        }
    });
}

#[derive(Debug, thiserror::Error)]
enum RecoveryError {
    #[error(transparent)]
    Outbox(#[from] outbox::OutboxError),
    #[error("cannot ask ClickHouse which events it has: {0}")]
    ClickHouse(#[from] shared::events::writer::StoredIdsError),
}

/// One round: claims orphans and ships them. Returns how many rows it claimed.
async fn recover_once(
    state: &DataPlane,
    age: Duration,
    cluster: &Option<Arc<str>>,
    pool: &Pool,
) -> Result<usize, ()> {
    let outcome = async {
        let orphans = outbox::claim_orphans(pool, age, RECLAIM_AFTER, BATCH, DEADLINE).await?;
        if orphans.is_empty() {
            return Ok(0);
        }
        let claimed = orphans.len();
        let ids = orphans
            .iter()
            .map(|orphan| orphan.row.event_id.clone())
            .collect();
        let stored = stored_event_ids(&state.clickhouse, "audit_log", ids, DEADLINE).await?;
        let mut delivered: Vec<Uuid> = stored
            .iter()
            .filter_map(|id| Uuid::parse_str(id).ok())
            .collect();
        let mut shipped = 0;
        for orphan in orphans {
            if stored.contains(&orphan.row.event_id) {
                continue;
            }
            let tenant_id = Uuid::parse_str(&orphan.row.tenant_id).ok();
            let key = match tenant_id {
                Some(tenant_id) => super::middleware::chain_key_of(state, tenant_id).await,
                None => None,
            };
            let Some(key) = key else {
                // The tenant's data key is gone (the tenant was deleted): the event cannot be
                // chained any more. Logged, then removed so it is not tried forever.
                tracing::error!(
                    event_id = %orphan.row.event_id,
                    tenant = %orphan.row.tenant_id,
                    "audit outbox event of a tenant without a data key dropped"
                );
                delivered.extend(Uuid::parse_str(&orphan.row.event_id).ok());
                continue;
            };
            let mut row = orphan.row;
            if let Ok(serde_json::Value::Object(mut metadata)) = serde_json::from_str(&row.metadata)
            {
                metadata.insert("recovered".to_owned(), "outbox".into());
                row.metadata = serde_json::Value::Object(metadata).to_string();
            }
            match state
                .events
                .record_outboxed_audit(&key, row, cluster.clone())
            {
                Ok(()) => shipped += 1,
                // The queue is full: the row stays claimed and is tried after the claim expires.
                Err(error) => {
                    tracing::warn!(%error, "audit outbox recovery paused: the event queue is full");
                    break;
                }
            }
        }
        outbox::delete(pool, &delivered, DEADLINE).await?;
        if shipped + delivered.len() > 0 {
            tracing::warn!(
                shipped,
                already_delivered = delivered.len(),
                "recovered audit events a node left in the outbox"
            );
        }
        Ok::<_, RecoveryError>(claimed)
    }
    .await;
    outcome.map_err(|error| {
        let cluster = cluster
            .as_deref()
            .unwrap_or(shared::catalog::CATALOG_CLUSTER);
        tracing::warn!(%error, cluster, "audit outbox recovery round failed");
    })
}
