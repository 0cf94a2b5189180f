//! A user's own sessions: listing them and ending one (the API's `/v1/me/sessions` and the
//! console's sessions page).

use shared::tenant_context::TenantDbError;
use uuid::Uuid;

use super::store::{self, Revoke, SessionView};
use crate::state::DataPlane;
use crate::tenancy::{Principal, RequestContext};

/// The live sessions of `principal`'s user, newest first, theirs marked `current`.
pub async fn list(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
) -> Result<Vec<SessionView>, TenantDbError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let sessions =
        store::list_live(&mut transaction, principal.user_id, principal.session_id).await?;
    transaction.commit().await?;
    Ok(sessions)
}

/// Ends session `session_id` of `principal`'s user; whether there was such a live session.
/// Every node drops it at once (this one without waiting for its own notification).
pub async fn end(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
    session_id: Uuid,
    reason: &str,
) -> Result<bool, TenantDbError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let which = Revoke::One {
        user_id: principal.user_id,
        session_id,
    };
    let ended = store::revoke(&mut transaction, context.tenant.tenant.id, which, reason).await?;
    transaction.commit().await?;
    state
        .sessions
        .forget(context.tenant.tenant.id, session_id)
        .await;
    Ok(ended > 0)
}
