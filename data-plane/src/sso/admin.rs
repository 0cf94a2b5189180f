//! Tenant admins' management of identity providers (`/v1/admin/sso`): list, read, create,
//! replace, delete. Secrets go in sealed and never come out.

use serde::Serialize;
use shared::tenant_context::TenantTransaction;
use time::OffsetDateTime;
use uuid::Uuid;

use super::settings::{self, DomainBinding, ProviderInput, StoredSettings};
use super::store::{self, NewProvider, ProviderRow};
use super::SsoError;
use crate::authz;
use crate::authz::store as authz_store;
use crate::state::DataPlane;
use crate::tenancy::data_keys::TenantDataKeys;
use crate::tenancy::{Principal, RequestContext};

/// Associated data of a sealed client secret: it opens only for this tenant and provider.
pub fn secret_context(tenant_id: Uuid, provider_id: Uuid) -> Vec<u8> {
    format!("sso-client-secret:{tenant_id}:{provider_id}").into_bytes()
}

/// Opens a provider's client secret.
pub fn open_secret(
    data_keys: &TenantDataKeys,
    tenant_id: Uuid,
    provider: &ProviderRow,
) -> Result<Option<zeroize::Zeroizing<String>>, SsoError> {
    let Some((sealed, version)) = &provider.client_secret else {
        return Ok(None);
    };
    let bytes = data_keys
        .version(*version)?
        .open(&secret_context(tenant_id, provider.id), sealed)?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| SsoError::InvalidConfig("stored client secret is not text".to_owned()))?;
    Ok(Some(zeroize::Zeroizing::new(text)))
}

