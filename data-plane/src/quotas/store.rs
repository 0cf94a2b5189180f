//! SQL of the storage quotas, run in the tenant's transaction (so only ever in the tenant's
//! own schema).

use shared::tenant_context::{TenantDbError, TenantTransaction};

/// Takes the tenant's user-seat lock until the transaction ends. A transaction-scoped
/// advisory lock per tenant schema: creations of one tenant queue here, other tenants' do not
/// (a hash collision only makes two tenants share a queue).
pub async fn lock_user_seats(transaction: &mut TenantTransaction) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "SELECT pg_advisory_xact_lock(hashtextextended('tenantry.user_seats.' || current_schema(), 0))",
            &[],
        )
        .await?;
    Ok(())
}

/// How many user rows the tenant has, whatever their status.
pub async fn count_users(transaction: &mut TenantTransaction) -> Result<i64, TenantDbError> {
    let rows = transaction
        .query_typed("SELECT count(*) AS users FROM users", &[])
        .await?;
    match rows.first() {
        Some(row) => Ok(row.try_get("users")?),
        None => Ok(0),
    }
}
