//! SQL of the usage figures, in the tenant's schema.

use shared::tenant_context::{TenantDbError, TenantTransaction};

/// The tenant's users, any status.
pub async fn count_users(transaction: &mut TenantTransaction) -> Result<i64, TenantDbError> {
    let rows = transaction
        .query_typed("SELECT count(*) AS users FROM users", &[])
        .await?;
    match rows.first() {
        Some(row) => Ok(row.try_get("users")?),
        None => Ok(0),
    }
}
