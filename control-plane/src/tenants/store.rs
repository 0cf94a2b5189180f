//! SQL over the catalog's tenant tables, and the one write the control plane makes inside a
//! tenant's schema (a first admin's activation token and its mail). Every change a data plane
//! must see is published with `NOTIFY` inside the same transaction.

use deadpool_postgres::{GenericClient, Object};
use serde::Serialize;
use serde_json::{Map, Value};
use shared::catalog::{tenant_from_row, CatalogError, TENANT_COLUMNS};
use shared::db::{pipelined_transaction, Typed};
use shared::mail_outbox;
use shared::notify::{notify, Change};
use shared::tenant::{PgIdentifier, Tenant, TenantStatus};
use shared::tenant_context::tenant_settings;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::error::ControlError;
use crate::provisioning::DEFERRED_DURABILITY;

pub struct NewTenant<'a> {
    pub id: Uuid,
    /// The cluster it is placed on.
    pub cluster: &'a str,
    pub slug: &'a str,
    pub name: &'a str,
    pub plan: &'a str,
    pub schema: &'a PgIdentifier,
    pub role: &'a PgIdentifier,
    pub admin_email: Option<&'a str>,
}

pub async fn plan_exists(client: &impl GenericClient, plan: &str) -> Result<bool, ControlError> {
    Ok(client
        .query_opt("SELECT 1 FROM control.plans WHERE name = $1", &[&plan])
        .await?
        .is_some())
}

/// Inserts the tenant (`provisioning`), its quota row and its provisioning job in one
/// statement: one round trip, all or nothing.
pub async fn insert_tenant(
    client: &tokio_postgres::Client,
    tenant: &NewTenant<'_>,
) -> Result<Tenant, ControlError> {
    let sql = format!(
        "WITH t AS (
             INSERT INTO control.tenants AS t
                 (id, slug, name, status, plan, schema_name, role_name, cluster_id)
             VALUES ($1, $2, $3, 'provisioning', $4, $5, $6, $8)
             RETURNING {TENANT_COLUMNS}
         ), quotas AS (
             INSERT INTO control.tenant_quotas (tenant_id) SELECT id FROM t
         ), job AS (
             INSERT INTO control.provisioning_jobs (tenant_id, last_step, state, admin_email)
             SELECT id, 'catalog_row', 'running', $7 FROM t
         )
         SELECT * FROM t"
    );
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 8] = [
        (&tenant.id, Type::UUID),
        (&tenant.slug, Type::TEXT),
        (&tenant.name, Type::TEXT),
        (&tenant.plan, Type::TEXT),
        (&tenant.schema.as_str(), Type::TEXT),
        (&tenant.role.as_str(), Type::TEXT),
        (&tenant.admin_email, Type::TEXT),
        (&tenant.cluster, Type::TEXT),
    ];
    // Like the provisioning steps, the row commits without waiting for its WAL flush: until
    // `activate` (durable, so it flushes this too) nobody has been told the tenant exists,
    // and a crash that loses the row loses every later step with it.
    let results =
        pipelined_transaction(client, DEFERRED_DURABILITY, &[Typed::new(&sql, &params)]).await?;
    let row = results
        .iter()
        .flatten()
        .next()
        .ok_or_else(|| ControlError::TenantNotFound(tenant.slug.to_owned()))?;
    Ok(tenant_from_row(row)?)
}

pub async fn list(client: &impl GenericClient) -> Result<Vec<Tenant>, ControlError> {
    let sql = format!(
        "SELECT {TENANT_COLUMNS} FROM control.tenants t WHERE t.status <> 'deleted'
         ORDER BY t.slug"
    );
    let rows = client.query(&sql, &[]).await?;
    Ok(rows
        .iter()
        .map(tenant_from_row)
        .collect::<Result<_, CatalogError>>()?)
}

