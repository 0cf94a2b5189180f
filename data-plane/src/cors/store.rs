//! SQL of the CORS settings, in the tenant's `settings` table.

use shared::notify::Change;
use shared::tenant_context::{TenantDb, TenantDbError, TenantScope, TenantTransaction};
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::{CorsPolicy, SETTINGS_KEY};

/// The stored policy; the empty one (no origin allowed) when none is stored.
pub async fn load(tenant_db: &TenantDb, scope: &TenantScope) -> Result<CorsPolicy, TenantDbError> {
    let rows = tenant_db
        .query_once(
            scope,
            "SELECT value FROM settings WHERE key = $1",
            &[(&SETTINGS_KEY, Type::TEXT)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(CorsPolicy::default());
    };
    let value: serde_json::Value = row.try_get("value")?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

pub async fn save(
    transaction: &mut TenantTransaction,
    policy: &CorsPolicy,
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

/// Tells every node, on commit, to drop its cached CORS policy of `tenant_id`.
pub async fn announce_changed(
    transaction: &mut TenantTransaction,
    tenant_id: Uuid,
) -> Result<(), TenantDbError> {
    transaction
        .notify(&[Change::Cors { tenant: tenant_id }])
        .await
}
