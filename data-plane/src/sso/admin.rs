//! Tenant admins' management of identity providers (`/v1/admin/sso`): the shared rules of
//! `shared::sso::providers`, plus the admin's bound: a provider may not grant roles with
//! permissions the admin does not hold (no escalation through an IdP).

use shared::sso::providers::{self, ProviderView, Sealing};
use shared::sso::secret_context;
use shared::sso::settings::ProviderInput;
use shared::tenant_context::TenantTransaction;

use super::store::ProviderRow;
use super::SsoError;
use crate::authz;
use crate::authz::store as authz_store;
use crate::state::DataPlane;
use crate::tenancy::{Principal, RequestContext};

/// Opens a provider's sealed credential: its client secret, or the key of ours it signs with
/// (`shared::sso::settings::OwnKey`: a `private_key_jwt` key, a SAML key and certificate).
pub async fn open_credential(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
) -> Result<Option<zeroize::Zeroizing<String>>, SsoError> {
    let Some((sealed, version)) = &provider.client_secret else {
        return Ok(None);
    };
    let tenant_id = context.tenant.tenant.id;
    let data_keys = state.data_keys.for_tenant(tenant_id).await?;
    let bytes = data_keys
        .version(*version)?
        .open(&secret_context(tenant_id, provider.id), sealed)?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| SsoError::InvalidConfig("stored client secret is not text".to_owned()))?;
    Ok(Some(zeroize::Zeroizing::new(text)))
}

pub async fn list(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<Vec<ProviderView>, SsoError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let views = providers::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(views)
}

pub async fn get(
    state: &DataPlane,
    context: &RequestContext,
    name: &str,
) -> Result<ProviderView, SsoError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let view = providers::get(&mut transaction, name).await?;
    transaction.commit().await?;
    Ok(view)
}

/// Refuses roles granting more than the admin holds (`held`: their permissions in force for
/// this request, loaded before the transaction began).
async fn check_escalation(
    transaction: &mut TenantTransaction,
    input: &ProviderInput,
    held: &[String],
) -> Result<(), SsoError> {
    let wanted = authz_store::role_set_permissions(transaction, &input.roles()).await?;
    let held: Vec<&str> = held.iter().map(String::as_str).collect();
    let missing = authz::covered(&held, &wanted);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SsoError::Escalation(
            missing.into_iter().map(str::to_owned).collect(),
        ))
    }
}

/// Creates a provider (`replace` false) or replaces the one named `input.name`.
pub async fn save(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
    mut input: ProviderInput,
    replace: bool,
) -> Result<ProviderView, SsoError> {
    input.fetch_saml_metadata(&state.egress).await?;
    input.validate()?;
    let tenant_id = context.tenant.tenant.id;
    let data_keys = state.data_keys.for_tenant(tenant_id).await?;
    let (key_version, data_key) = data_keys.current()?;
    // Loaded before the transaction: a permission lookup takes a connection of its own, and a
    // failed one is the database's fault (503), not the request's.
    let held = authz::in_force(state, context, principal).await?;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    providers::check_roles(&mut transaction, &input).await?;
    check_escalation(&mut transaction, &input, &held).await?;
    let view = providers::save(
        &mut transaction,
        &input,
        replace,
        Sealing {
            tenant_id,
            key_version,
            data_key,
            rng: &state.rng,
            now: state.clock.now(),
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(view)
}

pub async fn delete(
    state: &DataPlane,
    context: &RequestContext,
    name: &str,
) -> Result<(), SsoError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    providers::delete(&mut transaction, name).await?;
    transaction.commit().await?;
    Ok(())
}
