//! The provisioning steps themselves: what each one makes (keys, the seed, the creation
//! event) and which store function writes it. Each step is idempotent (running it again after
//! it finished changes nothing) and records itself as done in the same transaction as its
//! work (see `store`): a step costs about one round trip.

use serde_json::json;
use shared::envelope::DataKey;
use shared::events::rows::AuditRow;
use shared::tenant::Tenant;

use super::store::{self, Seed, StepRecord};
use super::Step;
use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::roles::BUILT_IN_ROLES;

/// What running a step changed that the caller must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Done,
    /// `activate` moved the tenant from `provisioning` to `active`: this run, and no other,
    /// finished the tenant (a re-run of `activate` finds it active and changes nothing).
    Activated,
}

/// Runs `step` for `tenant`. `creation` is the tenant's `tenant.create` event, which
/// `activate` commits to the audit outbox together with the activation.
pub async fn run_step(
    control: &ControlPlane,
    tenant: &Tenant,
    step: Step,
    creation: &AuditRow,
) -> Result<StepOutcome, ControlError> {
    let client = control.pool.get().await?;
    // On the catalog's cluster a step's work and its record commit together. On another, the
    // work commits there first and the record follows in the catalog: a crash between the two
    // re-runs the step, which changes nothing the second time.
    // Only these steps work in the tenant's schema; the others write the catalog alone.
    let remote = match step {
        Step::RoleAndSchema | Step::TemplateMigrations | Step::SeedRoles => {
            let cluster = control.clusters.of_tenant(control, &client, tenant).await?;
            if cluster.remote {
                Some(cluster.pool.get().await?)
            } else {
                None
            }
        }
        Step::CatalogRow | Step::DataKey | Step::Activate => None,
    };
    let here = remote.as_ref().unwrap_or(&client);
    let state = if step == Step::Activate {
        "done"
    } else {
        "running"
    };
    let record = StepRecord {
        tenant_id: tenant.id,
        step: step.as_str(),
        state,
    };
    match step {
        // Written by `create`, with the job, before the first run.
        Step::CatalogRow => Ok(StepOutcome::Done),

        Step::RoleAndSchema => {
            let data_plane_role = control.config.role_prefix.data_plane_role();
            let together = remote.is_none().then_some(&record);
            store::create_role_and_schema(here, tenant, &data_plane_role, together).await?;
            if remote.is_some() {
                store::record_step(&client, &record).await?;
            }
            Ok(StepOutcome::Done)
        }

        Step::TemplateMigrations => {
            let version = control
                .template
                .apply_deferred(here, &tenant.schema, &tenant.role)
                .await?;
            store::record_template_version(&client, tenant.id, version, &record).await?;
            Ok(StepOutcome::Done)
        }

        // A new key every time the step runs; only the first is ever stored.
        Step::DataKey => {
            let data_key = DataKey::generate(&control.rng)?;
            let wrapped = control.kek.wrap(&control.rng, &data_key, tenant.id, 1)?;
            store::insert_first_data_key(&client, tenant.id, &wrapped, &record).await?;
            Ok(StepOutcome::Done)
        }

        // Built-in roles, the tenant profile and the first admin (if the job names one).
        Step::SeedRoles => {
            let admin_email = store::admin_email(&client, tenant.id).await?;
            let roles = json!(BUILT_IN_ROLES
                .iter()
                .map(|role| json!({
                    "name": role.name,
                    "description": role.description,
                    "permissions": role.permissions,
                }))
                .collect::<Vec<_>>());
            let seed = Seed {
                roles: &roles,
                admin_id: uuid::Uuid::now_v7(),
                admin_email: admin_email.as_deref(),
            };
            // The last step on another cluster commits durably: `activate`'s flush in the
            // catalog does not flush this server's earlier steps.
            let together = remote.is_none().then_some(&record);
            store::seed_tenant(here, tenant, &seed, together, remote.is_some()).await?;
            if remote.is_some() {
                store::record_step(&client, &record).await?;
            }
            Ok(StepOutcome::Done)
        }

        Step::Activate => {
            let event_id = creation.event_id.as_str();
            // As a data-plane node would ship it if this process died before delivering it:
            // the change is known to have committed (see `shared::events::outbox`).
            let mut outboxed = creation.clone();
            outboxed.result = shared::events::outbox::RECOVERED_RESULT.to_owned();
            let event = serde_json::to_value(&outboxed).unwrap_or(serde_json::Value::Null);
            let flipped = store::activate(&client, tenant, event_id, &event, &record).await?;
            Ok(if flipped {
                StepOutcome::Activated
            } else {
                StepOutcome::Done
            })
        }
    }
}

/// Applies the control plane's template to the tenant's schema, on its cluster (used by
/// roll-outs too).
pub async fn apply_template(control: &ControlPlane, tenant: &Tenant) -> Result<i32, ControlError> {
    let client = control.clusters.client_of(control, tenant).await?;
    Ok(control
        .template
        .apply(&client, &tenant.schema, &tenant.role)
        .await?)
}
