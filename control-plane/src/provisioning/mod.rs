//! Tenant provisioning as a resumable state machine.
//!
//! `catalog_row` (tenant `provisioning`, done by `tenants::service::create`) -> `role_and_schema`
//! -> `template_migrations` -> `data_key` -> `seed_roles` -> `activate` (tenant `active`).
//!
//! Invariants:
//! - Every step is idempotent, so a run interrupted anywhere (crash, killed process, lost
//!   connection) is finished by running again; `provisioning_jobs.last_step` records where
//!   to resume, and re-doing a step that finished but was not recorded is harmless.
//! - One run per tenant at a time: a session advisory lock keyed by the tenant id.
//! - A tenant is only served once `activate` has run; a failed step leaves it `failed` with
//!   the error recorded, for `tenant retry`.
//! - `tenant.create` is audited by the run whose `activate` moved the tenant to `active`
//!   (the `create` that went through, or the `retry` that finished an interrupted or failed
//!   one), and by no other: exactly once per tenant. The event enters the audit outbox in
//!   the activation's transaction, so a process that dies right after that commit does not
//!   lose it: a data-plane node ships it from there.

mod steps;
pub(crate) mod store;

use std::fmt;

use serde_json::json;
use shared::tenant::{Tenant, TenantStatus};
use uuid::Uuid;

use crate::context::ControlPlane;
use crate::error::ControlError;

pub use steps::apply_template;
use steps::StepOutcome;
pub use store::TenantLock;
pub(crate) use store::DEFERRED_DURABILITY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    CatalogRow,
    RoleAndSchema,
    TemplateMigrations,
    DataKey,
    SeedRoles,
    Activate,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::CatalogRow,
        Step::RoleAndSchema,
        Step::TemplateMigrations,
        Step::DataKey,
        Step::SeedRoles,
        Step::Activate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::CatalogRow => "catalog_row",
            Step::RoleAndSchema => "role_and_schema",
            Step::TemplateMigrations => "template_migrations",
            Step::DataKey => "data_key",
            Step::SeedRoles => "seed_roles",
            Step::Activate => "activate",
        }
    }

    pub fn parse(input: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.as_str() == input)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Knobs for a provisioning run.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProvisionOptions {
    /// Stop (as a crash would) right after this step is recorded. For tests and drills of
    /// the resume path; the tenant stays `provisioning`.
    pub interrupt_after: Option<Step>,
}

/// The end of a provisioning run that did not fail.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The tenant as the catalog holds it now.
    pub tenant: Tenant,
    /// Whether this run made the tenant active (and audited `tenant.create`); `false` when it
    /// was active already.
    pub activated: bool,
}

/// Runs the steps after the last recorded one, to `active`.
#[tracing::instrument(skip_all, fields(tenant = %tenant.slug))]
pub async fn run(
    control: &ControlPlane,
    tenant: &Tenant,
    options: ProvisionOptions,
) -> Result<Provisioned, ControlError> {
    let lock = TenantLock::acquire(&control.pool, tenant.id).await?;
    let outcome = run_locked(control, tenant, options).await;
    lock.release().await;
    outcome
}

async fn run_locked(
    control: &ControlPlane,
    tenant: &Tenant,
    options: ProvisionOptions,
) -> Result<Provisioned, ControlError> {
    let client = control.pool.get().await?;
    let last_step = store::last_step(&client, tenant.id).await?;
    drop(client);
    if let Some(step) = last_step.filter(|step| options.interrupt_after == Some(*step)) {
        return Err(ControlError::Interrupted(step));
    }
    let creation = crate::audit::lifecycle_row(
        tenant,
        "tenant.create",
        json!({"plan": tenant.plan}),
        control.clock.now(),
    );
    let mut activated = false;
    for step in Step::ALL.into_iter().filter(|step| Some(*step) > last_step) {
        let started = std::time::Instant::now();
        match steps::run_step(control, tenant, step, &creation).await {
            Ok(outcome) => activated |= outcome == StepOutcome::Activated,
            Err(error) => {
                let message = error.to_string();
                tracing::warn!(%step, error = %message, "provisioning step failed");
                let client = control.pool.get().await?;
                store::record_failure(&client, tenant.id, &message).await?;
                return Err(ControlError::ProvisioningFailed { step, message });
            }
        }
        tracing::debug!(%step, elapsed_ms = started.elapsed().as_millis() as u64, "step done");
        if options.interrupt_after == Some(step) && step != Step::Activate {
            return Err(ControlError::Interrupted(step));
        }
    }
    let client = control.pool.get().await?;
    let tenant = shared::catalog::tenant_by_slug(&client, &tenant.slug)
        .await?
        .ok_or_else(|| ControlError::TenantNotFound(tenant.slug.to_string()))?;
    drop(client);
    if activated {
        // Whichever run activated the tenant writes its creation event (committed to the
        // audit outbox with the activation), so a create that was interrupted and finished by
        // `tenant retry` is audited too, and only once.
        crate::audit::record_outboxed(control, &tenant, creation).await;
    }
    Ok(Provisioned { tenant, activated })
}

/// Finishes an interrupted or failed provisioning of `tenant`. An active tenant has nothing
/// left to do: that is a success (`activated: false`), so a recovery script may retry
/// blindly. Suspended or deleted tenants are refused (`NotProvisioning`).
pub async fn retry(control: &ControlPlane, tenant: &Tenant) -> Result<Provisioned, ControlError> {
    match tenant.status {
        TenantStatus::Provisioning | TenantStatus::Failed => {}
        TenantStatus::Active => {
            return Ok(Provisioned {
                tenant: tenant.clone(),
                activated: false,
            })
        }
        status => return Err(ControlError::NotProvisioning(status)),
    }
    let client = control.pool.get().await?;
    store::mark_retry(&client, tenant.id).await?;
    drop(client);
    run(control, tenant, ProvisionOptions::default()).await
}

/// The recorded state of a tenant's provisioning job, for `tenant show`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct JobState {
    pub last_step: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

pub async fn job_state(
    client: &deadpool_postgres::Object,
    tenant_id: Uuid,
) -> Result<Option<JobState>, ControlError> {
    store::job_state(client, tenant_id).await
}
