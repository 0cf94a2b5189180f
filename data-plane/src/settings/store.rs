//! SQL of the tenant's settings, run in the tenant's transaction.

use shared::notify::Change;
use shared::tenant_context::{TenantDbError, TenantTransaction};
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::identity::policy::{AuthPolicy, SETTINGS_KEY};

/// Stores `policy` as the tenant's auth policy (all of it, defaults included, so what is
/// stored reads the same whatever the defaults become).
pub async fn save_policy(
    transaction: &mut TenantTransaction,
    policy: &AuthPolicy,
) -> Result<(), TenantDbError> {
    // Serialising our own plain struct cannot fail; `Null` would be refused by the column.
    let value = serde_json::to_value(policy).unwrap_or(serde_json::Value::Null);
    transaction
        .query_typed(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
            &[(&SETTINGS_KEY, Type::TEXT), (&value, Type::JSONB)],
        )
        .await?;
    Ok(())
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
