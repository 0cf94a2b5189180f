//! SQL of TOTP secrets, the accepted-step guard, backup codes and MFA challenges, run in the
//! tenant's transaction.

use std::net::IpAddr;

use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

/// A user's TOTP state.
pub struct TotpState {
    /// The sealed secret and the data-key version it was sealed with, once set up.
    pub sealed_secret: Option<(Vec<u8>, i32)>,
    pub enabled: bool,
}

/// The user's TOTP state, with the user's row locked until the transaction ends: a
/// concurrent setup cannot swap the secret between a code's check and its use.
pub async fn totp_state(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<Option<TotpState>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT totp_secret, totp_key_version, totp_enabled_at IS NOT NULL AS enabled
             FROM users WHERE id = $1 FOR UPDATE",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let secret: Option<Vec<u8>> = row.try_get("totp_secret")?;
    let version: Option<i32> = row.try_get("totp_key_version")?;
    Ok(Some(TotpState {
        sealed_secret: secret.zip(version),
        enabled: row.try_get("enabled")?,
    }))
}

/// Stores a new pending secret; false when TOTP is already enabled.
pub async fn set_pending_secret(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    sealed: &[u8],
    key_version: i32,
    now: OffsetDateTime,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "UPDATE users SET totp_secret = $2, totp_key_version = $3, updated_at = $4
             WHERE id = $1 AND totp_enabled_at IS NULL RETURNING id",
            &[
                (&user_id, Type::UUID),
                (&sealed, Type::BYTEA),
                (&key_version, Type::INT4),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Records `step` as the user's last accepted step, if it is later than the last one; false
/// when it is not (a replay). The row lock makes two concurrent uses of one code give one
/// success: the second waits, then finds the step no longer later.
pub async fn accept_step(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    step: i64,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "UPDATE users SET totp_last_step = $2
             WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id",
            &[(&user_id, Type::UUID), (&step, Type::INT8)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Turns TOTP on; false when it already was (a concurrent enable won).
pub async fn enable(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "UPDATE users SET totp_enabled_at = $2, updated_at = $2
             WHERE id = $1 AND totp_enabled_at IS NULL AND totp_secret IS NOT NULL RETURNING id",
            &[(&user_id, Type::UUID), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Turns TOTP off: forgets the secret, the backup codes and any pending challenge. The last
/// accepted step is kept (it only ever moves forward).
pub async fn disable(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET totp_secret = NULL, totp_key_version = NULL, totp_enabled_at = NULL,
                 updated_at = $2
             WHERE id = $1",
            &[(&user_id, Type::UUID), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    for sql in [
        "DELETE FROM backup_codes WHERE user_id = $1",
        "DELETE FROM mfa_challenges WHERE user_id = $1",
    ] {
        transaction
            .query_typed(sql, &[(&user_id, Type::UUID)])
            .await?;
    }
    Ok(())
}

/// Replaces the user's backup codes with `digests`.
pub async fn replace_backup_codes(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    digests: &[Vec<u8>],
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "WITH removed AS (DELETE FROM backup_codes WHERE user_id = $1)
             INSERT INTO backup_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])",
            &[(&user_id, Type::UUID), (&digests, Type::BYTEA_ARRAY)],
        )
        .await?;
    Ok(())
}

/// Spends a backup code; false when it is unknown or used.
pub async fn use_backup_code(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    digest: &[u8],
    now: OffsetDateTime,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "UPDATE backup_codes SET used_at = $3
             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING user_id",
            &[
                (&user_id, Type::UUID),
                (&digest, Type::BYTEA),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

pub async fn backup_codes_remaining(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<i64, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT count(*) AS remaining FROM backup_codes WHERE user_id = $1 AND used_at IS NULL",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(row.try_get("remaining")?),
        None => Ok(0),
    }
}

pub struct NewChallenge<'a> {
    pub digest: &'a [u8],
    pub user_id: Uuid,
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
}

pub async fn insert_challenge(
    transaction: &mut TenantTransaction,
    challenge: &NewChallenge<'_>,
) -> Result<(), TenantDbError> {
    let user_agent = challenge
        .user_agent
        .map(|agent| agent.chars().take(512).collect::<String>());
    // The user's spent and expired challenges are of no further use.
    transaction
        .query_typed(
            "DELETE FROM mfa_challenges
             WHERE user_id = $1 AND (used_at IS NOT NULL OR expires_at <= $2)",
            &[
                (&challenge.user_id, Type::UUID),
                (&challenge.now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    transaction
        .query_typed(
            "INSERT INTO mfa_challenges (token_hash, user_id, created_at, expires_at, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                (&challenge.digest, Type::BYTEA),
                (&challenge.user_id, Type::UUID),
                (&challenge.now, Type::TIMESTAMPTZ),
                (&challenge.expires_at, Type::TIMESTAMPTZ),
                (&challenge.ip, Type::INET),
                (&user_agent, Type::TEXT),
            ],
        )
        .await?;
    Ok(())
}

/// Whose challenge this digest names, if any (no lock: see `challenge_for_update`).
pub async fn challenge_user(
    transaction: &mut TenantTransaction,
    digest: &[u8],
) -> Result<Option<Uuid>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT user_id FROM mfa_challenges WHERE token_hash = $1",
            &[(&digest, Type::BYTEA)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(row.try_get("user_id")?)),
        None => Ok(None),
    }
}

pub struct ChallengeRow {
    pub user_id: Uuid,
    pub expires_at: OffsetDateTime,
    pub used: bool,
    pub failures: i32,
}

/// The challenge with this digest, locked until the transaction ends (so its failures are
/// counted, and its use happens, one request at a time).
pub async fn challenge_for_update(
    transaction: &mut TenantTransaction,
    digest: &[u8],
) -> Result<Option<ChallengeRow>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT user_id, expires_at, used_at IS NOT NULL AS used, failures FROM mfa_challenges
             WHERE token_hash = $1 FOR UPDATE",
            &[(&digest, Type::BYTEA)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(ChallengeRow {
            user_id: row.try_get("user_id")?,
            expires_at: row.try_get("expires_at")?,
            used: row.try_get("used")?,
            failures: row.try_get("failures")?,
        })),
        None => Ok(None),
    }
}

pub async fn count_challenge_failure(
    transaction: &mut TenantTransaction,
    digest: &[u8],
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE mfa_challenges SET failures = failures + 1 WHERE token_hash = $1",
            &[(&digest, Type::BYTEA)],
        )
        .await?;
    Ok(())
}

pub async fn spend_challenge(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE mfa_challenges SET used_at = $2 WHERE token_hash = $1",
            &[(&digest, Type::BYTEA), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    Ok(())
}
