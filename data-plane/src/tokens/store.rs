//! SQL of refresh tokens and signing keys, run in the tenant's transaction (so only ever in
//! the tenant's own schema).

use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

/// A refresh token's session and when it was used (`None`: not yet), its row locked until
/// the transaction ends; `None` for an unknown token.
pub async fn refresh_token_for_update(
    transaction: &mut TenantTransaction,
    digest: &[u8],
) -> Result<Option<(Uuid, Option<OffsetDateTime>)>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
            &[(&digest, Type::BYTEA)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some((row.try_get("session_id")?, row.try_get("used_at")?))),
        None => Ok(None),
    }
}

pub async fn mark_refresh_token_used(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1",
            &[(&digest, Type::BYTEA), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    Ok(())
}

pub async fn insert_refresh_token(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    session_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
            &[
                (&digest, Type::BYTEA),
                (&session_id, Type::UUID),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// A signing key as stored: the private half still sealed with data key `data_key_version`.
pub struct StoredSigningKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
    pub data_key_version: i32,
    pub active: bool,
}

/// The active key and the keys retired less than `retired_seconds` ago, oldest first.
pub async fn published_signing_keys(
    transaction: &mut TenantTransaction,
    retired_seconds: f64,
) -> Result<Vec<StoredSigningKey>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT kid, public_key, private_key, data_key_version, retired_at IS NULL AS active
             FROM signing_keys
             WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
             ORDER BY created_at",
            &[(&retired_seconds, Type::FLOAT8)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredSigningKey {
                kid: row.try_get("kid")?,
                public_key: row.try_get("public_key")?,
                sealed_private_key: row.try_get("private_key")?,
                data_key_version: row.try_get("data_key_version")?,
                active: row.try_get("active")?,
            })
        })
        .collect()
}

/// A new active key, unless another one is active already (the table allows one: a
/// concurrent node's key wins, and this insert does nothing).
pub async fn insert_signing_key(
    transaction: &mut TenantTransaction,
    kid: &str,
    algorithm: &str,
    public_key: &[u8],
    sealed_private_key: &[u8],
    data_key_version: i32,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "INSERT INTO signing_keys (kid, algorithm, public_key, private_key, data_key_version)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
            &[
                (&kid, Type::TEXT),
                (&algorithm, Type::TEXT),
                (&public_key, Type::BYTEA),
                (&sealed_private_key, Type::BYTEA),
                (&data_key_version, Type::INT4),
            ],
        )
        .await?;
    Ok(())
}

pub async fn retire_active_signing_key(
    transaction: &mut TenantTransaction,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL",
            &[],
        )
        .await?;
    Ok(())
}
