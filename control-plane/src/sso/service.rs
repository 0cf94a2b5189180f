//! Provider changes in the tenant's schema, as the tenant's role (the control plane's login
//! may `SET ROLE` to any tenant role), with the secret sealed by the tenant's current data key.

use shared::envelope::DataKey;
use shared::sso::providers::{self, ProviderView, Sealing};
use shared::sso::settings::ProviderInput;
use shared::tenant::{Tenant, TenantSlug, TenantStatus};
use shared::tenant_context::{TenantDb, TenantScope, TenantTransaction};

use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::tenants::service;

/// Providers belong to tenants that have a schema and are served (or may be again).
async fn live_tenant(control: &ControlPlane, slug: &TenantSlug) -> Result<Tenant, ControlError> {
    let tenant = service::get(control, slug).await?;
    match tenant.status {
        TenantStatus::Active | TenantStatus::Suspended => Ok(tenant),
        _ => Err(ControlError::TenantNotFound(slug.to_string())),
    }
}

async fn begin(control: &ControlPlane, tenant: &Tenant) -> Result<TenantTransaction, ControlError> {
    let cluster = {
        let catalog = control.pool.get().await?;
        control
            .clusters
            .of_tenant(control, &catalog, tenant)
            .await?
    };
    Ok(TenantDb::new(cluster.pool)
        .begin(&TenantScope::for_tenant(tenant))
        .await?)
}

/// The tenant's newest data key, unwrapped with the KEK.
async fn current_data_key(
    control: &ControlPlane,
    tenant: &Tenant,
) -> Result<(i32, DataKey), ControlError> {
    let client = control.pool.get().await?;
    let (version, wrapped) = shared::catalog::wrapped_data_keys(&client, tenant.id)
        .await?
        .pop()
        .ok_or_else(|| ControlError::TenantNotFound(tenant.slug.to_string()))?;
    Ok((
        version,
        control.kek.unwrap_key(&wrapped, tenant.id, version)?,
    ))
}

pub async fn list(
    control: &ControlPlane,
    slug: &TenantSlug,
) -> Result<Vec<ProviderView>, ControlError> {
    let tenant = live_tenant(control, slug).await?;
    let mut transaction = begin(control, &tenant).await?;
    let views = providers::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(views)
}

/// Adds a provider (the same JSON as `POST /v1/admin/sso`).
pub async fn add(
    control: &ControlPlane,
    slug: &TenantSlug,
    input: &ProviderInput,
) -> Result<ProviderView, ControlError> {
    let mut input = input.clone();
    input.fetch_saml_metadata(&control.egress).await?;
    let input = &input;
    input.validate()?;
    let tenant = live_tenant(control, slug).await?;
    let (key_version, data_key) = current_data_key(control, &tenant).await?;
    let mut transaction = begin(control, &tenant).await?;
    let view = providers::save(
        &mut transaction,
        input,
        false,
        Sealing {
            tenant_id: tenant.id,
            key_version,
            data_key: &data_key,
            rng: &control.rng,
            now: control.clock.now(),
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(view)
}

pub async fn remove(
    control: &ControlPlane,
    slug: &TenantSlug,
    name: &str,
) -> Result<(), ControlError> {
    let tenant = live_tenant(control, slug).await?;
    let mut transaction = begin(control, &tenant).await?;
    providers::delete(&mut transaction, name).await?;
    transaction.commit().await?;
    Ok(())
}
