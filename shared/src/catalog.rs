//! The control plane's catalog (schema `control`): its migrations, and the reads both planes
//! make of it.
//!
//! The catalog is migrated by refinery from `migrations/`; its history table is
//! `control.refinery_schema_history`. `migrate` also makes sure the data plane's login role
//! exists with exactly the catalog access it needs (read tenants, domains and quotas; mark
//! and clear tenants with pending mail).

use serde::Serialize;
use tokio_postgres::types::Type;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::envelope::WrappedKey;
use crate::template::Template;
use crate::tenant::{PgIdentifier, RolePrefix, Tenant, TenantSlug, TenantStatus};

mod embedded {
    refinery::embed_migrations!("../migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("catalog holds an invalid {what}: {value}")]
    Corrupt { what: &'static str, value: String },
}

/// Brings the catalog to the newest version and registers the template's versions.
/// Safe to run any number of times, also concurrently (an advisory lock serialises runs).
pub async fn migrate(
    client: &mut tokio_postgres::Client,
    role_prefix: &RolePrefix,
    template: &Template,
) -> Result<(), CatalogError> {
    // Serialise concurrent `migrate` runs: CREATE SCHEMA IF NOT EXISTS and CREATE ROLE race.
    client
        .batch_execute("SELECT pg_advisory_lock(7245001)")
        .await?;
    let outcome = migrate_locked(client, role_prefix, template).await;
    client
        .batch_execute("SELECT pg_advisory_unlock(7245001)")
        .await?;
    outcome
}

async fn migrate_locked(
    client: &mut tokio_postgres::Client,
    role_prefix: &RolePrefix,
    template: &Template,
) -> Result<(), CatalogError> {
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS control")
        .await?;
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name("control.refinery_schema_history");
    runner
        .run_async(client)
        .await
        .map_err(|error| CatalogError::Migration(error.to_string()))?;

    let data_plane = role_prefix.data_plane_role();
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_roles WHERE rolname = $1",
            &[&data_plane.as_str()],
        )
        .await?
        .is_some();
    if !exists {
        // NOINHERIT: the data plane has no tenant's privileges until it sets that role.
        client
            .batch_execute(&format!(
                "CREATE ROLE {} LOGIN NOINHERIT",
                data_plane.quoted()
            ))
            .await?;
    }
    client
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA control TO {role};
             GRANT SELECT ON control.tenants, control.tenant_domains, control.tenant_quotas,
                 control.plans, control.tenant_data_keys, control.postgres_clusters TO {role};
             GRANT SELECT, INSERT, UPDATE, DELETE ON control.mail_pending TO {role};
             GRANT USAGE ON SEQUENCE control.mail_pending_generation TO {role};
             GRANT SELECT, INSERT, UPDATE ON control.audit_chain_heads TO {role};
             GRANT SELECT, INSERT, UPDATE, DELETE ON control.audit_outbox TO {role}",
            role = data_plane.quoted()
        ))
        .await?;

    let transaction = client.transaction().await?;
    for migration in template.migrations() {
        transaction
            .execute(
                "INSERT INTO control.template_versions (template, version, name, checksum)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (template, version) DO UPDATE
                     SET name = excluded.name, checksum = excluded.checksum",
                &[
                    &template.name,
                    &migration.version(),
                    &migration.name(),
                    &migration.checksum().to_string(),
                ],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// The catalog's own cluster (catalog migration V1 makes it; it can be neither removed nor
/// re-registered): the one whose tenants the data plane serves today (docs/scale-out.md).
pub const CATALOG_CLUSTER: &str = "primary";

/// The columns [`tenant_from_row`] reads (by name).
pub const TENANT_COLUMNS: &str = "t.id, t.slug, t.name, t.status, t.plan, t.schema_name, \
     t.role_name, t.cluster_id, t.moving, t.template, t.template_version, t.created_at, \
     t.updated_at";

pub fn tenant_from_row(row: &Row) -> Result<Tenant, CatalogError> {
    let slug: String = row.try_get("slug")?;
    let status: String = row.try_get("status")?;
    Ok(Tenant {
        id: row.try_get("id")?,
        slug: TenantSlug::parse(&slug).map_err(|_| CatalogError::Corrupt {
            what: "slug",
            value: slug.clone(),
        })?,
        name: row.try_get("name")?,
        status: TenantStatus::parse(&status).ok_or(CatalogError::Corrupt {
            what: "status",
            value: status.clone(),
        })?,
        plan: row.try_get("plan")?,
        schema: PgIdentifier::from_catalog(row.try_get("schema_name")?),
        role: PgIdentifier::from_catalog(row.try_get("role_name")?),
        cluster: row.try_get("cluster_id")?,
        moving: row.try_get("moving")?,
        template: row.try_get("template")?,
        template_version: row.try_get("template_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The live (not deleted) tenant with this slug.
///
/// The reads both planes make outside a transaction are sent unprepared (`query_typed`, one
/// round trip): a named statement prepared in one round trip and run in the next would not
/// survive a transaction-mode PgBouncer between the two (docs/scale-out.md).
pub async fn tenant_by_slug(
    client: &tokio_postgres::Client,
    slug: &TenantSlug,
) -> Result<Option<Tenant>, CatalogError> {
    let sql = format!(
        "SELECT {TENANT_COLUMNS} FROM control.tenants t WHERE t.slug = $1 AND t.status <> 'deleted'"
    );
    let rows = client
        .query_typed(&sql, &[(&slug.as_str(), Type::TEXT)])
        .await?;
    rows.first().map(tenant_from_row).transpose()
}

/// The live tenant a custom domain is registered to.
pub async fn tenant_by_domain(
    client: &tokio_postgres::Client,
    domain: &str,
) -> Result<Option<Tenant>, CatalogError> {
    let sql = format!(
        "SELECT {TENANT_COLUMNS} FROM control.tenants t
         JOIN control.tenant_domains d ON d.tenant_id = t.id
         WHERE d.domain = $1 AND t.status <> 'deleted'"
    );
    let rows = client.query_typed(&sql, &[(&domain, Type::TEXT)]).await?;
    rows.first().map(tenant_from_row).transpose()
}

/// A tenant's effective limits: its overrides where set, its plan's defaults elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Quotas {
    pub max_users: i64,
    pub max_storage_bytes: i64,
    pub max_api_keys: i64,
    pub requests_per_second: i32,
    pub burst: i32,
    pub events_per_day: i64,
}

pub async fn effective_quotas(
    client: &tokio_postgres::Client,
    tenant_id: Uuid,
) -> Result<Option<Quotas>, CatalogError> {
    let rows = client
        .query_typed(
            "SELECT coalesce(q.max_users, p.max_users) AS max_users,
                    coalesce(q.max_storage_bytes, p.max_storage_bytes) AS max_storage_bytes,
                    coalesce(q.max_api_keys, p.max_api_keys) AS max_api_keys,
                    coalesce(q.requests_per_second, p.requests_per_second)
                        AS requests_per_second,
                    coalesce(q.burst, p.burst) AS burst,
                    coalesce(q.events_per_day, p.events_per_day) AS events_per_day
             FROM control.tenants t
             JOIN control.plans p ON p.name = t.plan
             LEFT JOIN control.tenant_quotas q ON q.tenant_id = t.id
             WHERE t.id = $1",
            &[(&tenant_id, Type::UUID)],
        )
        .await?;
    rows.first()
        .map(|row| {
            Ok(Quotas {
                max_users: row.try_get("max_users")?,
                max_storage_bytes: row.try_get("max_storage_bytes")?,
                max_api_keys: row.try_get("max_api_keys")?,
                requests_per_second: row.try_get("requests_per_second")?,
                burst: row.try_get("burst")?,
                events_per_day: row.try_get("events_per_day")?,
            })
        })
        .transpose()
}

/// A tenant's wrapped data keys, oldest version first (the last is the one new values are
/// sealed with). Sent unprepared, as [`tenant_by_slug`].
pub async fn wrapped_data_keys(
    client: &tokio_postgres::Client,
    tenant_id: Uuid,
) -> Result<Vec<(i32, WrappedKey)>, CatalogError> {
    let rows = client
        .query_typed(
            "SELECT version, kek_id, nonce, wrapped_key FROM control.tenant_data_keys
             WHERE tenant_id = $1 ORDER BY version",
            &[(&tenant_id, Type::UUID)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("version")?,
                WrappedKey {
                    kek_id: row.try_get("kek_id")?,
                    nonce: row.try_get("nonce")?,
                    ciphertext: row.try_get("wrapped_key")?,
                },
            ))
        })
        .collect()
}
