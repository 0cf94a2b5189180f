//! SQL of API keys, in the tenant's schema (so a prefix or id of another tenant's key simply
//! does not exist here).

use std::sync::Arc;

use serde::Serialize;
use shared::notify::Change;
use shared::tenant_context::{TenantDb, TenantDbError, TenantScope, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::cache::StoredKey;
use super::input::IpAllowList;
use crate::tenancy::ApiKeyPrincipal;

/// A key as tenant admins see it: everything but its secret, which is never stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// CIDR ranges the key may be used from; `null`: any address.
    pub allowed_ips: Option<Vec<String>>,
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub rotated_at: Option<OffsetDateTime>,
    /// Until when the secret replaced by the last rotation still works, if it does.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    pub use_count: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// `active`, `expired` or `revoked`, as of the request.
    pub status: &'static str,
}

const VIEW_COLUMNS: &str = "id, name, prefix, scopes, expires_at, allowed_ips, created_by,
     created_at, rotated_at, previous_valid_until, last_used_at, use_count, revoked_at";

fn view_from_row(row: &tokio_postgres::Row, now: OffsetDateTime) -> Result<KeyView, TenantDbError> {
    let expires_at: Option<OffsetDateTime> = row.try_get("expires_at")?;
    let previous_valid_until: Option<OffsetDateTime> = row.try_get("previous_valid_until")?;
    let revoked_at: Option<OffsetDateTime> = row.try_get("revoked_at")?;
    let status = if revoked_at.is_some() {
        "revoked"
    } else if expires_at.is_some_and(|expires_at| expires_at <= now) {
        "expired"
    } else {
        "active"
    };
    Ok(KeyView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scopes: row.try_get("scopes")?,
        expires_at,
        allowed_ips: row.try_get("allowed_ips")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        rotated_at: row.try_get("rotated_at")?,
        previous_secret_expires_at: previous_valid_until
            .filter(|until| *until > now && revoked_at.is_none()),
        last_used_at: row.try_get("last_used_at")?,
        use_count: row.try_get("use_count")?,
        revoked_at,
        status,
    })
}

