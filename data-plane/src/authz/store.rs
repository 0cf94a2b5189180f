//! SQL of the guard: the permissions a user's current roles grant, in the tenant's schema.

use shared::tenant_context::{TenantDb, TenantDbError};
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::tenancy::RequestContext;

/// The permission patterns granted to `user_id` by the roles they hold now; none unless the
/// user is active.
pub async fn effective_permissions(
    db: &TenantDb,
    context: &RequestContext,
    user_id: Uuid,
) -> Result<Vec<String>, TenantDbError> {
    let rows = db
        .query_once(
            &context.tenant.scope,
            "SELECT DISTINCT unnest(r.permissions) FROM user_roles ur
             JOIN roles r ON r.name = ur.role_name
             JOIN users u ON u.id = ur.user_id
             WHERE ur.user_id = $1 AND u.status = 'active'",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}
