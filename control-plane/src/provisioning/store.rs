//! SQL of the provisioning state machine: the job row, the per-tenant lock, and each step's
//! work. Every step function runs its work and records the step in one pipelined
//! transaction (one round trip), so a step is done exactly when its work is.

use deadpool_postgres::GenericClient;
use deadpool_postgres::{Object, Pool};
use serde_json::Value;
use shared::db::{pipelined_transaction, Typed};
use shared::envelope::WrappedKey;
use shared::notify::{Change, Notifications, NOTIFY};
use shared::tenant::{PgIdentifier, Tenant};
use shared::tenant_context::tenant_settings;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::{JobState, Step};
use crate::error::ControlError;

pub async fn last_step(client: &Object, tenant_id: Uuid) -> Result<Option<Step>, ControlError> {
    let rows = client
        .query_typed(
            "SELECT last_step FROM control.provisioning_jobs WHERE tenant_id = $1",
            &[(&tenant_id, Type::UUID)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Step::parse(row.try_get::<_, &str>("last_step")?)),
        None => Ok(None),
    }
}

pub async fn record_failure(
    client: &Object,
    tenant_id: Uuid,
    message: &str,
) -> Result<(), ControlError> {
    client.batch_execute("BEGIN").await?;
    let outcome = async {
        client
            .execute(
                "UPDATE control.provisioning_jobs
                 SET state = 'failed', last_error = $2, updated_at = now()
                 WHERE tenant_id = $1",
                &[&tenant_id, &message],
            )
            .await?;
        client
            .execute(
                "UPDATE control.tenants SET status = 'failed', updated_at = now()
                 WHERE id = $1 AND status = 'provisioning'",
                &[&tenant_id],
            )
            .await?;
        Ok::<_, tokio_postgres::Error>(())
    }
    .await;
    client
        .batch_execute(if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        })
        .await?;
    Ok(outcome?)
}

/// Marks a new attempt. A job that finished meanwhile (another run activated the tenant
/// after the caller read it) stays `done`.
pub async fn mark_retry(client: &Object, tenant_id: Uuid) -> Result<(), ControlError> {
    client
        .execute(
            "UPDATE control.tenants SET status = 'provisioning', updated_at = now()
             WHERE id = $1 AND status = 'failed'",
            &[&tenant_id],
        )
        .await?;
    client
        .execute(
            "UPDATE control.provisioning_jobs
             SET state = 'running', attempts = attempts + 1, updated_at = now()
             WHERE tenant_id = $1 AND state <> 'done'",
            &[&tenant_id],
        )
        .await?;
    Ok(())
}

pub async fn job_state(client: &Object, tenant_id: Uuid) -> Result<Option<JobState>, ControlError> {
    let row = client
        .query_opt(
            "SELECT last_step, state, attempts, last_error
             FROM control.provisioning_jobs WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(JobState {
            last_step: row.try_get("last_step")?,
            state: row.try_get("state")?,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
        })),
        None => Ok(None),
    }
}

/// A session-level advisory lock on one tenant, held on its own pooled connection for the
/// length of a provisioning or deletion run. If the process dies the connection closes and
/// Postgres releases the lock; if the holder is dropped without `release` (a cancelled
/// request), the connection is detached from the pool and closed, which releases it too.
pub struct TenantLock {
    client: Option<Object>,
    key: i64,
}

fn lock_key(tenant_id: Uuid) -> i64 {
    let bytes = tenant_id.as_bytes();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(first)
}

impl TenantLock {
    pub async fn acquire(pool: &Pool, tenant_id: Uuid) -> Result<Self, ControlError> {
        let client = pool.get().await?;
        let key = lock_key(tenant_id);
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1) AS locked", &[&key])
            .await?
            .try_get("locked")?;
        if !locked {
            return Err(ControlError::Busy);
        }
        Ok(Self {
            client: Some(client),
            key,
        })
    }

    pub async fn release(mut self) {
        if let Some(client) = self.client.take() {
            if client
                .query_one("SELECT pg_advisory_unlock($1)", &[&self.key])
                .await
                .is_err()
            {
                drop(Object::take(client));
            }
        }
    }
}

impl Drop for TenantLock {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // The lock is still held by this session: never hand it to another user.
            drop(Object::take(client));
        }
    }
}

