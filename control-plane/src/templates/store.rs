//! SQL of template roll-outs over the catalog: which tenants are behind, and each tenant's
//! version and roll-out status.

use deadpool_postgres::GenericClient;
use shared::catalog::{tenant_from_row, CatalogError, TENANT_COLUMNS};
use shared::tenant::Tenant;
use uuid::Uuid;

use crate::error::ControlError;

/// Served tenants (active or suspended) of `template` below version `target`, oldest first.
pub async fn tenants_behind(
    client: &impl GenericClient,
    template: &str,
    target: i32,
) -> Result<Vec<Tenant>, ControlError> {
    let sql = format!(
        "SELECT {TENANT_COLUMNS} FROM control.tenants t
         WHERE t.status IN ('active', 'suspended') AND t.template = $1 AND t.template_version < $2
         ORDER BY t.created_at, t.id"
    );
    let rows = client.query(&sql, &[&template, &target]).await?;
    Ok(rows
        .iter()
        .map(tenant_from_row)
        .collect::<Result<_, CatalogError>>()?)
}

pub async fn set_template_version(
    client: &impl GenericClient,
    tenant_id: Uuid,
    version: i32,
) -> Result<(), ControlError> {
    client
        .execute(
            "UPDATE control.tenants SET template_version = $2, updated_at = now() WHERE id = $1",
            &[&tenant_id, &version],
        )
        .await?;
    Ok(())
}

/// Records the tenant's last roll-out towards `target_version`: `ok`, or `failed` with `error`.
pub async fn record_status(
    client: &impl GenericClient,
    tenant_id: Uuid,
    target_version: i32,
    error: Option<&str>,
) -> Result<(), ControlError> {
    let state = if error.is_some() { "failed" } else { "ok" };
    client
        .execute(
            "INSERT INTO control.tenant_template_status (tenant_id, target_version, state, error)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id) DO UPDATE SET target_version = excluded.target_version,
                 state = excluded.state, error = excluded.error, updated_at = now()",
            &[&tenant_id, &target_version, &state, &error],
        )
        .await?;
    Ok(())
}

/// Served tenants (active or suspended) of `template` by version: (version, tenants), lowest
/// version first.
pub async fn version_counts(
    client: &impl GenericClient,
    template: &str,
) -> Result<Vec<(i32, i64)>, ControlError> {
    let rows = client
        .query(
            "SELECT template_version, count(*) AS tenants FROM control.tenants
             WHERE status IN ('active', 'suspended') AND template = $1
             GROUP BY template_version ORDER BY template_version",
            &[&template],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("template_version")?, row.try_get("tenants")?)))
        .collect()
}

/// The tenants whose last roll-out towards `target_version` failed, and why: (slug, error),
/// most recent first, at most `limit`.
pub async fn failures(
    client: &impl GenericClient,
    target_version: i32,
    limit: i64,
) -> Result<Vec<(String, String)>, ControlError> {
    let rows = client
        .query(
            "SELECT t.slug, coalesce(s.error, '') AS error FROM control.tenant_template_status s
             JOIN control.tenants t ON t.id = s.tenant_id
             WHERE s.state = 'failed' AND s.target_version = $1
               AND t.template_version < $1 AND t.status IN ('active', 'suspended')
             ORDER BY s.updated_at DESC LIMIT $2",
            &[&target_version, &limit],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("slug")?, row.try_get("error")?)))
        .collect()
}
