//! A tenant's export: its catalog facts and every table of its schema, as one JSON document
//! (served by `GET /v1/tenants/{slug}/export`, written before a deletion when asked).

use serde_json::{json, Value};
use shared::tenant::TenantSlug;

use super::{details, store};
use crate::context::ControlPlane;
use crate::error::ControlError;

/// The tenant's data as JSON: catalog facts plus every table of its schema.
pub async fn export(control: &ControlPlane, slug: &TenantSlug) -> Result<Value, ControlError> {
    let details = details(control, slug).await?;
    let client = control.pool.get().await?;
    let tables = store::export_tables(&client, &details.tenant.schema).await?;
    let exported_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(json!({
        "format": "tenantry-export/1",
        "exported_at": exported_at,
        "tenant": details,
        "tables": tables,
    }))
}

/// Where a deletion hands the tenant's export before dropping anything (e.g. writes a file).
pub type ExportSink<'a> = &'a mut (dyn FnMut(&Value) -> std::io::Result<()> + Send);
