//! SQL of the provisioning state machine: the job row and the per-tenant lock.

use deadpool_postgres::GenericClient;
use deadpool_postgres::{Object, Pool};
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::{JobState, Step};
use crate::error::ControlError;

pub async fn last_step(client: &Object, tenant_id: Uuid) -> Result<Option<Step>, ControlError> {
    let rows = client
        .query_typed(
            "SELECT last_step FROM control.provisioning_jobs WHERE tenant_id = $1",
            &[(&tenant_id, Type::UUID)],
        )
        .await?;
    Ok(rows.first().and_then(|row| Step::parse(row.get(0))))
}

pub async fn record_failure(
    client: &Object,
    tenant_id: Uuid,
    message: &str,
) -> Result<(), ControlError> {
    client.batch_execute("BEGIN").await?;
    let outcome = async {
        client
            .execute(
                "UPDATE control.provisioning_jobs
                 SET state = 'failed', last_error = $2, updated_at = now()
                 WHERE tenant_id = $1",
                &[&tenant_id, &message],
            )
            .await?;
        client
            .execute(
                "UPDATE control.tenants SET status = 'failed', updated_at = now()
                 WHERE id = $1 AND status = 'provisioning'",
                &[&tenant_id],
            )
            .await?;
        Ok::<_, tokio_postgres::Error>(())
    }
    .await;
    client
        .batch_execute(if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        })
        .await?;
    Ok(outcome?)
}

/// Marks a new attempt. A job that finished meanwhile (another run activated the tenant
/// after the caller read it) stays `done`.
pub async fn mark_retry(client: &Object, tenant_id: Uuid) -> Result<(), ControlError> {
    client
        .execute(
            "UPDATE control.tenants SET status = 'provisioning', updated_at = now()
             WHERE id = $1 AND status = 'failed'",
            &[&tenant_id],
        )
        .await?;
    client
        .execute(
            "UPDATE control.provisioning_jobs
             SET state = 'running', attempts = attempts + 1, updated_at = now()
             WHERE tenant_id = $1 AND state <> 'done'",
            &[&tenant_id],
        )
        .await?;
    Ok(())
}

pub async fn job_state(client: &Object, tenant_id: Uuid) -> Result<Option<JobState>, ControlError> {
    let row = client
        .query_opt(
            "SELECT last_step, state, attempts, last_error
             FROM control.provisioning_jobs WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await?;
    Ok(row.map(|row| JobState {
        last_step: row.get(0),
        state: row.get(1),
        attempts: row.get(2),
        last_error: row.get(3),
    }))
}

/// A session-level advisory lock on one tenant, held on its own pooled connection for the
/// length of a provisioning or deletion run. If the process dies the connection closes and
/// Postgres releases the lock; if the holder is dropped without `release` (a cancelled
/// request), the connection is detached from the pool and closed, which releases it too.
pub struct TenantLock {
    client: Option<Object>,
    key: i64,
}

fn lock_key(tenant_id: Uuid) -> i64 {
    let bytes = tenant_id.as_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(first)
}

impl TenantLock {
    pub async fn acquire(pool: &Pool, tenant_id: Uuid) -> Result<Self, ControlError> {
        let client = pool.get().await?;
        let key = lock_key(tenant_id);
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await?
            .get(0);
        if !locked {
            return Err(ControlError::Busy);
        }
        Ok(Self {
            client: Some(client),
            key,
        })
    }

    pub async fn release(mut self) {
        if let Some(client) = self.client.take() {
            if client
                .query_one("SELECT pg_advisory_unlock($1)", &[&self.key])
                .await
                .is_err()
            {
                drop(Object::take(client));
            }
        }
    }
}

impl Drop for TenantLock {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // The lock is still held by this session: never hand it to another user.
            drop(Object::take(client));
        }
    }
}
