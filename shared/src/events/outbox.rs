//! The audit outbox: an audited change and its audit event commit in one Postgres transaction.
//!
//! Why: the writer keeps events in memory for up to one flush interval before they reach
//! ClickHouse or the on-disk spool, so a node killed in that window would lose the events of
//! changes it had already committed (and answered). With the outbox, the event of a request is
//! written to `control.audit_outbox` by the first transaction of that request that changed
//! something, pipelined with its `COMMIT` (no extra round trip, no extra WAL flush): the change
//! and its event commit together or not at all.
//!
//! - The request path: the audit middleware makes an [`AuditIntent`] for each state-changing
//!   request (what is known before the handler: tenant, request, action, caller as soon as the
//!   request context knows it). [`crate::tenant_context::TenantScope::with_audit`] carries it
//!   into the request's transactions; their commit writes it once (see
//!   [`crate::tenant_context::TenantTransaction::commit`]). A transaction that changed nothing
//!   writes nothing (`txid_current_if_assigned()` is null for it).
//! - Delivery: the middleware hands the full event (status, duration) to the writer marked as
//!   outboxed; once the writer has it in ClickHouse or fsync'd in its spool, it deletes the
//!   outbox rows ([`delete`]).
//! - Recovery: rows older than a grace period were left by a node that died; any node claims
//!   them ([`claim_orphans`]), skips those ClickHouse already has, and ships the rest through
//!   its writer. Such an event has `http_status` 0 and result `committed`: the change is known
//!   to have committed, the answer is not.
//!
//! Exactly once: an event id is inserted at most once (`ON CONFLICT DO NOTHING`), the writer
//! deletes only after the event is durable elsewhere, and recovery checks ClickHouse by event id
//! before shipping, so a node that died after the insert but before the delete causes no
//! duplicate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio_postgres::types::Type;
use uuid::Uuid;

use super::rows::AuditRow;
use super::store;

/// `result` of an event rebuilt from the outbox: the change committed; the answer is unknown.
pub const RECOVERED_RESULT: &str = "committed";

/// The audit event of one state-changing request, as far as it is known, waiting for the
/// request's first committing transaction.
#[derive(Debug)]
pub struct AuditIntent {
    event_id: Uuid,
    tenant_id: Uuid,
    row: Mutex<AuditRow>,
    written: AtomicBool,
}

impl AuditIntent {
    /// `row` must carry the event id and tenant id the final event will have. `None` when they
    /// are not UUIDs.
    pub fn new(mut row: AuditRow) -> Option<Self> {
        let event_id = Uuid::parse_str(&row.event_id).ok()?;
        let tenant_id = Uuid::parse_str(&row.tenant_id).ok()?;
        row.http_status = 0;
        row.result = RECOVERED_RESULT.to_owned();
        Some(Self {
            event_id,
            tenant_id,
            row: Mutex::new(row),
            written: AtomicBool::new(false),
        })
    }

    pub fn event_id(&self) -> Uuid {
        self.event_id
    }

    /// Adds what became known since (the caller, the resource id).
    pub fn update(&self, change: impl FnOnce(&mut AuditRow)) {
        let mut row = self
            .row
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let event_id = row.event_id.clone();
        let tenant_id = row.tenant_id.clone();
        change(&mut row);
        // The ids tie the outbox row to the final event: they do not change.
        row.event_id = event_id;
        row.tenant_id = tenant_id;
    }

    /// Whether a committed transaction holds this event in the outbox.
    pub fn written(&self) -> bool {
        self.written.load(Ordering::Acquire)
    }

    pub(crate) fn mark_written(&self) {
        self.written.store(true, Ordering::Release);
    }

    /// The parameters of [`super::store::OUTBOX_WRITE`]: event id, tenant id, the row as JSON.
    pub(crate) fn write_params(&self) -> (Uuid, Uuid, serde_json::Value) {
        let row = self
            .row
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let event = serde_json::to_value(&*row).unwrap_or(serde_json::Value::Null);
        (self.event_id, self.tenant_id, event)
    }