/// The key whose public prefix is `prefix`, revoked or not.
pub async fn find_by_prefix(
    db: &TenantDb,
    scope: &TenantScope,
    prefix: &str,
) -> Result<Option<StoredKey>, TenantDbError> {
    let rows = db
        .query_once(
            scope,
            "SELECT id, name, secret_hash, previous_secret_hash, previous_valid_until, scopes,
                    allowed_ips, expires_at, created_by, revoked_at IS NOT NULL AS revoked
             FROM api_keys WHERE prefix = $1",
            &[(&prefix, Type::TEXT)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let previous_hash: Option<Vec<u8>> = row.try_get("previous_secret_hash")?;
    let previous_until: Option<OffsetDateTime> = row.try_get("previous_valid_until")?;
    let allowed_ips: Option<Vec<String>> = row.try_get("allowed_ips")?;
    Ok(Some(StoredKey {
        secret_hash: row.try_get("secret_hash")?,
        previous_secret: previous_hash.zip(previous_until),
        allowed_ips: allowed_ips.as_deref().map(IpAllowList::from_stored),
        expires_at: row.try_get("expires_at")?,
        revoked: row.try_get("revoked")?,
        principal: Arc::new(ApiKeyPrincipal {
            key_id: row.try_get("id")?,
            name: row.try_get("name")?,
            scopes: row.try_get("scopes")?,
            created_by: row.try_get("created_by")?,
        }),
    }))
}

/// Makes concurrent key creations in this tenant run one after another until commit, so a
/// count of live keys followed by an insert cannot overshoot the quota. Readers (lookups,
/// lists) are not blocked; writers (usage flushes, revocations) wait a few milliseconds.
pub async fn lock_for_creation(transaction: &mut TenantTransaction) -> Result<(), TenantDbError> {
    transaction
        .query_typed("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE", &[])
        .await?;
    Ok(())
}

/// Keys neither revoked nor expired at `now`: what the `max_api_keys` quota counts.
pub async fn count_live(
    transaction: &mut TenantTransaction,
    now: OffsetDateTime,
) -> Result<i64, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT count(*) AS live FROM api_keys
             WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
            &[(&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(row.try_get("live")?),
        None => Ok(0),
    }
}

/// A key to insert.
pub struct NewKeyRow<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a [u8],
    pub scopes: &'a [String],
    pub allowed_ips: Option<Vec<String>>,
    pub expires_at: Option<OffsetDateTime>,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
}

/// Inserts the key; false when its prefix is taken (draw another).
pub async fn insert(
    transaction: &mut TenantTransaction,
    key: &NewKeyRow<'_>,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "INSERT INTO api_keys
                 (id, name, prefix, secret_hash, scopes, allowed_ips, expires_at, created_by,
                  created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (prefix) DO NOTHING
             RETURNING id",
            &[
                (&key.id, Type::UUID),
                (&key.name, Type::TEXT),
                (&key.prefix, Type::TEXT),
                (&key.secret_hash, Type::BYTEA),
                (&key.scopes, Type::TEXT_ARRAY),
                (&key.allowed_ips, Type::TEXT_ARRAY),
                (&key.expires_at, Type::TIMESTAMPTZ),
                (&key.created_by, Type::UUID),
                (&key.created_at, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Every key of the tenant, oldest first (the quota bounds how many are live).
pub async fn list(
    transaction: &mut TenantTransaction,
    now: OffsetDateTime,
) -> Result<Vec<KeyView>, TenantDbError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM api_keys ORDER BY created_at, id");
    let rows = transaction.query_typed(&sql, &[]).await?;
    rows.iter().map(|row| view_from_row(row, now)).collect()
}

pub async fn get(
    transaction: &mut TenantTransaction,
    key_id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<KeyView>, TenantDbError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM api_keys WHERE id = $1");
    let rows = transaction
        .query_typed(&sql, &[(&key_id, Type::UUID)])
        .await?;
    rows.first().map(|row| view_from_row(row, now)).transpose()
}

/// A key about to be rotated, locked for the rest of the transaction.
pub struct LockedKey {
    pub prefix: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked: bool,
}

pub async fn lock_key(
    transaction: &mut TenantTransaction,
    key_id: Uuid,
) -> Result<Option<LockedKey>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT prefix, scopes, expires_at, revoked_at IS NOT NULL AS revoked
             FROM api_keys WHERE id = $1 FOR UPDATE",
            &[(&key_id, Type::UUID)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(LockedKey {
            prefix: row.try_get("prefix")?,
            scopes: row.try_get("scopes")?,
            expires_at: row.try_get("expires_at")?,
            revoked: row.try_get("revoked")?,
        })),
        None => Ok(None),
    }
}

/// Replaces the key's secret; the current one becomes the previous one, valid until
/// `previous_valid_until` (`None`: refused at once).
pub async fn rotate(
    transaction: &mut TenantTransaction,
    key_id: Uuid,
    secret_hash: &[u8],
    previous_valid_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE api_keys
             SET previous_secret_hash = CASE WHEN $3::timestamptz IS NULL THEN NULL
                                             ELSE secret_hash END,
                 previous_valid_until = $3,
                 secret_hash = $2,
                 rotated_at = $4
             WHERE id = $1",
            &[
                (&key_id, Type::UUID),
                (&secret_hash, Type::BYTEA),
                (&previous_valid_until, Type::TIMESTAMPTZ),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// Revokes the key (keeping the first revocation time); its prefix, or `None` if no such key.
pub async fn revoke(
    transaction: &mut TenantTransaction,
    key_id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<String>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "UPDATE api_keys
             SET revoked_at = coalesce(revoked_at, $2),
                 previous_secret_hash = NULL, previous_valid_until = NULL
             WHERE id = $1 RETURNING prefix",
            &[(&key_id, Type::UUID), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(row.try_get("prefix")?)),
        None => Ok(None),
    }
}

/// Tells every node, when the transaction commits, to forget its cached row of the key.
pub async fn notify_changed(
    transaction: &mut TenantTransaction,
    tenant_id: Uuid,
    prefix: &str,
) -> Result<(), TenantDbError> {
    transaction
        .notify(&[Change::ApiKey {
            tenant: tenant_id,
            prefix: prefix.to_owned(),
        }])
        .await
}

/// Adds tallied uses to the keys' counters, in one statement.
pub async fn add_usage(
    db: &TenantDb,
    scope: &TenantScope,
    key_ids: &[Uuid],
    uses: &[i64],
    last_used: &[OffsetDateTime],
) -> Result<(), TenantDbError> {
    db.query_once(
        scope,
        "UPDATE api_keys AS k
         SET use_count = k.use_count + u.uses,
             last_used_at = greatest(k.last_used_at, u.last_used)
         FROM unnest($1::uuid[], $2::int8[], $3::timestamptz[]) AS u (id, uses, last_used)
         WHERE k.id = u.id",
        &[
            (&key_ids, Type::UUID_ARRAY),
            (&uses, Type::INT8_ARRAY),
            (&last_used, Type::TIMESTAMPTZ_ARRAY),
        ],
    )
    .await?;
    Ok(())
}
