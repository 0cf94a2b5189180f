//! SQL of mail delivery: the tenant's `mail_outbox` (run in tenant transactions, as the tenant
//! role) and the catalog's `control.mail_pending` (run as the data plane's login role).

use std::time::Duration;

use shared::catalog::{tenant_from_row, CatalogError, TENANT_COLUMNS};
use shared::mail_outbox;
use shared::notify::Change;
use shared::tenant::Tenant;
use shared::tenant_context::{TenantDb, TenantDbError, TenantScope, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::message::OutgoingMail;

/// Adds a mail to the outbox of the transaction's tenant.
pub async fn insert_outbox(
    transaction: &mut TenantTransaction,
    id: Uuid,
    mail: &OutgoingMail,
) -> Result<(), TenantDbError> {
    let to = mail.to().to_string();
    transaction
        .query_typed(
            mail_outbox::INSERT_OUTBOX,
            &[
                (&id, Type::UUID),
                (&to, Type::TEXT),
                (&mail.subject(), Type::TEXT),
                (&mail.body_text(), Type::TEXT),
            ],
        )
        .await?;
    Ok(())
}

/// Marks the tenant as having unsent mail (a new generation of the mark, from a sequence, so
/// never one a worker read before) and wakes the mail workers, both when the transaction
/// commits. The row lock on the mark is held until then. The mark runs as the login role: the
/// tenant role has no catalog rights.
pub async fn mark_pending(
    transaction: &mut TenantTransaction,
    tenant_id: Uuid,
) -> Result<(), TenantDbError> {
    transaction
        .query_as_session_user(mail_outbox::MARK_PENDING, &[(&tenant_id, Type::UUID)])
        .await?;
    transaction
        .notify(&[Change::MailPending { tenant: tenant_id }])
        .await
}

/// A tenant marked as having unsent mail, as the catalog has it, before draining its outbox.
#[derive(Debug)]
pub struct PendingTenant {
    pub generation: i64,
    pub tenant: Tenant,
}

/// A due mark: the tenant and the mark's generation.
#[derive(Debug, Clone, Copy)]
pub struct DueMark {
    pub tenant_id: Uuid,
    pub generation: i64,
}

/// Marks that are due on the cluster `client` is connected to, oldest first. Which tenants
/// they are (and whether their mail can go) is the catalog's to say: [`tenants_by_id`].
pub async fn due_marks(
    client: &tokio_postgres::Client,
    limit: i64,
) -> Result<Vec<DueMark>, tokio_postgres::Error> {
    let rows = client
        .query_typed(
            "SELECT tenant_id, generation FROM control.mail_pending
             WHERE due_at <= now() ORDER BY due_at LIMIT $1",
            &[(&limit, Type::INT8)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(DueMark {
                tenant_id: row.try_get("tenant_id")?,
                generation: row.try_get("generation")?,
            })
        })
        .collect()
}

/// The catalog's tenants with these ids (deleted ones too).
pub async fn tenants_by_id(
    catalog: &tokio_postgres::Client,
    ids: &[Uuid],
) -> Result<Vec<Tenant>, CatalogError> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM control.tenants t WHERE t.id = ANY($1)");
    let rows = catalog
        .query_typed(&sql, &[(&ids, Type::UUID_ARRAY)])
        .await?;
    rows.iter().map(tenant_from_row).collect()
}

/// Seconds until the earliest mark falls due (negative: overdue), if any.
pub async fn seconds_until_next_due(
    client: &tokio_postgres::Client,
) -> Result<Option<f64>, tokio_postgres::Error> {
    let row = client
        .query_typed(
            "SELECT extract(epoch FROM min(due_at) - now())::float8 AS seconds
             FROM control.mail_pending",
            &[],
        )
        .await?;
    match row.first() {
        Some(row) => row.try_get("seconds"),
        None => Ok(None),
    }
}

/// Removes the tenant's mark if it is still the generation read before draining: a mail
/// enqueued since bumped it, and then the mark stays.
pub async fn clear_mark(
    client: &tokio_postgres::Client,
    tenant_id: Uuid,
    generation: i64,
) -> Result<bool, tokio_postgres::Error> {
    let removed = client
        .execute_typed(
            "DELETE FROM control.mail_pending WHERE tenant_id = $1 AND generation = $2",
            &[(&tenant_id, Type::UUID), (&generation, Type::INT8)],
        )
        .await?;
    Ok(removed > 0)
}

