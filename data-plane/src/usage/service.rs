//! What the tenant uses of each quota.

use serde::Serialize;
use shared::tenant_context::TenantDbError;

use super::store;
use crate::api_keys::store as api_keys_store;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// One quota: how much is used and the limit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Metered {
    pub used: i64,
    pub limit: i64,
}

/// The tenant's usage against its quotas.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// Every user of the tenant, whatever their status (invited and disabled users hold a
    /// seat too), against `max_users`.
    pub users: Metered,
    /// Keys neither revoked nor expired, against `max_api_keys`.
    pub api_keys: Metered,
    /// Bytes of the tenant's records (each record's JSON), against `max_storage_bytes`.
    pub storage_bytes: Metered,
}

pub async fn usage(state: &DataPlane, context: &RequestContext) -> Result<Usage, TenantDbError> {
    let quotas = &context.tenant.quotas;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let users = store::count_users(&mut transaction).await?;
    let api_keys = api_keys_store::count_live(&mut transaction, state.clock.now()).await?;
    let storage_bytes = crate::records::store::storage_used(&mut transaction).await?;
    transaction.commit().await?;
    Ok(Usage {
        users: Metered {
            used: users,
            limit: quotas.max_users,
        },
        api_keys: Metered {
            used: api_keys,
            limit: quotas.max_api_keys,
        },
        storage_bytes: Metered {
            used: storage_bytes,
            limit: quotas.max_storage_bytes,
        },
    })
}
