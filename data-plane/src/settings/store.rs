//! SQL of the tenant's settings (the `settings` table: one JSON value per key), run in the
//! tenant's transaction. Each policy (auth, CORS, privacy) is read and written through
//! [`read`] and [`write`] under its own key.

use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::notify::Change;
use shared::tenant_context::{TenantDbError, TenantTransaction};
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::identity::policy::{AuthPolicy, SETTINGS_KEY};

/// The SELECT of one setting, for [`read`] and for readers outside a transaction.
pub const SELECT_SETTING: &str = "SELECT value FROM settings WHERE key = $1";

/// The setting `key`; the default when none is stored, or when what is stored no longer
/// parses (a policy's defaults are its safe reading).
pub async fn read<T: DeserializeOwned + Default>(
    transaction: &mut TenantTransaction,
    key: &str,
) -> Result<T, TenantDbError> {
    let rows = transaction
        .query_typed(SELECT_SETTING, &[(&key, Type::TEXT)])
        .await?;
    decode(&rows)
}

/// The setting in the rows of [`SELECT_SETTING`], as [`read`] reads it.
pub fn decode<T: DeserializeOwned + Default>(
    rows: &[tokio_postgres::Row],
) -> Result<T, TenantDbError> {
    let Some(row) = rows.first() else {
        return Ok(T::default());
    };
    let value: serde_json::Value = row.try_get("value")?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

/// Stores `value` as the setting `key`, all of it (defaults included, so what is stored reads
/// the same whatever the defaults become).
pub async fn write<T: Serialize>(
    transaction: &mut TenantTransaction,
    key: &str,
    value: &T,
) -> Result<(), TenantDbError> {
    // Serialising our own plain structs cannot fail; `Null` would be refused by the column.
    let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    transaction
        .query_typed(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            &[(&key, Type::TEXT), (&value, Type::JSONB)],
        )
        .await?;
    Ok(())
}

/// Stores `policy` as the tenant's auth policy.
pub async fn save_policy(
    transaction: &mut TenantTransaction,
    policy: &AuthPolicy,
) -> Result<(), TenantDbError> {
    write(transaction, SETTINGS_KEY, policy).await
}

/// Tells every node, on commit, to drop its cached signing keys of `tenant_id`.
pub async fn announce_keys_rotated(
    transaction: &mut TenantTransaction,
    tenant_id: Uuid,
) -> Result<(), TenantDbError> {
    transaction
        .notify(&[Change::SigningKeys { tenant: tenant_id }])
        .await
}
