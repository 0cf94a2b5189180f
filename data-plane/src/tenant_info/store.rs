//! SQL of the tenant info endpoint, run in the tenant's own schema.

use shared::tenant_context::{TenantDb, TenantDbError};
use tokio_postgres::types::Type;

use crate::tenancy::RequestContext;

/// The tenant's display name from its own `tenant_profile` row (primary-key read).
pub async fn display_name(
    db: &TenantDb,
    context: &RequestContext,
) -> Result<Option<String>, TenantDbError> {
    let rows = db
        .query_once(
            &context.scope,
            "SELECT display_name FROM tenant_profile WHERE id = $1",
            &[(&1i32, Type::INT4)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(row.try_get("display_name")?)),
        None => Ok(None),
    }
}
