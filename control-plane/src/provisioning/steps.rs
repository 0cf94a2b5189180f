//! The provisioning steps themselves. Each one is idempotent (running it again after it
//! finished changes nothing) and records itself as done in the same transaction as its work,
//! sent as one pipelined message: a step costs about one round trip.

use serde_json::json;
use shared::db::{pipelined_transaction, Typed};
use shared::envelope::DataKey;
use shared::events::rows::AuditRow;
use shared::notify::{Change, Notifications, NOTIFY};
use shared::tenant::Tenant;
use shared::tenant_context::tenant_settings;
use tokio_postgres::types::Type;

use super::Step;
use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::roles::BUILT_IN_ROLES;

/// Steps before `activate` commit without waiting for their WAL flush. A crash can lose such
/// a commit, but only together with every later one (the WAL is sequential), and every step
/// is idempotent, so a re-run redoes what was lost. `activate` commits durably, which flushes
/// everything before it: a tenant reported `active` is on disk. Each flush costs several
/// milliseconds on ordinary disks, most of a provisioning's time otherwise.
pub(crate) const DEFERRED_DURABILITY: &str = "SET LOCAL synchronous_commit TO off";

const RECORD_STEP: &str = "UPDATE control.provisioning_jobs
     SET last_step = $2, state = $3, last_error = NULL, updated_at = now()
     WHERE tenant_id = $1";

/// What running a step changed that the caller must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Done,
    /// `activate` moved the tenant from `provisioning` to `active`: this run, and no other,
    /// finished the tenant (a re-run of `activate` finds it active and changes nothing).
    Activated,
}

/// `activate` in one statement: the tenant becomes active and, only if it did, its creation
/// event enters the audit outbox, in the same transaction.
const ACTIVATE: &str = "WITH activated AS (
         UPDATE control.tenants SET status = 'active', updated_at = now()
         WHERE id = $1 AND status = 'provisioning'
         RETURNING id)
     INSERT INTO control.audit_outbox (event_id, tenant_id, event)
     SELECT $2::uuid, id, $3 FROM activated
     RETURNING event_id";

