//! SQL of sessions, run inside the tenant's transaction. Every revocation also queues a
//! notification (delivered on commit) so every node drops the session from its cache.

use std::net::IpAddr;

use serde::Serialize;
use shared::tenant_context::{TenantDb, TenantDbError, TenantScope, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

use shared::notify::Change;

pub struct NewSession<'a> {
    pub user_id: Uuid,
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub amr: &'a [String],
    /// The identity provider (its name) the user signed in through, if any.
    pub idp: Option<&'a str>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
}

pub async fn create(
    transaction: &mut TenantTransaction,
    session: &NewSession<'_>,
) -> Result<Uuid, TenantDbError> {
    let id = Uuid::now_v7();
    let user_agent = session
        .user_agent
        .map(|agent| agent.chars().take(512).collect::<String>());
    transaction
        .query_typed(
            "INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, amr, ip, user_agent,
                 idp)
             VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8)",
            &[
                (&id, Type::UUID),
                (&session.user_id, Type::UUID),
                (&session.now, Type::TIMESTAMPTZ),
                (&session.expires_at, Type::TIMESTAMPTZ),
                (&session.amr, Type::TEXT_ARRAY),
                (&session.ip, Type::INET),
                (&user_agent, Type::TEXT),
                (&session.idp, Type::TEXT),
            ],
        )
        .await?;
    Ok(id)
}

/// A session as the refresh path sees it.
pub struct SessionRow {
    pub user_id: Uuid,
    pub revoked: bool,
    /// When the user signed in (the session's start).
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub amr: Vec<String>,
    pub idp: Option<String>,
}

pub async fn get(
    transaction: &mut TenantTransaction,
    session_id: Uuid,
) -> Result<Option<SessionRow>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT user_id, revoked_at IS NOT NULL AS revoked, created_at, expires_at,
                    last_seen_at, amr, idp
             FROM sessions WHERE id = $1",
            &[(&session_id, Type::UUID)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(SessionRow {
            user_id: row.try_get("user_id")?,
            revoked: row.try_get("revoked")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            amr: row.try_get("amr")?,
            idp: row.try_get("idp")?,
        })),
        None => Ok(None),
    }
}

pub async fn touch(
    transaction: &mut TenantTransaction,
    session_id: Uuid,
    now: OffsetDateTime,
    ip: Option<IpAddr>,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE sessions SET last_seen_at = $2, ip = coalesce($3, ip) WHERE id = $1",
            &[
                (&session_id, Type::UUID),
                (&now, Type::TIMESTAMPTZ),
                (&ip, Type::INET),
            ],
        )
        .await?;
    Ok(())
}

/// A live session of the caller's.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[schema(value_type = Option<String>)]
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub amr: Vec<String>,
    /// Whether this is the session the request was made with.
    pub current: bool,
}

pub async fn list_live(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    current: Uuid,
) -> Result<Vec<SessionView>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT id, created_at, last_seen_at, expires_at, ip, user_agent, amr FROM sessions
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
             ORDER BY created_at DESC",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let id: Uuid = row.try_get("id")?;
            Ok(SessionView {
                id,
                created_at: row.try_get("created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
                expires_at: row.try_get("expires_at")?,
                ip: row.try_get("ip")?,
                user_agent: row.try_get("user_agent")?,
                amr: row.try_get("amr")?,
                current: id == current,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()?)
}

/// Which sessions a revocation ends.
pub enum Revoke {
    /// One session of a user.
    One { user_id: Uuid, session_id: Uuid },
    /// Every live session of a user but `except`.
    AllOf { user_id: Uuid, except: Option<Uuid> },
    /// The user's oldest live sessions beyond the newest `keep`.
    Oldest { user_id: Uuid, keep: i64 },
}

/// Ends sessions and announces each to every node; returns how many ended. The
/// announcement is a second round trip, taken only when some session ended.
pub async fn revoke(
    transaction: &mut TenantTransaction,
    tenant_id: Uuid,
    which: Revoke,
    reason: &str,
) -> Result<u64, TenantDbError> {
    let (condition, user_id, other): (&str, Uuid, Option<Uuid>) = match which {
        Revoke::One {
            user_id,
            session_id,
        } => ("id = $3", user_id, Some(session_id)),
        Revoke::AllOf { user_id, except } => ("id IS DISTINCT FROM $3", user_id, except),
        Revoke::Oldest { user_id, keep } => {
            return revoke_oldest(transaction, tenant_id, user_id, keep, reason).await;
        }
    };
    let sql = format!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2
         WHERE user_id = $1 AND revoked_at IS NULL AND {condition}
         RETURNING id"
    );
    let rows = transaction
        .query_typed(
            &sql,
            &[
                (&user_id, Type::UUID),
                (&reason, Type::TEXT),
                (&other, Type::UUID),
            ],
        )
        .await?;
    announce_ended(transaction, tenant_id, &rows).await
}

async fn revoke_oldest(
    transaction: &mut TenantTransaction,
    tenant_id: Uuid,
    user_id: Uuid,
    keep: i64,
    reason: &str,
) -> Result<u64, TenantDbError> {
    let rows = transaction
        .query_typed(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = $2
             WHERE id IN (
                 SELECT id FROM sessions
                 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
                 ORDER BY created_at DESC OFFSET $3)
             RETURNING id",
            &[
                (&user_id, Type::UUID),
                (&reason, Type::TEXT),
                (&keep, Type::INT8),
            ],
        )
        .await?;
    announce_ended(transaction, tenant_id, &rows).await
}

/// Tells every node, on commit, that the sessions in `ended` (rows of `id`) ended.
async fn announce_ended(
    transaction: &mut TenantTransaction,
    tenant_id: Uuid,
    ended: &[tokio_postgres::Row],
) -> Result<u64, TenantDbError> {
    let changes = ended
        .iter()
        .map(|row| {
            Ok(Change::SessionEnded {
                tenant: tenant_id,
                session: row.try_get("id")?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    transaction.notify(&changes).await?;
    Ok(changes.len() as u64)
}

/// The user and expiry of session `session_id` while it is live, in a transaction of its own
/// (one round trip). Only an active user's sessions are live: this also closes the window
/// where a sign-in that read the user as active commits its session just after an admin
/// disabled them.
pub async fn live_session(
    db: &TenantDb,
    scope: &TenantScope,
    session_id: Uuid,
) -> Result<Option<(Uuid, OffsetDateTime)>, TenantDbError> {
    let rows = db
        .query_once(
            scope,
            "SELECT s.user_id, s.expires_at FROM sessions s
             JOIN users u ON u.id = s.user_id AND u.status = 'active'
             WHERE s.id = $1 AND s.revoked_at IS NULL",
            &[(&session_id, Type::UUID)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some((row.try_get("user_id")?, row.try_get("expires_at")?))),
        None => Ok(None),
    }
}
