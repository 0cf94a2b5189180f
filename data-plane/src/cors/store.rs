//! SQL of the CORS settings, in the tenant's `settings` table.

use shared::notify::Change;
use shared::tenant_context::{TenantDb, TenantDbError, TenantScope, TenantTransaction};
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::{CorsPolicy, SETTINGS_KEY};
use crate::settings::store as settings;

/// The stored policy; the empty one (no origin allowed) when none is stored.
pub async fn load(tenant_db: &TenantDb, scope: &TenantScope) -> Result<CorsPolicy, TenantDbError> {
    let rows = tenant_db
        .query_once(
            scope,
            settings::SELECT_SETTING,
            &[(&SETTINGS_KEY, Type::TEXT)],
        )
        .await?;
    settings::decode(&rows)
}

pub async fn save(
    transaction: &mut TenantTransaction,
    policy: &CorsPolicy,
) -> Result<(), TenantDbError> {
    settings::write(transaction, SETTINGS_KEY, policy).await
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