/// Steps before `activate` commit without waiting for their WAL flush. A crash can lose such
/// a commit, but only together with every later one (the WAL is sequential), and every step
/// is idempotent, so a re-run redoes what was lost. `activate` commits durably, which flushes
/// everything before it: a tenant reported `active` is on disk. Each flush costs several
/// milliseconds on ordinary disks, most of a provisioning's time otherwise.
pub(crate) const DEFERRED_DURABILITY: &str = "SET LOCAL synchronous_commit TO off";

const RECORD_STEP: &str = "UPDATE control.provisioning_jobs
     SET last_step = $2, state = $3, last_error = NULL, updated_at = now()
     WHERE tenant_id = $1";

/// The job row's new state once a step's work commits.
pub struct StepRecord<'a> {
    pub tenant_id: Uuid,
    pub step: &'a str,
    pub state: &'a str,
}

impl StepRecord<'_> {
    fn params(&self) -> [(&(dyn ToSql + Sync), Type); 3] {
        [
            (&self.tenant_id, Type::UUID),
            (&self.step, Type::TEXT),
            (&self.state, Type::TEXT),
        ]
    }
}

/// Records a step whose work committed on another cluster than the catalog's.
pub async fn record_step(client: &Object, record: &StepRecord<'_>) -> Result<(), ControlError> {
    let record = record.params();
    pipelined_transaction(
        client,
        DEFERRED_DURABILITY,
        &[Typed::new(RECORD_STEP, &record)],
    )
    .await?;
    Ok(())
}

/// The tenant's role (no login, no inherited rights), its membership in the data plane's
/// role, and its schema, owned by it. Names are quoted identifiers from validated slugs.
/// With `record`, the step is recorded in the same transaction (the tenant is on the
/// catalog's cluster).
pub async fn create_role_and_schema(
    client: &Object,
    tenant: &Tenant,
    data_plane_role: &PgIdentifier,
    record: Option<&StepRecord<'_>>,
) -> Result<(), ControlError> {
    let role = tenant.role.quoted();
    let ddl = format!(
        "{DEFERRED_DURABILITY};
         DO $$ BEGIN CREATE ROLE {role} NOLOGIN NOINHERIT;
           EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         GRANT {role} TO {data_plane};
         CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}",
        data_plane = data_plane_role.quoted(),
        schema = tenant.schema.quoted(),
    );
    let record = record.map(StepRecord::params);
    let statements: Vec<Typed> = record
        .iter()
        .map(|record| Typed::new(RECORD_STEP, record))
        .collect();
    pipelined_transaction(client, &ddl, &statements).await?;
    Ok(())
}

/// Notes the template version the tenant's schema is at.
pub async fn record_template_version(
    client: &Object,
    tenant_id: Uuid,
    version: i32,
    record: &StepRecord<'_>,
) -> Result<(), ControlError> {
    let record = record.params();
    pipelined_transaction(
        client,
        DEFERRED_DURABILITY,
        &[
            Typed::new(
                "UPDATE control.tenants SET template_version = $2, updated_at = now()
                 WHERE id = $1",
                &[(&tenant_id, Type::UUID), (&version, Type::INT4)],
            ),
            Typed::new(RECORD_STEP, &record),
        ],
    )
    .await?;
    Ok(())
}

/// Stores `wrapped` as the tenant's data key version 1, unless one is stored already (only
/// the first key ever generated for the tenant is kept).
pub async fn insert_first_data_key(
    client: &Object,
    tenant_id: Uuid,
    wrapped: &WrappedKey,
    record: &StepRecord<'_>,
) -> Result<(), ControlError> {
    let record = record.params();
    pipelined_transaction(
        client,
        DEFERRED_DURABILITY,
        &[
            Typed::new(
                "INSERT INTO control.tenant_data_keys
                     (tenant_id, version, kek_id, nonce, wrapped_key)
                 VALUES ($1, 1, $2, $3, $4)
                 ON CONFLICT (tenant_id, version) DO NOTHING",
                &[
                    (&tenant_id, Type::UUID),
                    (&wrapped.kek_id, Type::TEXT),
                    (&wrapped.nonce, Type::BYTEA),
                    (&wrapped.ciphertext, Type::BYTEA),
                ],
            ),
            Typed::new(RECORD_STEP, &record),
        ],
    )
    .await?;
    Ok(())
}