/// One page of tenants in slug order after `after`, whose slug starts with `query` or whose
/// name contains it (case-insensitive); `limit` at most. Served by the slug's unique index.
pub async fn search(
    client: &impl GenericClient,
    query: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<Tenant>, ControlError> {
    let escaped = query
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let sql = format!(
        "SELECT {TENANT_COLUMNS} FROM control.tenants t
         WHERE t.status <> 'deleted' AND t.slug > $1
           AND ($2 = '' OR t.slug LIKE $3 || '%' OR t.name ILIKE '%' || $3 || '%')
         ORDER BY t.slug LIMIT $4"
    );
    let rows = client
        .query(&sql, &[&after, &query, &escaped, &limit])
        .await?;
    Ok(rows
        .iter()
        .map(tenant_from_row)
        .collect::<Result<_, CatalogError>>()?)
}

pub async fn set_status(
    client: &impl GenericClient,
    tenant_id: Uuid,
    from: &[TenantStatus],
    to: TenantStatus,
) -> Result<Option<Tenant>, ControlError> {
    let from: Vec<&str> = from.iter().map(|status| status.as_str()).collect();
    let sql = format!(
        "UPDATE control.tenants t SET status = $3, updated_at = now(),
             deleted_at = CASE WHEN $3 = 'deleted' THEN now() ELSE deleted_at END
         WHERE t.id = $1 AND t.status = ANY($2)
         RETURNING {TENANT_COLUMNS}"
    );
    let row = client
        .query_opt(&sql, &[&tenant_id, &from, &to.as_str()])
        .await?;
    Ok(row.as_ref().map(tenant_from_row).transpose()?)
}

pub async fn update_name_and_plan(
    client: &impl GenericClient,
    tenant_id: Uuid,
    name: Option<&str>,
    plan: Option<&str>,
) -> Result<(), ControlError> {
    client
        .execute(
            "UPDATE control.tenants
             SET name = coalesce($2, name), plan = coalesce($3, plan), updated_at = now()
             WHERE id = $1",
            &[&tenant_id, &name, &plan],
        )
        .await?;
    Ok(())
}

/// Per-tenant overrides of the plan's limits (a `control.tenant_quotas` row); `None` means
/// "the plan's default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuotaOverrides {
    pub max_users: Option<i64>,
    pub max_storage_bytes: Option<i64>,
    pub max_api_keys: Option<i64>,
    pub requests_per_second: Option<i32>,
    pub burst: Option<i32>,
    pub events_per_day: Option<i64>,
}

pub async fn quota_overrides(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<QuotaOverrides, ControlError> {
    let row = client
        .query_opt(
            "SELECT max_users, max_storage_bytes, max_api_keys, requests_per_second, burst,
                    events_per_day
             FROM control.tenant_quotas WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(QuotaOverrides::default());
    };
    Ok(QuotaOverrides {
        max_users: row.try_get("max_users")?,
        max_storage_bytes: row.try_get("max_storage_bytes")?,
        max_api_keys: row.try_get("max_api_keys")?,
        requests_per_second: row.try_get("requests_per_second")?,
        burst: row.try_get("burst")?,
        events_per_day: row.try_get("events_per_day")?,
    })
}

pub async fn write_quota_overrides(
    client: &impl GenericClient,
    tenant_id: Uuid,
    quotas: &QuotaOverrides,
) -> Result<(), ControlError> {
    client
        .execute(
            "INSERT INTO control.tenant_quotas AS q (tenant_id, max_users, max_storage_bytes,
                 max_api_keys, requests_per_second, burst, events_per_day)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id) DO UPDATE SET
                 max_users = excluded.max_users,
                 max_storage_bytes = excluded.max_storage_bytes,
                 max_api_keys = excluded.max_api_keys,
                 requests_per_second = excluded.requests_per_second,
                 burst = excluded.burst,
                 events_per_day = excluded.events_per_day,
                 updated_at = now()",
            &[
                &tenant_id,
                &quotas.max_users,
                &quotas.max_storage_bytes,
                &quotas.max_api_keys,
                &quotas.requests_per_second,
                &quotas.burst,
                &quotas.events_per_day,
            ],
        )
        .await?;
    Ok(())
}