/// Runs `step` for `tenant`. `creation` is the tenant's `tenant.create` event, which
/// `activate` commits to the audit outbox together with the activation.
pub async fn run_step(
    control: &ControlPlane,
    tenant: &Tenant,
    step: Step,
    creation: &AuditRow,
) -> Result<StepOutcome, ControlError> {
    let client = control.pool.get().await?;
    let state = if step == Step::Activate {
        "done"
    } else {
        "running"
    };
    let step_name = step.as_str();
    let record: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 3] = [
        (&tenant.id, Type::UUID),
        (&step_name, Type::TEXT),
        (&state, Type::TEXT),
    ];
    let record = Typed::new(RECORD_STEP, &record);
    match step {
        // Written by `create`, with the job, before the first run.
        Step::CatalogRow => Ok(StepOutcome::Done),

        // The tenant's role (no login, no inherited rights), its membership in the data
        // plane's role, and its schema, owned by it.
        Step::RoleAndSchema => {
            let role = tenant.role.quoted();
            let ddl = format!(
                "{DEFERRED_DURABILITY};
                 DO $$ BEGIN CREATE ROLE {role} NOLOGIN NOINHERIT;
                   EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                 GRANT {role} TO {data_plane};
                 CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}",
                data_plane = control.config.role_prefix.data_plane_role().quoted(),
                schema = tenant.schema.quoted(),
            );
            pipelined_transaction(&client, &ddl, &[record]).await?;
            Ok(StepOutcome::Done)
        }

        Step::TemplateMigrations => {
            let version = control
                .template
                .apply_deferred(&client, &tenant.schema, &tenant.role)
                .await?;
            pipelined_transaction(
                &client,
                DEFERRED_DURABILITY,
                &[
                    Typed::new(
                        "UPDATE control.tenants SET template_version = $2, updated_at = now()
                         WHERE id = $1",
                        &[(&tenant.id, Type::UUID), (&version, Type::INT4)],
                    ),
                    record,
                ],
            )
            .await?;
            Ok(StepOutcome::Done)
        }

        // A new key every time the step runs; only the first is ever stored.
        Step::DataKey => {
            let data_key = DataKey::generate(&control.rng)?;
            let wrapped = control.kek.wrap(&control.rng, &data_key, tenant.id, 1)?;
            pipelined_transaction(
                &client,
                DEFERRED_DURABILITY,
                &[
                    Typed::new(
                        "INSERT INTO control.tenant_data_keys
                             (tenant_id, version, kek_id, nonce, wrapped_key)
                         VALUES ($1, 1, $2, $3, $4)
                         ON CONFLICT (tenant_id, version) DO NOTHING",
                        &[
                            (&tenant.id, Type::UUID),
                            (&wrapped.kek_id, Type::TEXT),
                            (&wrapped.nonce, Type::BYTEA),
                            (&wrapped.ciphertext, Type::BYTEA),
                        ],
                    ),
                    record,
                ],
            )
            .await?;
            Ok(StepOutcome::Done)
        }

        // Built-in roles and the tenant profile, written as the tenant's role inside its
        // schema; then back to the control plane's role to record the step.
        Step::SeedRoles => {
            let admin_email: Option<String> = client
                .query_typed(
                    "SELECT admin_email FROM control.provisioning_jobs WHERE tenant_id = $1",
                    &[(&tenant.id, Type::UUID)],
                )
                .await?
                .first()
                .and_then(|row| row.get(0));
            let admin_id = uuid::Uuid::now_v7();
            let roles = json!(BUILT_IN_ROLES
                .iter()
                .map(|role| json!({
                    "name": role.name,
                    "description": role.description,
                    "permissions": role.permissions,
                }))
                .collect::<Vec<_>>());
            pipelined_transaction(
                &client,
                &format!(
                    "{DEFERRED_DURABILITY}; {}",
                    tenant_settings(&tenant.schema, &tenant.role)
                ),
                &[
                    Typed::new(
                        "INSERT INTO roles (name, description, permissions, built_in)
                         SELECT r->>'name', r->>'description',
                                ARRAY(SELECT jsonb_array_elements_text(r->'permissions')), true
                         FROM jsonb_array_elements($1) AS r
                         ON CONFLICT (name) DO NOTHING",
                        &[(&roles, Type::JSONB)],
                    ),
                    Typed::new(
                        "INSERT INTO tenant_profile (id, display_name) VALUES (1, $1)
                         ON CONFLICT (id) DO NOTHING",
                        &[(&tenant.name, Type::TEXT)],
                    ),
                    // The first admin, invited (no password until activation), as owner.
                    Typed::new(
                        "WITH admin AS (
                             INSERT INTO users (id, email, status)
                             SELECT $1, $2, 'invited' WHERE $2::text IS NOT NULL
                             ON CONFLICT (email) DO NOTHING
                             RETURNING id)
                         INSERT INTO user_roles (user_id, role_name) SELECT id, 'owner' FROM admin",
                        &[(&admin_id, Type::UUID), (&admin_email, Type::TEXT)],
                    ),
                    Typed::new("SELECT set_config('role', 'none', true)", &[]),
                    record,
                ],
            )
            .await?;
            Ok(StepOutcome::Done)
        }

        Step::Activate => {
            let event_id = creation.event_id.as_str();
            // As a data-plane node would ship it if this process died before delivering it:
            // the change is known to have committed (see `shared::events::outbox`).
            let mut outboxed = creation.clone();
            outboxed.result = shared::events::outbox::RECOVERED_RESULT.to_owned();
            let event = serde_json::to_value(&outboxed).unwrap_or(serde_json::Value::Null);
            let announce = Notifications::new(&[Change::Tenant {
                slug: tenant.slug.as_str().to_owned(),
            }]);
            let results = pipelined_transaction(
                &client,
                "",
                &[
                    Typed::new(
                        ACTIVATE,
                        &[
                            (&tenant.id, Type::UUID),
                            (&event_id, Type::TEXT),
                            (&event, Type::JSONB),
                        ],
                    ),
                    Typed::new(NOTIFY, &announce.params()),
                    record,
                ],
            )
            .await?;
            let flipped = results.first().is_some_and(|rows| !rows.is_empty());
            Ok(if flipped {
                StepOutcome::Activated
            } else {
                StepOutcome::Done
            })
        }
    }
}

/// Applies the control plane's template to the tenant's schema (used by roll-outs too).
pub async fn apply_template(control: &ControlPlane, tenant: &Tenant) -> Result<i32, ControlError> {
    let client = control.pool.get().await?;
    Ok(control
        .template
        .apply(&client, &tenant.schema, &tenant.role)
        .await?)
}