/// The first admin's email the job was created with, if any.
pub async fn admin_email(client: &Object, tenant_id: Uuid) -> Result<Option<String>, ControlError> {
    let rows = client
        .query_typed(
            "SELECT admin_email FROM control.provisioning_jobs WHERE tenant_id = $1",
            &[(&tenant_id, Type::UUID)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(row.try_get("admin_email")?),
        None => Ok(None),
    }
}

/// What the tenant's schema starts with: built-in roles (`roles`: a JSON array of `name`,
/// `description`, `permissions`), the tenant profile, and the first admin, invited.
pub struct Seed<'a> {
    pub roles: &'a Value,
    pub admin_id: Uuid,
    pub admin_email: Option<&'a str>,
}

/// Writes `seed` as the tenant's role inside its schema, then (with `record`, on the catalog's
/// cluster) goes back to the control plane's role to record the step. Existing rows are kept
/// (a re-run changes nothing). `durable` waits for the WAL flush: on another cluster than the
/// catalog's, `activate`'s durable commit does not flush this server's earlier steps.
pub async fn seed_tenant(
    client: &Object,
    tenant: &Tenant,
    seed: &Seed<'_>,
    record: Option<&StepRecord<'_>>,
    durable: bool,
) -> Result<(), ControlError> {
    let record = record.map(StepRecord::params);
    let settings = tenant_settings(&tenant.schema, &tenant.role);
    let setup = if durable {
        settings
    } else {
        format!("{DEFERRED_DURABILITY}; {settings}")
    };
    let roles = [(seed.roles as &(dyn ToSql + Sync), Type::JSONB)];
    let profile = [(&tenant.name as &(dyn ToSql + Sync), Type::TEXT)];
    let admin = [
        (&seed.admin_id as &(dyn ToSql + Sync), Type::UUID),
        (&seed.admin_email, Type::TEXT),
    ];
    let mut statements = vec![
        Typed::new(
            "INSERT INTO roles (name, description, permissions, built_in)
                 SELECT r->>'name', r->>'description',
                        ARRAY(SELECT jsonb_array_elements_text(r->'permissions')), true
                 FROM jsonb_array_elements($1) AS r
                 ON CONFLICT (name) DO NOTHING",
            &roles,
        ),
        Typed::new(
            "INSERT INTO tenant_profile (id, display_name) VALUES (1, $1)
                 ON CONFLICT (id) DO NOTHING",
            &profile,
        ),
        // The first admin, invited (no password until activation), as owner.
        Typed::new(
            "WITH admin AS (
                     INSERT INTO users (id, email, status)
                     SELECT $1, $2, 'invited' WHERE $2::text IS NOT NULL
                     ON CONFLICT (email) DO NOTHING
                     RETURNING id)
                 INSERT INTO user_roles (user_id, role_name) SELECT id, 'owner' FROM admin",
            &admin,
        ),
    ];
    if let Some(record) = &record {
        statements.push(Typed::new("SELECT set_config('role', 'none', true)", &[]));
        statements.push(Typed::new(RECORD_STEP, record));
    }
    pipelined_transaction(client, &setup, &statements).await?;
    Ok(())
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

/// Moves the tenant from `provisioning` to `active`, with `event` (its creation event) into
/// the audit outbox and a tenant-changed notification, durably. `true` only for the call that
/// flipped it; a re-run finds it active and changes nothing.
pub async fn activate(
    client: &Object,
    tenant: &Tenant,
    event_id: &str,
    event: &Value,
    record: &StepRecord<'_>,
) -> Result<bool, ControlError> {
    let record = record.params();
    // Every node forgets what it cached of the tenant (`shared::notify`).
    let announce = Notifications::new(&[Change::Tenant {
        slug: tenant.slug.as_str().to_owned(),
    }]);
    let results = pipelined_transaction(
        client,
        "",
        &[
            Typed::new(
                ACTIVATE,
                &[
                    (&tenant.id, Type::UUID),
                    (&event_id, Type::TEXT),
                    (event, Type::JSONB),
                ],
            ),
            Typed::new(NOTIFY, &announce.params()),
            Typed::new(RECORD_STEP, &record),
        ],
    )
    .await?;
    Ok(results.first().is_some_and(|rows| !rows.is_empty()))
}
