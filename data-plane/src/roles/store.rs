//! SQL of the roles admin, in the tenant's schema.

use serde::Serialize;
use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;

/// A role as tenant admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    /// The roles this one includes directly.
    pub includes: Vec<String>,
    pub built_in: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

const VIEW_COLUMNS: &str = "r.name, r.description, r.permissions,
     ARRAY(SELECT included FROM role_includes WHERE role_name = r.name ORDER BY included)
         AS includes,
     r.built_in, r.created_at, r.updated_at";

fn view_from_row(row: &tokio_postgres::Row) -> Result<RoleView, tokio_postgres::Error> {
    Ok(RoleView {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        permissions: row.try_get("permissions")?,
        includes: row.try_get("includes")?,
        built_in: row.try_get("built_in")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Makes role changes in this tenant run one at a time (reads go on), so two concurrent
/// changes cannot each pass the cycle check and together close a cycle.
pub async fn lock_roles(transaction: &mut TenantTransaction) -> Result<(), TenantDbError> {
    transaction
        .query_typed("LOCK TABLE role_includes IN SHARE ROW EXCLUSIVE MODE", &[])
        .await?;
    Ok(())
}

pub async fn list(transaction: &mut TenantTransaction) -> Result<Vec<RoleView>, TenantDbError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM roles r ORDER BY r.built_in DESC, r.name");
    let rows = transaction.query_typed(&sql, &[]).await?;
    Ok(rows.iter().map(view_from_row).collect::<Result<_, _>>()?)
}

pub async fn get(
    transaction: &mut TenantTransaction,
    name: &str,
) -> Result<Option<RoleView>, TenantDbError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM roles r WHERE r.name = $1");
    let rows = transaction
        .query_typed(&sql, &[(&name, Type::TEXT)])
        .await?;
    Ok(rows.first().map(view_from_row).transpose()?)
}

/// Which of `names` are roles of this tenant.
pub async fn existing(
    transaction: &mut TenantTransaction,
    names: &[String],
) -> Result<Vec<String>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT name FROM roles WHERE name = ANY($1)",
            &[(&names, Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("name"))
        .collect::<Result<_, _>>()?)
}

/// Every role reachable from `roles` through inclusion, `roles` themselves included.
pub async fn reached_from(
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
             SELECT role FROM tree",
            &[(&roles, Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("role"))
        .collect::<Result<_, _>>()?)
}

/// The roles that include `name` directly.
pub async fn including(
    transaction: &mut TenantTransaction,
    name: &str,
) -> Result<Vec<String>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT role_name FROM role_includes WHERE included = $1 ORDER BY role_name",
            &[(&name, Type::TEXT)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("role_name"))
        .collect::<Result<_, _>>()?)
}

/// Creates or replaces the custom role `name` with exactly these permissions and inclusions.
pub async fn upsert(
    transaction: &mut TenantTransaction,
    name: &str,
    description: &str,
    permissions: &[String],
    includes: &[String],
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "INSERT INTO roles (name, description, permissions, built_in)
             VALUES ($1, $2, $3, false)
             ON CONFLICT (name) DO UPDATE
             SET description = EXCLUDED.description, permissions = EXCLUDED.permissions,
                 updated_at = now()
             WHERE NOT roles.built_in",
            &[
                (&name, Type::TEXT),
                (&description, Type::TEXT),
                (&permissions, Type::TEXT_ARRAY),
            ],
        )
        .await?;
    transaction
        .query_typed(
            "WITH removed AS (
                 DELETE FROM role_includes WHERE role_name = $1 AND NOT (included = ANY($2)))
             INSERT INTO role_includes (role_name, included)
             SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            &[(&name, Type::TEXT), (&includes, Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(())
}

/// Deletes the custom role `name`; its assignments and inclusions go with it.
pub async fn delete(transaction: &mut TenantTransaction, name: &str) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "DELETE FROM roles WHERE name = $1 AND NOT built_in",
            &[(&name, Type::TEXT)],
        )
        .await?;
    Ok(())
}
