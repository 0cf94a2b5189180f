//! A tenant's export: its catalog facts and every table of its schema, as one JSON document
//! (served by `GET /v1/tenants/{slug}/export`, written before a deletion when asked).

use serde::Serialize;
use serde_json::{Map, Value};
use shared::tenant::TenantSlug;

use super::{details, store, TenantDetails};
use crate::context::ControlPlane;
use crate::error::ControlError;

/// The format tag of an export document.
pub const EXPORT_FORMAT: &str = "tenantry-export/1";

/// A tenant's export: its catalog facts and every table of its schema.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantExport {
    /// `tenantry-export/1`.
    pub format: &'static str,
    /// When the export was taken (RFC 3339).
    pub exported_at: String,
    pub tenant: TenantDetails,
    /// Each table of the tenant's schema, by name: its rows as JSON objects.
    #[schema(value_type = Object)]
    pub tables: Map<String, Value>,
}

/// The tenant's data as JSON: catalog facts plus every table of its schema.
pub async fn export(
    control: &ControlPlane,
    slug: &TenantSlug,
) -> Result<TenantExport, ControlError> {
    let details = details(control, slug).await?;
    let client = control.clusters.client_of(control, &details.tenant).await?;
    let tables = store::export_tables(&client, &details.tenant.schema).await?;
    let exported_at = control
        .clock
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(TenantExport {
        format: EXPORT_FORMAT,
        exported_at,
        tenant: details,
        tables,
    })
}

/// Where a deletion hands the tenant's export before dropping anything (e.g. writes a file).
pub type ExportSink<'a> = &'a mut (dyn FnMut(&TenantExport) -> std::io::Result<()> + Send);
