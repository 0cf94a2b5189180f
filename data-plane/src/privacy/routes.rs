//! HTTP for personal data: `GET /v1/me/export` (the caller's own data) and
//! `GET`/`PUT /v1/settings/privacy` (`settings:manage`).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::{Map, Value};
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::{store, PrivacyPolicy, MANAGE};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![export, get_policy, replace_policy,]
}

/// Everything the tenant holds about the caller: the sections `user`, `roles`,
/// `backup_codes_remaining`, `sessions`, `api_keys`, `records` (their sensitive fields
/// withheld) and `sign_in_attempts`, with the tenant and the time of the export.
#[derive(Serialize, utoipa::ToSchema)]
struct PersonalExport {
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

#[route(
    get, "/v1/me/export",
    summary = "Export my data",
    access = SignedIn,
    rate = Read,
    tag = "me",
    responses((status = 200, description = "Everything the tenant holds about the caller (JSON download)", body = PersonalExport)))]
async fn export(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.authenticated()?;
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
    let document = PersonalExport {
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
    };
    Ok(HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"export-{}.json\"", principal.user_id),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(document))
}

#[route(
    get, "/v1/settings/privacy",
    summary = "Get the retention policy",
    access = Permission(MANAGE),
    rate = Read,
    tag = "settings",
    responses((status = 200, description = "The tenant's retention policy", body = crate::privacy::PrivacyPolicy)))]
async fn get_policy(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let policy = store::policy(&mut transaction).await?;
    transaction.commit().await?;
    Ok(HttpResponse::Ok().json(policy))
}

#[route(
    put, "/v1/settings/privacy",
    summary = "Replace the retention policy",
    access = Permission(MANAGE),
    audit = event("settings.privacy_update", "settings"),
    rate = Write,
    tag = "settings",
    request_body = crate::privacy::PrivacyPolicy,
    responses((status = 200, description = "Saved", body = crate::privacy::PrivacyPolicy)))]
async fn replace_policy(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    // serde would also read a struct from an array, by position.
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "invalid_policy",
            "the policy is a JSON object",
        ));
    }
    let policy: PrivacyPolicy = serde_json::from_value(body)
        .map_err(|error| ApiError::bad_request("invalid_policy", error.to_string()))?;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::save_policy(&mut transaction, &policy).await?;
    transaction.commit().await?;
    Ok(HttpResponse::Ok().json(policy))
}
