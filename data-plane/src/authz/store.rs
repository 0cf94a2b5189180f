//! SQL of the guard, in the tenant's schema: what a user's role assignments grant (roles'
//! inclusions resolved), what a set of roles grants, and the notification that makes every
//! node forget cached permissions.

use shared::notify::Change;
use shared::tenant_context::{TenantDb, TenantDbError, TenantTransaction};
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::cache::EffectivePermissions;
use crate::tenancy::RequestContext;

/// Every role a user holds, directly or through inclusion, each with the conditions of the
/// assignment it came through, and their permission patterns. Nothing unless the user is
/// active. `UNION` (not `UNION ALL`) ends the recursion even on a cycle.
const USER_GRANTS: &str = "WITH RECURSIVE held (role, conditions) AS (
         SELECT ur.role_name, ur.conditions FROM user_roles ur
         JOIN users u ON u.id = ur.user_id
         WHERE ur.user_id = $1 AND u.status = 'active'
       UNION
         SELECT ri.included, held.conditions FROM held
         JOIN role_includes ri ON ri.role_name = held.role
     )
     SELECT DISTINCT held.conditions, p.permission
     FROM held JOIN roles r ON r.name = held.role
     CROSS JOIN LATERAL unnest(r.permissions) AS p (permission)";

/// What `user_id`'s assignments grant now.
pub async fn effective_permissions(
    db: &TenantDb,
    context: &RequestContext,
    user_id: Uuid,
) -> Result<EffectivePermissions, TenantDbError> {
    let rows = db
        .query_once(&context.scope, USER_GRANTS, &[(&user_id, Type::UUID)])
        .await?;
    let grants = rows
        .iter()
        .map(|row| Ok((row.try_get("conditions")?, row.try_get("permission")?)))
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    Ok(EffectivePermissions::from_grants(grants))
}

/// The permission patterns `roles` grant, their inclusions resolved.
pub async fn role_set_permissions(
    transaction: &mut TenantTransaction,
    roles: &[String],
) -> Result<Vec<String>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "WITH RECURSIVE tree (role) AS (
                 SELECT unnest($1::text[])
               UNION
                 SELECT ri.included FROM tree JOIN role_includes ri ON ri.role_name = tree.role
             )
             SELECT DISTINCT unnest(r.permissions) AS permission
             FROM tree JOIN roles r ON r.name = tree.role",
            &[(&roles, Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("permission"))
        .collect::<Result<_, _>>()?)
}

/// Tells every node, when the transaction commits, that cached permissions are stale: one
/// user's (`Some`), or every user's of the tenant (`None`, after a role changed).
pub async fn notify_changed(
    transaction: &mut TenantTransaction,
    tenant_id: Uuid,
    user_id: Option<Uuid>,
) -> Result<(), TenantDbError> {
    let change = match user_id {
        Some(user) => Change::Permissions {
            tenant: tenant_id,
            user,
        },
        None => Change::TenantPermissions { tenant: tenant_id },
    };
    transaction.notify(&[change]).await
}