pub async fn domains(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<Vec<String>, ControlError> {
    let rows = client
        .query(
            "SELECT domain FROM control.tenant_domains WHERE tenant_id = $1 ORDER BY domain",
            &[&tenant_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("domain"))
        .collect::<Result<_, _>>()?)
}

/// Registers a domain; false when it is already registered (to any tenant).
pub async fn insert_domain(
    client: &impl GenericClient,
    tenant_id: Uuid,
    domain: &str,
) -> Result<bool, ControlError> {
    let inserted = client
        .execute(
            "INSERT INTO control.tenant_domains (domain, tenant_id) VALUES ($1, $2)
             ON CONFLICT (domain) DO NOTHING",
            &[&domain, &tenant_id],
        )
        .await?;
    Ok(inserted == 1)
}

pub async fn delete_domain(
    client: &impl GenericClient,
    tenant_id: Uuid,
    domain: &str,
) -> Result<bool, ControlError> {
    let deleted = client
        .execute(
            "DELETE FROM control.tenant_domains WHERE domain = $1 AND tenant_id = $2",
            &[&domain, &tenant_id],
        )
        .await?;
    Ok(deleted == 1)
}

/// Every base table of the tenant's schema as JSON arrays of rows, keyed by table name.
pub async fn export_tables(
    client: &impl GenericClient,
    schema: &PgIdentifier,
) -> Result<Map<String, Value>, ControlError> {
    let tables = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
               AND c.relname <> 'refinery_schema_history'
             ORDER BY c.relname",
            &[&schema.as_str()],
        )
        .await?;
    let mut exported = Map::new();
    for table in tables {
        let name: String = table.try_get("relname")?;
        let sql = format!(
            "SELECT coalesce(json_agg(row_to_json(r)), '[]'::json) AS exported FROM {}.{} r",
            schema.quoted(),
            shared::tenant::quote_ident(&name)
        );
        let rows: Value = client.query_one(&sql, &[]).await?.try_get("exported")?;
        exported.insert(name, rows);
    }
    Ok(exported)
}

/// Drops the tenant's schema and role, on the cluster `client` is connected to. Idempotent.
pub async fn drop_schema_and_role(
    client: &impl GenericClient,
    schema: &PgIdentifier,
    role: &PgIdentifier,
) -> Result<(), ControlError> {
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            schema.quoted()
        ))
        .await?;
    client
        .batch_execute(&format!("DROP ROLE IF EXISTS {}", role.quoted()))
        .await?;
    Ok(())
}

/// Destroys the tenant's data keys and frees its domains, in the catalog.
pub async fn forget_keys_and_domains(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<(), ControlError> {
    // Crypto-shredding: without its data key, the tenant's encrypted data in any backup is
    // unreadable.
    client
        .execute(
            "DELETE FROM control.tenant_data_keys WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await?;
    client
        .execute(
            "DELETE FROM control.tenant_domains WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await?;
    Ok(())
}

/// An activation token for a tenant's invited user, and the mail that carries it.
pub struct NewActivationToken<'a> {
    pub token_digest: &'a [u8],
    pub email: &'a str,
    pub expires_at: time::OffsetDateTime,
    pub mail_subject: &'a str,
    pub mail_body: &'a str,
}

/// Stores the token's digest for the tenant's invited user `email` and queues its mail, in one
/// transaction: the token row and the outbox row as the tenant role in its schema, the
/// pending-mail mark as the control plane's own role. So the mail exists exactly when the token
/// does. False, with nothing written, when `email` is no invited user of the tenant.
pub async fn insert_activation_token(
    client: &mut Object,
    tenant: &Tenant,
    token: &NewActivationToken<'_>,
) -> Result<bool, ControlError> {
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(&tenant_settings(&tenant.schema, &tenant.role))
        .await?;
    let issued = transaction
        .query_typed(
            "INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at)
             SELECT $1, id, 'activation', $3
             FROM users WHERE email = $2 AND status = 'invited'
             RETURNING user_id",
            &[
                (&token.token_digest, Type::BYTEA),
                (&token.email, Type::TEXT),
                (&token.expires_at, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    if issued.is_empty() {
        // Dropping the transaction rolls it back.
        return Ok(false);
    }
    transaction
        .query_typed(
            mail_outbox::INSERT_OUTBOX,
            &[
                (&Uuid::now_v7(), Type::UUID),
                (&token.email, Type::TEXT),
                (&token.mail_subject, Type::TEXT),
                (&token.mail_body, Type::TEXT),
            ],
        )
        .await?;
    // Back to the control plane's own role (for this transaction only) for the catalog mark.
    transaction
        .batch_execute("SELECT set_config('role', 'none', true)")
        .await?;
    transaction
        .query_typed(mail_outbox::MARK_PENDING, &[(&tenant.id, Type::UUID)])
        .await?;
    notify(&transaction, &Change::MailPending { tenant: tenant.id }).await?;
    transaction.commit().await?;
    Ok(true)
}
