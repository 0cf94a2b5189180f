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
