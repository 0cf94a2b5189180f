//! Email-domain discovery: which provider a login page should send an address to, and
//! whether the tenant refuses password sign-in for it.

use serde::Serialize;
use shared::email::Email;
use shared::tenant_context::TenantTransaction;

use super::store;
use super::SsoError;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// Which provider signs in an address: `sso` is false (and nothing else is said) when its
/// domain has none.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Discovery {
    pub sso: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Where to send the browser (relative to the tenant's host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_url: Option<String>,
    /// Whether password sign-in is refused for this address.
    pub sso_required: bool,
}

/// The provider bound to the address's domain. Says nothing about whether the address has a
/// user: the answer depends on the domain alone.
pub async fn discover(
    state: &DataPlane,
    context: &RequestContext,
    email: &Email,
) -> Result<Discovery, SsoError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let bound = store::domain_binding(&mut transaction, email.domain()).await?;
    transaction.commit().await?;
    Ok(match bound {
        Some(bound) => Discovery {
            sso: true,
            start_url: Some(format!("/v1/auth/sso/{}/start", bound.provider_name)),
            provider: Some(bound.provider_name),
            kind: Some(bound.kind),
            display_name: Some(bound.display_name),
            sso_required: bound.require_sso,
        },
        None => Discovery {
            sso: false,
            provider: None,
            kind: None,
            display_name: None,
            start_url: None,
            sso_required: false,
        },
    })
}

/// The provider whose domain binding requires SSO for this address, if any (password sign-in
/// checks it in its own transaction).
pub async fn required_provider(
    transaction: &mut TenantTransaction,
    email: &Email,
) -> Result<Option<String>, SsoError> {
    Ok(store::domain_binding(transaction, email.domain())
        .await?
        .filter(|bound| bound.require_sso)
        .map(|bound| bound.provider_name))
}
