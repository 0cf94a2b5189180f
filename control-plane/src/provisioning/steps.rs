//! The provisioning steps themselves. Each one is idempotent: running it again after it
//! finished (because the run died before recording it) changes nothing.

use deadpool_postgres::Object;
use shared::envelope::DataKey;
use shared::tenant::Tenant;
use shared::tenant_context::{TenantDb, TenantScope};
use tokio_postgres::types::Type;

use super::Step;
use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::roles::BUILT_IN_ROLES;

pub async fn run_step(
    control: &ControlPlane,
    tenant: &Tenant,
    step: Step,
) -> Result<(), ControlError> {
    match step {
        Step::CatalogRow => Ok(()), // written by `create`, before the first run
        Step::RoleAndSchema => role_and_schema(control, tenant).await,
        Step::TemplateMigrations => template_migrations(control, tenant).await,
        Step::DataKey => data_key(control, tenant).await,
        Step::SeedRoles => seed_roles(control, tenant).await,
        Step::Activate => activate(control, tenant).await,
    }
}

/// The tenant's role (no login, no inherited rights), its membership in the data plane's
/// role, and its schema, owned by it.
async fn role_and_schema(control: &ControlPlane, tenant: &Tenant) -> Result<(), ControlError> {
    let client = control.pool.get().await?;
    let role = tenant.role.quoted();
    let role_exists = client
        .query_opt(
            "SELECT 1 FROM pg_roles WHERE rolname = $1",
            &[&tenant.role.as_str()],
        )
        .await?
        .is_some();
    if !role_exists {
        client
            .batch_execute(&format!("CREATE ROLE {role} NOLOGIN NOINHERIT"))
            .await?;
    }
    client
        .batch_execute(&format!(
            "GRANT {role} TO {data_plane};
             CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role};",
            data_plane = control.config.role_prefix.data_plane_role().quoted(),
            schema = tenant.schema.quoted(),
        ))
        .await?;
    Ok(())
}

async fn template_migrations(control: &ControlPlane, tenant: &Tenant) -> Result<(), ControlError> {
    let version = apply_template(control, tenant).await?;
    let client = control.pool.get().await?;
    client
        .execute(
            "UPDATE control.tenants SET template_version = $2, updated_at = now() WHERE id = $1",
            &[&tenant.id, &version],
        )
        .await?;
    Ok(())
}

/// Applies the control plane's template to the tenant's schema on a pooled connection; the
/// connection is detached from the pool when anything fails, since its session role may
/// still be the tenant's.
pub async fn apply_template(control: &ControlPlane, tenant: &Tenant) -> Result<i32, ControlError> {
    let mut client = control.pool.get().await?;
    match control
        .template
        .apply(&mut client, &tenant.schema, &tenant.role)
        .await
    {
        Ok(version) => Ok(version),
        Err(error) => {
            drop(Object::take(client));
            Err(error.into())
        }
    }
}

async fn data_key(control: &ControlPlane, tenant: &Tenant) -> Result<(), ControlError> {
    let client = control.pool.get().await?;
    let exists = client
        .query_opt(
            "SELECT 1 FROM control.tenant_data_keys WHERE tenant_id = $1 AND version = 1",
            &[&tenant.id],
        )
        .await?
        .is_some();
    if exists {
        return Ok(());
    }
    let data_key = DataKey::generate(&control.rng)?;
    let wrapped = control.kek.wrap(&control.rng, &data_key, tenant.id, 1)?;
    client
        .execute(
            "INSERT INTO control.tenant_data_keys (tenant_id, version, kek_id, nonce, wrapped_key)
             VALUES ($1, 1, $2, $3, $4)
             ON CONFLICT (tenant_id, version) DO NOTHING",
            &[
                &tenant.id,
                &wrapped.kek_id,
                &wrapped.nonce,
                &wrapped.ciphertext,
            ],
        )
        .await?;
    Ok(())
}

/// Built-in roles and the tenant profile, written as the tenant's role inside its schema.
async fn seed_roles(control: &ControlPlane, tenant: &Tenant) -> Result<(), ControlError> {
    let tenant_db = TenantDb::new(control.pool.clone());
    let scope = TenantScope::for_tenant(tenant, 30_000);
    let mut transaction = tenant_db.begin(&scope).await?;
    for role in BUILT_IN_ROLES {
        let permissions: Vec<&str> = role.permissions.to_vec();
        transaction
            .query_typed(
                "INSERT INTO roles (name, description, permissions, built_in)
                 VALUES ($1, $2, $3, true)
                 ON CONFLICT (name) DO NOTHING",
                &[
                    (&role.name, Type::TEXT),
                    (&role.description, Type::TEXT),
                    (&permissions, Type::TEXT_ARRAY),
                ],
            )
            .await?;
    }
    transaction
        .query_typed(
            "INSERT INTO tenant_profile (id, display_name) VALUES (1, $1)
             ON CONFLICT (id) DO NOTHING",
            &[(&tenant.name, Type::TEXT)],
        )
        .await?;
    transaction.commit().await?;
    Ok(())
}

async fn activate(control: &ControlPlane, tenant: &Tenant) -> Result<(), ControlError> {
    let mut client = control.pool.get().await?;
    let transaction = client.transaction().await?;
    transaction
        .execute(
            "UPDATE control.tenants SET status = 'active', updated_at = now()
             WHERE id = $1 AND status = 'provisioning'",
            &[&tenant.id],
        )
        .await?;
    shared::notify::tenant_changed(&transaction, tenant.slug.as_str()).await?;
    transaction.commit().await?;
    Ok(())
}