/// A provider as admins see it.
#[derive(Serialize)]
pub struct ProviderView {
    pub id: Uuid,
    pub name: String,
    pub kind: &'static str,
    pub display_name: String,
    pub provider: settings::ProviderKind,
    pub users: settings::UserSettings,
    pub domains: Vec<DomainBinding>,
    pub has_client_secret: bool,
    pub enabled: bool,
    /// Where users start a sign-in; for SAML also the SP metadata and ACS.
    pub start_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saml_metadata_path: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

async fn view(
    transaction: &mut TenantTransaction,
    provider: ProviderRow,
) -> Result<ProviderView, SsoError> {
    let domains = store::domains_of(transaction, provider.id).await?;
    let kind = provider.settings.provider.name();
    Ok(ProviderView {
        id: provider.id,
        start_path: format!("/v1/auth/sso/{}/start", provider.name),
        saml_metadata_path: (kind == "saml")
            .then(|| format!("/v1/auth/saml/{}/metadata", provider.name)),
        name: provider.name,
        kind,
        display_name: provider.display_name,
        provider: provider.settings.provider,
        users: provider.settings.users,
        domains,
        has_client_secret: provider.client_secret.is_some(),
        enabled: provider.enabled,
        created_at: provider.created_at,
        updated_at: provider.updated_at,
    })
}

pub async fn list(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<Vec<ProviderView>, SsoError> {
    let mut transaction = state.tenant_db.begin(&context.tenant.scope).await?;
    let providers = store::providers(&mut transaction).await?;
    let mut views = Vec::with_capacity(providers.len());
    for provider in providers {
        views.push(view(&mut transaction, provider).await?);
    }
    transaction.commit().await?;
    Ok(views)
}

pub async fn get(
    state: &DataPlane,
    context: &RequestContext,
    name: &str,
) -> Result<ProviderView, SsoError> {
    let mut transaction = state.tenant_db.begin(&context.tenant.scope).await?;
    let provider = store::provider_by_name(&mut transaction, name)
        .await?
        .ok_or(SsoError::ProviderNotFound)?;
    let view = view(&mut transaction, provider).await?;
    transaction.commit().await?;
    Ok(view)
}

/// Who is making a change: an admin (whose permissions bound the roles the provider may
/// grant) or the operator through the control plane (no bound).
pub enum Actor<'a> {
    Admin(&'a Principal),
}

/// Refuses role names that do not exist, `owner` (SSO never makes owners: an IdP compromise
/// must not hand out the tenant), and roles granting more than the admin holds.
async fn check_roles(
    state: &DataPlane,
    context: &RequestContext,
    transaction: &mut TenantTransaction,
    input: &ProviderInput,
    actor: &Actor<'_>,
) -> Result<(), SsoError> {
    let roles = input.roles();
    if roles.iter().any(|role| role == "owner") {
        return Err(SsoError::InvalidConfig(
            "SSO cannot grant the owner role".to_owned(),
        ));
    }
    let existing = store::existing_roles(transaction, &roles).await?;
    let unknown: Vec<String> = roles
        .iter()
        .filter(|role| !existing.contains(role))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(SsoError::UnknownRoles(unknown));
    }
    let Actor::Admin(principal) = actor;
    let held = authz::in_force(state, context, principal)
        .await
        .map_err(|error| SsoError::InvalidInput(error.message().to_owned()))?;
    let wanted = authz_store::role_set_permissions(transaction, &roles).await?;
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
    actor: Actor<'_>,
    input: ProviderInput,
    replace: bool,
) -> Result<ProviderView, SsoError> {
    input.validate()?;
    let domains = settings::normalise_domains(&input.domains)?;
    let tenant_id = context.tenant.tenant.id;
    let now = state.clock.now();
    let stored = StoredSettings {
        provider: input.provider.clone(),
        users: input.users.clone(),
    };
    let settings_json = serde_json::to_value(&stored)
        .map_err(|error| SsoError::InvalidConfig(error.to_string()))?;
    let data_keys = state.data_keys.for_tenant(tenant_id).await?;

    let mut transaction = state.tenant_db.begin(&context.tenant.scope).await?;
    check_roles(state, context, &mut transaction, &input, &actor).await?;
    let existing = store::provider_by_name(&mut transaction, &input.name).await?;
    let provider_id = match (&existing, replace) {
        (Some(_), false) => return Err(SsoError::ProviderExists),
        (None, true) => return Err(SsoError::ProviderNotFound),
        (Some(existing), true) => existing.id,
        (None, false) => Uuid::now_v7(),
    };
    let needs_secret = !matches!(input.provider, settings::ProviderKind::Saml(_));
    let sealed = match (&input.client_secret, needs_secret) {
        (Some(secret), true) => {
            let (version, key) = data_keys.current()?;
            Some((
                key.seal(
                    &state.rng,
                    &secret_context(tenant_id, provider_id),
                    secret.as_bytes(),
                )?,
                version,
            ))
        }
        _ => None,
    };
    // A SAML provider keeps no secret; a replace without a secret keeps the stored one.
    let keep_secret = needs_secret && sealed.is_none();
    let row = NewProvider {
        id: provider_id,
        name: &input.name,
        kind: input.provider.name(),
        display_name: &input.display_name,
        settings: &settings_json,
        client_secret: sealed
            .as_ref()
            .map(|(sealed, version)| (sealed.as_slice(), *version)),
        enabled: input.enabled,
        now,
    };
    if replace {
        store::update_provider(&mut transaction, &row, keep_secret).await?;
    } else if !store::insert_provider(&mut transaction, &row).await? {
        return Err(SsoError::ProviderExists);
    }
    store::set_domains(&mut transaction, provider_id, &domains).await?;
    let saved = store::provider_by_id(&mut transaction, provider_id)
        .await?
        .ok_or(SsoError::ProviderNotFound)?;
    if needs_secret && saved.client_secret.is_none() {
        return Err(SsoError::InvalidConfig(format!(
            "a {} provider needs a client_secret",
            input.provider.name()
        )));
    }
    let view = view(&mut transaction, saved).await?;
    transaction.commit().await?;
    Ok(view)
}

pub async fn delete(
    state: &DataPlane,
    context: &RequestContext,
    name: &str,
) -> Result<(), SsoError> {
    let mut transaction = state.tenant_db.begin(&context.tenant.scope).await?;
    if !store::delete_provider(&mut transaction, name).await? {
        return Err(SsoError::ProviderNotFound);
    }
    transaction.commit().await?;
    Ok(())
}
