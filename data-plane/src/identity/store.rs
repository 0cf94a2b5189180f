//! SQL of users, passwords, one-time tokens, sign-in throttling and the auth policy, run in
//! the tenant's transaction (so only ever in the tenant's own schema).

use std::net::IpAddr;

use shared::email::Email;
use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::policy::{AuthPolicy, SETTINGS_KEY};

pub struct UserRow {
    pub id: Uuid,
    pub email: Email,
    pub display_name: String,
    pub status: String,
    pub password_hash: Option<String>,
    pub password_changed_at: Option<OffsetDateTime>,
    pub email_verified: bool,
    pub totp_enabled: bool,
    pub created_at: OffsetDateTime,
}

const USER_COLUMNS: &str = "id, email, display_name, status, password_hash, password_changed_at,
     email_verified_at IS NOT NULL AS email_verified, totp_enabled_at IS NOT NULL AS totp_enabled,
     created_at";

fn user_from_row(row: &tokio_postgres::Row) -> Result<UserRow, tokio_postgres::Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        email: Email::from_stored(row.try_get("email")?),
        display_name: row.try_get("display_name")?,
        status: row.try_get("status")?,
        password_hash: row.try_get("password_hash")?,
        password_changed_at: row.try_get("password_changed_at")?,
        email_verified: row.try_get("email_verified")?,
        totp_enabled: row.try_get("totp_enabled")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn user_by_email(
    transaction: &mut TenantTransaction,
    email: &Email,
) -> Result<Option<UserRow>, TenantDbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    let rows = transaction
        .query_typed(&sql, &[(&email.as_str(), Type::TEXT)])
        .await?;
    Ok(rows.first().map(user_from_row).transpose()?)
}

pub async fn user_by_id(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<Option<UserRow>, TenantDbError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let rows = transaction
        .query_typed(&sql, &[(&user_id, Type::UUID)])
        .await?;
    Ok(rows.first().map(user_from_row).transpose()?)
}

pub async fn role_names(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<Vec<String>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT role_name FROM user_roles WHERE user_id = $1 ORDER BY role_name",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("role_name"))
        .collect::<Result<_, _>>()?)
}

/// The tenant's auth policy; defaults for everything it never set.
pub async fn policy(transaction: &mut TenantTransaction) -> Result<AuthPolicy, TenantDbError> {
    crate::settings::store::read(transaction, SETTINGS_KEY).await
}

/// When sign-ins for `email` are locked until, if they are.
pub async fn locked_until(
    transaction: &mut TenantTransaction,
    email: &str,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT locked_until FROM login_throttle WHERE email = $1 AND locked_until > $2",
            &[(&email, Type::TEXT), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(row.try_get("locked_until")?)),
        None => Ok(None),
    }
}

/// Counts a failed sign-in for `email`; locks it when the policy's limit is reached within its
/// window. Returns the lock's end when this failure locked it.
pub async fn record_failure(
    transaction: &mut TenantTransaction,
    email: &str,
    policy: &AuthPolicy,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, TenantDbError> {
    let window = f64::from(policy.lockout.lockout_minutes) * 60.0;
    let max_failures = i32::try_from(policy.lockout.max_failures).unwrap_or(i32::MAX);
    let rows = transaction
        .query_typed(
            "INSERT INTO login_throttle AS t (email, failures, first_failure_at)
             VALUES ($1, 1, $2)
             ON CONFLICT (email) DO UPDATE SET
                 failures = CASE WHEN t.first_failure_at > $2 - make_interval(secs => $3)
                                 THEN t.failures + 1 ELSE 1 END,
                 first_failure_at = CASE WHEN t.first_failure_at > $2 - make_interval(secs => $3)
                                 THEN t.first_failure_at ELSE $2 END,
                 locked_until = NULL
             RETURNING failures",
            &[
                (&email, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
                (&window, Type::FLOAT8),
            ],
        )
        .await?;
    let failures: i32 = match rows.first() {
        Some(row) => row.try_get("failures")?,
        None => 0,
    };
    if failures < max_failures {
        return Ok(None);
    }
    let until = now + time::Duration::minutes(i64::from(policy.lockout.lockout_minutes));
    transaction
        .query_typed(
            "UPDATE login_throttle SET locked_until = $2, failures = 0 WHERE email = $1",
            &[(&email, Type::TEXT), (&until, Type::TIMESTAMPTZ)],
        )
        .await?;
    Ok(Some(until))
}

pub async fn clear_failures(
    transaction: &mut TenantTransaction,
    email: &str,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "DELETE FROM login_throttle WHERE email = $1",
            &[(&email, Type::TEXT)],
        )
        .await?;
    Ok(())
}

pub struct Attempt<'a> {
    pub email: &'a str,
    pub user_id: Option<Uuid>,
    pub method: &'a str,
    pub outcome: &'a str,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
}

