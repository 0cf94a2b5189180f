//! The rules of the CORS settings: a policy is stored only when valid, and every node hears
//! of the change in the transaction that makes it.

use super::{store, CorsError, CorsPolicy};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub async fn policy(state: &DataPlane, context: &RequestContext) -> Result<CorsPolicy, CorsError> {
    Ok(store::load(&state.tenant_db, &context.scope).await?)
}

/// Replaces the tenant's allowed origins with those in `submitted` (JSON as sent).
pub async fn replace_policy(
    state: &DataPlane,
    context: &RequestContext,
    submitted: serde_json::Value,
) -> Result<CorsPolicy, CorsError> {
    let policy = CorsPolicy::parse(submitted)?;
    let tenant_id = context.tenant.tenant.id;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::save(&mut transaction, &policy).await?;
    store::announce_changed(&mut transaction, tenant_id).await?;
    transaction.commit().await?;
    // This node's own notification arrives shortly; do not serve the old policy until then.
    state.cors.invalidate(tenant_id).await;
    Ok(policy)
}