    pub(crate) const WRITE_TYPES: [Type; 3] = [Type::UUID, Type::UUID, Type::JSONB];
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("no connection for the audit outbox: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("audit outbox query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("the audit outbox did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::fleet::Unavailable),
}

/// An event that also waits in an audit outbox, and on which cluster: its tenant's (`None`:
/// the catalog's, where the control plane's events wait too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outboxed {
    pub cluster: Option<std::sync::Arc<str>>,
    pub event_id: Uuid,
}

/// Where audit outboxes are: the catalog's cluster (`catalog`) and, for a data-plane node,
/// every other cluster its tenants are on (`fleet`).
#[derive(Clone)]
pub struct Outboxes {
    pub catalog: deadpool_postgres::Pool,
    pub fleet: Option<crate::cluster::fleet::Fleet>,
}

impl Outboxes {
    /// Deletes the outbox rows of `events`, each on its own cluster. Returns those whose
    /// delete failed (to try again), with the first error.
    pub async fn delete(
        &self,
        events: Vec<Outboxed>,
        deadline: Duration,
    ) -> (Vec<Outboxed>, Option<OutboxError>) {
        let mut by_cluster: std::collections::BTreeMap<Option<std::sync::Arc<str>>, Vec<Uuid>> =
            std::collections::BTreeMap::new();
        for event in events {
            let cluster = event
                .cluster
                .filter(|cluster| &**cluster != crate::catalog::CATALOG_CLUSTER);
            by_cluster.entry(cluster).or_default().push(event.event_id);
        }
        let mut failed = Vec::new();
        let mut first_error = None;
        for (cluster, ids) in by_cluster {
            let pool = match (&cluster, &self.fleet) {
                (None, _) | (Some(_), None) => Ok(self.catalog.clone()),
                (Some(name), Some(fleet)) => fleet
                    .cluster(name)
                    .await
                    .map(|pools| pools.shared().clone())
                    .map_err(OutboxError::Cluster),
            };
            let outcome = match pool {
                Ok(pool) => delete(&pool, &ids, deadline).await.map(|_| ()),
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                first_error.get_or_insert(error);
                failed.extend(ids.into_iter().map(|event_id| Outboxed {
                    cluster: cluster.clone(),
                    event_id,
                }));
            }
        }
        (failed, first_error)
    }
}

/// Deletes the outbox rows of events now durable elsewhere (in ClickHouse or the spool).
pub async fn delete(
    pool: &deadpool_postgres::Pool,
    event_ids: &[Uuid],
    deadline: Duration,
) -> Result<u64, OutboxError> {
    if event_ids.is_empty() {
        return Ok(0);
    }
    let work = async {
        let client = pool.get().await?;
        Ok::<_, OutboxError>(store::delete_outbox_rows(&client, event_ids).await?)
    };
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| OutboxError::Timeout(deadline))?
}

/// An event left in the outbox by a node that died before delivering it.
pub struct Orphan {
    pub row: AuditRow,
}

/// Claims up to `limit` rows older than `age` that nobody claimed in the last `reclaim_after`
/// (a claim by a node that then died expires), and returns them oldest first.
pub async fn claim_orphans(
    pool: &deadpool_postgres::Pool,
    age: Duration,
    reclaim_after: Duration,
    limit: i64,
    deadline: Duration,
) -> Result<Vec<Orphan>, OutboxError> {
    let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    let reclaim_ms = i64::try_from(reclaim_after.as_millis()).unwrap_or(i64::MAX);
    let work = async {
        let client = pool.get().await?;
        let rows = store::claim_outbox_rows(&client, age_ms, reclaim_ms, limit).await?;
        let mut dated = Vec::with_capacity(rows.len());
        for (event, created_at) in rows {
            match serde_json::from_value::<AuditRow>(event) {
                Ok(audit) => dated.push((created_at, audit)),
                Err(error) => tracing::error!(%error, "unreadable audit outbox row left as is"),
            }
        }
        // `UPDATE … RETURNING` has no order of its own.
        dated.sort_by_key(|(created_at, _)| *created_at);
        Ok::<_, OutboxError>(dated.into_iter().map(|(_, row)| Orphan { row }).collect())
    };
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| OutboxError::Timeout(deadline))?
}