/// Records a sign-in attempt for the audit log.
pub async fn record_attempt(
    transaction: &mut TenantTransaction,
    attempt: &Attempt<'_>,
) -> Result<(), TenantDbError> {
    let email: String = attempt.email.chars().take(254).collect();
    let user_agent = attempt
        .user_agent
        .map(|agent| agent.chars().take(512).collect::<String>());
    transaction
        .query_typed(
            "INSERT INTO login_attempts (id, email, user_id, method, outcome, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                (&Uuid::now_v7(), Type::UUID),
                (&email, Type::TEXT),
                (&attempt.user_id, Type::UUID),
                (&attempt.method, Type::TEXT),
                (&attempt.outcome, Type::TEXT),
                (&attempt.ip, Type::INET),
                (&user_agent, Type::TEXT),
            ],
        )
        .await?;
    Ok(())
}

/// The user an unused, unexpired activation or invitation token was issued to, and their
/// email; `None` for any other token. Reads only: the token is spent by [`take_user_token`].
pub async fn activation_target(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    now: OffsetDateTime,
) -> Result<Option<(Uuid, String)>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT u.id, u.email FROM user_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.purpose IN ('activation', 'invitation')
               AND t.used_at IS NULL AND t.expires_at > $2",
            &[(&digest, Type::BYTEA), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some((row.try_get("id")?, row.try_get("email")?))),
        None => Ok(None),
    }
}

/// Uses a single-use token of one of `purposes`: marks it used and returns its user, or
/// `None` when it is unknown, used or expired.
pub async fn take_user_token(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    purposes: &[&str],
    now: OffsetDateTime,
) -> Result<Option<Uuid>, TenantDbError> {
    let purposes: Vec<String> = purposes
        .iter()
        .map(|purpose| (*purpose).to_owned())
        .collect();
    let rows = transaction
        .query_typed(
            "UPDATE user_tokens SET used_at = $3
             WHERE token_hash = $1 AND purpose = ANY($2) AND used_at IS NULL AND expires_at > $3
             RETURNING user_id",
            &[
                (&digest, Type::BYTEA),
                (&purposes, Type::TEXT_ARRAY),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(row.try_get("user_id")?)),
        None => Ok(None),
    }
}

/// The user's last `count` password hashes, newest first.
pub async fn password_history(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    count: usize,
) -> Result<Vec<String>, TenantDbError> {
    let limit = i64::try_from(count).unwrap_or(0);
    let rows = transaction
        .query_typed(
            "SELECT password_hash FROM password_history WHERE user_id = $1
             ORDER BY created_at DESC LIMIT $2",
            &[(&user_id, Type::UUID), (&limit, Type::INT8)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("password_hash"))
        .collect::<Result<_, _>>()?)
}

/// Sets a new password (and records it in the history, keeping at most `keep` entries).
/// `activate` also marks a pending or invited user active with a verified address.
pub async fn set_password(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    hash: &str,
    now: OffsetDateTime,
    keep: usize,
    activate: bool,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3,
                 status = CASE WHEN $4 AND status IN ('invited', 'pending') THEN 'active' ELSE status END,
                 email_verified_at = CASE WHEN $4 THEN coalesce(email_verified_at, $3)
                                          ELSE email_verified_at END
             WHERE id = $1",
            &[
                (&user_id, Type::UUID),
                (&hash, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
                (&activate, Type::BOOL),
            ],
        )
        .await?;
    let keep = i64::try_from(keep.max(1)).unwrap_or(1);
    transaction
        .query_typed(
            // The DELETE sees the table as it was before the INSERT: keeping the newest
            // `keep - 1` older rows leaves `keep` with the new one.
            "WITH added AS (
                 INSERT INTO password_history (user_id, password_hash) VALUES ($1, $2))
             DELETE FROM password_history WHERE user_id = $1 AND created_at NOT IN (
                 SELECT created_at FROM password_history WHERE user_id = $1
                 ORDER BY created_at DESC LIMIT $3 - 1)",
            &[
                (&user_id, Type::UUID),
                (&hash, Type::TEXT),
                (&keep, Type::INT8),
            ],
        )
        .await?;
    Ok(())
}

pub async fn rehash(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    hash: &str,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            &[(&user_id, Type::UUID), (&hash, Type::TEXT)],
        )
        .await?;
    Ok(())
}

/// Sets the user's display name (the user's own change, or what their IdP sends).
pub async fn set_display_name(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    display_name: &str,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET display_name = $2 WHERE id = $1 AND display_name <> $2",
            &[(&user_id, Type::UUID), (&display_name, Type::TEXT)],
        )
        .await?;
    Ok(())
}
