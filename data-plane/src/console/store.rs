//! SQL of the console's browser sessions (`console_cookies`), in the tenant's transaction.

use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

/// Binds a cookie (its digest) to `session_id`.
pub async fn insert(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    session_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "INSERT INTO console_cookies (digest, session_id, created_at) VALUES ($1, $2, $3)",
            &[
                (&digest, Type::BYTEA),
                (&session_id, Type::UUID),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// The live session a cookie names: not revoked, not past its absolute end, its user active.
/// (The idle timeout is the caller's rule: it needs the tenant's policy.)
pub struct CookieSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub amr: Vec<String>,
    pub last_seen_at: OffsetDateTime,
}

pub async fn live_session(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    now: OffsetDateTime,
) -> Result<Option<CookieSession>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT s.id, s.user_id, s.amr, s.last_seen_at
             FROM console_cookies c
             JOIN sessions s ON s.id = c.session_id
             JOIN users u ON u.id = s.user_id AND u.status = 'active'
             WHERE c.digest = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
            &[(&digest, Type::BYTEA), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(CookieSession {
            session_id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            amr: row.try_get("amr")?,
            last_seen_at: row.try_get("last_seen_at")?,
        })),
        None => Ok(None),
    }
}