/// Removes the mark of a tenant that is gone (being deleted or deleted): its outbox goes
/// with its schema.
pub async fn drop_mark(
    client: &tokio_postgres::Client,
    tenant_id: Uuid,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute_typed(
            "DELETE FROM control.mail_pending WHERE tenant_id = $1",
            &[(&tenant_id, Type::UUID)],
        )
        .await?;
    Ok(())
}

/// Sets when the tenant's mark is next looked at, unless a newer generation made it due now.
pub async fn reschedule_mark(
    client: &tokio_postgres::Client,
    tenant_id: Uuid,
    generation: i64,
    delay: Duration,
) -> Result<(), tokio_postgres::Error> {
    let seconds = delay.as_secs_f64();
    client
        .execute_typed(
            "UPDATE control.mail_pending SET due_at = now() + make_interval(secs => $3)
             WHERE tenant_id = $1 AND generation = $2",
            &[
                (&tenant_id, Type::UUID),
                (&generation, Type::INT8),
                (&seconds, Type::FLOAT8),
            ],
        )
        .await?;
    Ok(())
}

/// A mail claimed for sending: its row stays locked until the claiming transaction ends.
#[derive(Debug)]
pub struct ClaimedMail {
    pub id: Uuid,
    pub to_address: String,
    pub subject: String,
    pub body_text: String,
    pub attempts: i32,
    pub created_at: OffsetDateTime,
}

/// Locks the tenant's unsent mail that is due first, skipping mails other workers hold.
pub async fn claim_next(
    transaction: &mut TenantTransaction,
) -> Result<Option<ClaimedMail>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT id, to_address, subject, coalesce(body_text, '') AS body_text, attempts, created_at
             FROM mail_outbox
             WHERE sent_at IS NULL AND next_attempt_at <= now()
             ORDER BY next_attempt_at
             LIMIT 1
             FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(ClaimedMail {
        id: row.try_get("id")?,
        to_address: row.try_get("to_address")?,
        subject: row.try_get("subject")?,
        body_text: row.try_get("body_text")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
    }))
}

/// Records that the SMTP server accepted the mail, erases its body (it may hold live links)
/// and commits, releasing the claim.
pub async fn mark_sent_and_commit(
    mut transaction: TenantTransaction,
    id: Uuid,
) -> Result<(), TenantDbError> {
    transaction
        .query_then_commit(
            "UPDATE mail_outbox
             SET sent_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL,
                 body_text = NULL
             WHERE id = $1",
            &[(&id, Type::UUID)],
        )
        .await?;
    Ok(())
}

/// Records a failed attempt and when to try again, and commits, releasing the claim.
pub async fn mark_failed_and_commit(
    mut transaction: TenantTransaction,
    id: Uuid,
    error: &str,
    retry_in: Duration,
) -> Result<(), TenantDbError> {
    let seconds = retry_in.as_secs_f64();
    transaction
        .query_then_commit(
            "UPDATE mail_outbox
             SET attempts = attempts + 1, last_error = $2,
                 next_attempt_at = clock_timestamp() + make_interval(secs => $3)
             WHERE id = $1",
            &[
                (&id, Type::UUID),
                (&error, Type::TEXT),
                (&seconds, Type::FLOAT8),
            ],
        )
        .await?;
    Ok(())
}

/// What is left unsent in the tenant's outbox: how many, and in how many seconds the first
/// of them falls due (negative: already due, e.g. held by another worker).
pub async fn unsent_summary(
    db: &TenantDb,
    scope: &TenantScope,
) -> Result<(i64, Option<f64>), TenantDbError> {
    let rows = db
        .query_once(
            scope,
            "SELECT count(*) AS unsent,
                    extract(epoch FROM min(next_attempt_at) - now())::float8 AS seconds
             FROM mail_outbox WHERE sent_at IS NULL",
            &[],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok((0, None));
    };
    Ok((row.try_get("unsent")?, row.try_get("seconds")?))
}
