//! A user's own data, exported (`GET /v1/me/export`, and the console's profile page).

use serde::Serialize;
use serde_json::{Map, Value};
use shared::error::ApiError;

use super::store;
use crate::state::DataPlane;
use crate::tenancy::{Principal, RequestContext};

/// Everything the tenant holds about the caller: the sections `user`, `roles`,
/// `backup_codes_remaining`, `sessions`, `api_keys`, `records` (their sensitive fields
/// withheld) and `sign_in_attempts`, with the tenant and the time of the export.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PersonalExport {
    #[serde(flatten)]
    #[schema(ignore)]
    sections: Map<String, Value>,
    tenant: ExportedTenant,
    /// When the export was taken (RFC 3339).
    exported_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ExportedTenant {
    slug: String,
    name: String,
}

pub async fn export(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
) -> Result<PersonalExport, ApiError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let document = store::export(&mut transaction, principal.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the signed-in user no longer exists"))?;
    transaction.commit().await?;
    let sections = match document {
        Value::Object(sections) => sections,
        _ => return Err(ApiError::internal(&"the export is not a JSON object")),
    };
    let tenant = &context.tenant.tenant;
    Ok(PersonalExport {
        sections,
        tenant: ExportedTenant {
            slug: tenant.slug.as_str().to_owned(),
            name: tenant.name.clone(),
        },
        exported_at: state
            .clock
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    })
}
