//! A tenant's life after creation: changes to its name, plan and status (suspend, resume),
//! finishing an interrupted provisioning, and deletion (crypto-shredding its data key).

use serde::Serialize;
use serde_json::json;
use shared::tenant::{Tenant, TenantSlug, TenantStatus};

use super::{details, export, get, store, ExportSink, TenantDetails, TenantName};
use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::provisioning::{self, TenantLock};
use shared::notify::{notify, Change};

/// Changes to name, plan or status (only `active` <-> `suspended`).
#[derive(Debug, Default)]
pub struct TenantPatch {
    pub name: Option<TenantName>,
    pub plan: Option<String>,
    pub status: Option<TenantStatus>,
}

pub async fn update(
    control: &ControlPlane,
    slug: &TenantSlug,
    patch: TenantPatch,
) -> Result<Tenant, ControlError> {
    let tenant = get(control, slug).await?;
    if let Some(status) = patch.status {
        let allowed = match status {
            TenantStatus::Suspended => tenant.status == TenantStatus::Active,
            TenantStatus::Active => tenant.status == TenantStatus::Suspended,
            _ => false,
        };
        if !allowed && status != tenant.status {
            return Err(ControlError::InvalidTransition {
                from: tenant.status,
                to: status,
            });
        }
    }
    let mut client = control.pool.get().await?;
    if let Some(plan) = &patch.plan {
        if !store::plan_exists(&client, plan).await? {
            return Err(ControlError::UnknownPlan(plan.clone()));
        }
    }
    let transaction = client.transaction().await?;
    store::update_name_and_plan(
        &transaction,
        tenant.id,
        patch.name.as_ref().map(|name| name.0.as_str()),
        patch.plan.as_deref(),
    )
    .await?;
    if let Some(status) = patch.status.filter(|status| *status != tenant.status) {
        let from = [tenant.status];
        if store::set_status(&transaction, tenant.id, &from, status)
            .await?
            .is_none()
        {
            // Changed under us since we read it.
            return Err(ControlError::InvalidTransition {
                from: tenant.status,
                to: status,
            });
        }
    }
    notify(
        &transaction,
        &Change::Tenant {
            slug: slug.as_str().to_owned(),
        },
    )
    .await?;
    transaction.commit().await?;
    drop(client);
    let updated = get(control, slug).await?;
    let action = match patch.status.filter(|status| *status != tenant.status) {
        Some(TenantStatus::Suspended) => "tenant.suspend",
        Some(TenantStatus::Active) => "tenant.resume",
        _ => "tenant.update",
    };
    crate::audit::lifecycle(
        control,
        &updated,
        action,
        json!({"plan": patch.plan, "name_changed": patch.name.is_some()}),
    )
    .await;
    Ok(updated)
}

pub async fn suspend(control: &ControlPlane, slug: &TenantSlug) -> Result<Tenant, ControlError> {
    update(
        control,
        slug,
        TenantPatch {
            status: Some(TenantStatus::Suspended),
            ..Default::default()
        },
    )
    .await
}

pub async fn resume(control: &ControlPlane, slug: &TenantSlug) -> Result<Tenant, ControlError> {
    update(
        control,
        slug,
        TenantPatch {
            status: Some(TenantStatus::Active),
            ..Default::default()
        },
    )
    .await
}

/// The answer to a retry (`tenant retry`, `POST /v1/tenants/{slug}/provision`): what it did,
/// and the tenant's details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetryReport {
    /// `provisioned` (this retry finished the provisioning) or `already_active` (nothing to
    /// do).
    pub outcome: &'static str,
    pub message: String,
    #[serde(flatten)]
    pub details: TenantDetails,
}

/// Finishes an interrupted or failed provisioning; on an active tenant, succeeds doing
/// nothing, so recovery scripts can retry blindly.
pub async fn retry_provisioning(
    control: &ControlPlane,
    slug: &TenantSlug,
) -> Result<RetryReport, ControlError> {
    let tenant = get(control, slug).await?;
    let provisioned = provisioning::retry(control, &tenant).await?;
    let (outcome, message) =
        if !provisioned.activated && provisioned.tenant.status == TenantStatus::Active {
            (
                "already_active",
                format!("tenant {slug} is already active; nothing to do"),
            )
        } else {
            (
                "provisioned",
                format!(
                    "tenant {slug} is {}: provisioning finished",
                    provisioned.tenant.status
                ),
            )
        };
    Ok(RetryReport {
        outcome,
        message,
        details: details(control, slug).await?,
    })
}

/// Deletes a tenant: it stops being served at once (`deleting`), its export is handed to
/// `keep_export` when given (a failure there stops the deletion before anything is
/// dropped), then its schema and role are dropped and its data keys destroyed. Re-running a
/// deletion that stopped half-way finishes it.
pub async fn delete(
    control: &ControlPlane,
    slug: &TenantSlug,
    keep_export: Option<ExportSink<'_>>,
) -> Result<(), ControlError> {
    let tenant = get(control, slug).await?;
    let lock = TenantLock::acquire(&control.pool, tenant.id).await?;
    let outcome = delete_locked(control, &tenant, keep_export).await;
    lock.release().await;
    outcome
}

async fn delete_locked(
    control: &ControlPlane,
    tenant: &Tenant,
    keep_export: Option<ExportSink<'_>>,
) -> Result<(), ControlError> {
    let mut client = control.pool.get().await?;
    let transaction = client.transaction().await?;
    let live = [
        TenantStatus::Provisioning,
        TenantStatus::Failed,
        TenantStatus::Active,
        TenantStatus::Suspended,
        TenantStatus::Deleting,
    ];
    store::set_status(&transaction, tenant.id, &live, TenantStatus::Deleting).await?;
    notify(
        &transaction,
        &Change::Tenant {
            slug: tenant.slug.as_str().to_owned(),
        },
    )
    .await?;
    transaction.commit().await?;

    if let Some(keep_export) = keep_export {
        let exported = export(control, &tenant.slug).await?;
        keep_export(&exported).map_err(|error| ControlError::InvalidInput {
            field: "export",
            message: format!("could not write the export, nothing was deleted: {error}"),
        })?;
    }

    // Recorded while the data key (the chain key's parent) still exists.
    crate::audit::lifecycle(control, tenant, "tenant.delete", json!({})).await;
    // On another cluster, the schema and role go first (a re-run finds them gone), then the
    // catalog's part commits.
    let cluster = control.clusters.of_tenant(control, &client, tenant).await?;
    if cluster.remote {
        let remote = cluster.pool.get().await?;
        store::drop_schema_and_role(&remote, &tenant.schema, &tenant.role).await?;
    }
    let transaction = client.transaction().await?;
    if !cluster.remote {
        store::drop_schema_and_role(&transaction, &tenant.schema, &tenant.role).await?;
    }
    store::forget_keys_and_domains(&transaction, tenant.id).await?;
    store::set_status(
        &transaction,
        tenant.id,
        &[TenantStatus::Deleting],
        TenantStatus::Deleted,
    )
    .await?;
    notify(
        &transaction,
        &Change::Tenant {
            slug: tenant.slug.as_str().to_owned(),
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(())
}
