//! SQL of the mailbox flows: pending users, mailed tokens, and the record of account mails
//! sent per address (the throttle). Runs in the tenant's transaction, so only ever in the
//! tenant's own schema. Users, passwords and token spending shared with sign-in are in
//! `identity::store`.

use shared::email::Email;
use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

/// Serialises the mailbox flows of one address within a tenant until the transaction ends,
/// so two concurrent registrations cannot both create the user, and concurrent requests
/// cannot together send more mails than the throttle allows.
pub async fn lock_address(
    transaction: &mut TenantTransaction,
    email: &Email,
) -> Result<(), TenantDbError> {
    let key = format!("accounts:{}:{}", transaction.tenant_id(), email.as_str());
    transaction
        .query_typed(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[(&key, Type::TEXT)],
        )
        .await?;
    Ok(())
}

/// Account mails of `purpose` sent to `email` since `since`.
pub async fn mails_sent_since(
    transaction: &mut TenantTransaction,
    email: &Email,
    purpose: &str,
    since: OffsetDateTime,
) -> Result<i64, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT count(*) AS sends FROM account_mail_sends
             WHERE email = $1 AND purpose = $2 AND sent_at > $3",
            &[
                (&email.as_str(), Type::TEXT),
                (&purpose, Type::TEXT),
                (&since, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(row.try_get("sends")?),
        None => Ok(0),
    }
}

/// Records an account mail to `email`, and forgets this address's sends older than `prune_before`.
pub async fn record_mail_sent(
    transaction: &mut TenantTransaction,
    email: &Email,
    purpose: &str,
    now: OffsetDateTime,
    prune_before: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "WITH pruned AS (
                 DELETE FROM account_mail_sends
                 WHERE email = $1 AND purpose = $2 AND sent_at <= $4)
             INSERT INTO account_mail_sends (email, purpose, sent_at) VALUES ($1, $2, $3)",
            &[
                (&email.as_str(), Type::TEXT),
                (&purpose, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
                (&prune_before, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// A self-registered user: `pending` until the address is verified, role `member` (when
/// the tenant has that role). `false` (nothing made) when the address is a directory's
/// `userName` for another user (template V12).
pub async fn insert_pending_user(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    email: &Email,
    display_name: &str,
    now: OffsetDateTime,
) -> Result<bool, TenantDbError> {
    let inserted = transaction
        .query_typed(
            "INSERT INTO users (id, email, display_name, status, created_at, updated_at)
             VALUES ($1, $2, $3, 'pending', $4, $4)
             ON CONFLICT DO NOTHING RETURNING id",
            &[
                (&user_id, Type::UUID),
                (&email.as_str(), Type::TEXT),
                (&display_name, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    if inserted.is_empty() {
        return Ok(false);
    }
    transaction
        .query_typed(
            "INSERT INTO user_roles (user_id, role_name)
             SELECT $1, name FROM roles WHERE name = 'member'",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    Ok(true)
}

/// Stores a mailed token's digest.
pub async fn insert_user_token(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    user_id: Uuid,
    purpose: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "INSERT INTO user_tokens (token_hash, user_id, purpose, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                (&digest, Type::BYTEA),
                (&user_id, Type::UUID),
                (&purpose, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
                (&expires_at, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// The user of a live (unused, unexpired) token of `purpose`, without spending it.
pub async fn live_token_user(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    purpose: &str,
    now: OffsetDateTime,
) -> Result<Option<Uuid>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT user_id FROM user_tokens
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
            &[
                (&digest, Type::BYTEA),
                (&purpose, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(row.try_get("user_id")?)),
        None => Ok(None),
    }
}

/// Spends every live token of `purpose` the user has (an older mail's link stops working).
pub async fn spend_user_tokens(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    purpose: &str,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE user_tokens SET used_at = $3
             WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
            &[
                (&user_id, Type::UUID),
                (&purpose, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// Marks the address verified; a `pending` user becomes `active` (a disabled one stays
/// disabled).
pub async fn mark_email_verified(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET email_verified_at = coalesce(email_verified_at, $2), updated_at = $2,
                 status = CASE WHEN status = 'pending' THEN 'active' ELSE status END
             WHERE id = $1",
            &[(&user_id, Type::UUID), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    Ok(())
}
