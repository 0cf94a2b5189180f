//! SQL of operator tokens in the catalog (`control.operator_tokens`); tokens are found by
//! their digest only.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::error::ControlError;

/// Stores a token's digest under `name`; `false` when a token of that name exists already.
pub async fn insert_token(
    client: &impl GenericClient,
    name: &str,
    token_hash: &[u8],
) -> Result<bool, ControlError> {
    let inserted = client
        .execute(
            "INSERT INTO control.operator_tokens (id, name, token_hash) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[&Uuid::now_v7(), &name, &token_hash],
        )
        .await?;
    Ok(inserted > 0)
}

/// The name of the live (not revoked) token with this digest, noting that it was used now.
pub async fn use_token(
    client: &impl GenericClient,
    token_hash: &[u8],
) -> Result<Option<String>, ControlError> {
    let row = client
        .query_opt(
            "UPDATE control.operator_tokens SET last_used_at = now()
             WHERE token_hash = $1 AND revoked_at IS NULL
             RETURNING name",
            &[&token_hash],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(row.try_get("name")?)),
        None => Ok(None),
    }
}

/// Stores an operator account; `false` when the address has one.
pub async fn insert_account(
    client: &impl GenericClient,
    email: &str,
    password_hash: &str,
) -> Result<bool, ControlError> {
    let inserted = client
        .execute(
            "INSERT INTO control.operator_accounts (id, email, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (email) DO NOTHING",
            &[&Uuid::now_v7(), &email, &password_hash],
        )
        .await?;
    Ok(inserted > 0)
}

/// An enabled operator account, as sign-in needs it.
pub struct AccountRow {
    pub id: Uuid,
    pub password_hash: String,
    /// The sealed TOTP secret when two-factor is on.
    pub totp_secret: Option<Vec<u8>>,
}

/// An enabled account, by address.
pub async fn account_by_email(
    client: &impl GenericClient,
    email: &str,
) -> Result<Option<AccountRow>, ControlError> {
    let row = client
        .query_opt(
            "SELECT id, password_hash, CASE WHEN totp_enabled THEN totp_secret END AS totp_secret
             FROM control.operator_accounts WHERE email = $1 AND disabled_at IS NULL",
            &[&email],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(AccountRow {
            id: row.try_get("id")?,
            password_hash: row.try_get("password_hash")?,
            totp_secret: row.try_get("totp_secret")?,
        })),
        None => Ok(None),
    }
}

/// An account's id, whether two-factor is on and its sealed secret (pending or on).
pub async fn totp_state(
    client: &impl GenericClient,
    email: &str,
) -> Result<Option<(Uuid, bool, Option<Vec<u8>>)>, ControlError> {
    let row = client
        .query_opt(
            "SELECT id, totp_enabled, totp_secret FROM control.operator_accounts
             WHERE email = $1 AND disabled_at IS NULL",
            &[&email],
        )
        .await?;
    match row {
        Some(row) => Ok(Some((
            row.try_get("id")?,
            row.try_get("totp_enabled")?,
            row.try_get("totp_secret")?,
        ))),
        None => Ok(None),
    }
}

/// Stores a pending TOTP secret (only while two-factor is off); whether it was stored.
pub async fn set_pending_totp(
    client: &impl GenericClient,
    account_id: Uuid,
    sealed: &[u8],
) -> Result<bool, ControlError> {
    let updated = client
        .execute(
            "UPDATE control.operator_accounts SET totp_secret = $2
             WHERE id = $1 AND NOT totp_enabled",
            &[&account_id, &sealed],
        )
        .await?;
    Ok(updated > 0)
}

/// Records `step` as used by the account (turning two-factor on when `enable`); false when
/// a step at least as late was used already (a replayed code).
pub async fn accept_totp_step(
    client: &impl GenericClient,
    account_id: Uuid,
    step: i64,
    enable: bool,
) -> Result<bool, ControlError> {
    let updated = client
        .execute(
            "UPDATE control.operator_accounts
             SET totp_last_step = $2, totp_enabled = totp_enabled OR $3
             WHERE id = $1 AND totp_secret IS NOT NULL
               AND (totp_last_step IS NULL OR totp_last_step < $2)",
            &[&account_id, &step, &enable],
        )
        .await?;
    Ok(updated > 0)
}

/// Opens a console session for `account_id` under a cookie's digest.
pub async fn insert_session(
    client: &impl GenericClient,
    digest: &[u8],
    account_id: Uuid,
    now: time::OffsetDateTime,
    expires_at: time::OffsetDateTime,
) -> Result<(), ControlError> {
    client
        .execute(
            "INSERT INTO control.operator_console_sessions
                 (digest, account_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[&digest, &account_id, &now, &expires_at],
        )
        .await?;
    Ok(())
}

/// The address of the enabled account whose live session the digest names.
pub async fn session_account(
    client: &impl GenericClient,
    digest: &[u8],
    now: time::OffsetDateTime,
) -> Result<Option<String>, ControlError> {
    let row = client
        .query_opt(
            "SELECT a.email FROM control.operator_console_sessions s
             JOIN control.operator_accounts a ON a.id = s.account_id AND a.disabled_at IS NULL
             WHERE s.digest = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
            &[&digest, &now],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(row.try_get("email")?)),
        None => Ok(None),
    }
}

/// Ends the session the digest names.
pub async fn revoke_session(
    client: &impl GenericClient,
    digest: &[u8],
    now: time::OffsetDateTime,
) -> Result<(), ControlError> {
    client
        .execute(
            "UPDATE control.operator_console_sessions SET revoked_at = $2
             WHERE digest = $1 AND revoked_at IS NULL",
            &[&digest, &now],
        )
        .await?;
    Ok(())
}
