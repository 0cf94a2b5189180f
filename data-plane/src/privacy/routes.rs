//! HTTP for personal data: `GET /v1/me/export` (the caller's own data),
//! `POST /v1/me/erasure` (the caller erases themselves) and `GET`/`PUT /v1/settings/privacy`
//! (`settings:manage`).

use actix_web::{web, HttpResponse};
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::{service, store, PrivacyPolicy, MANAGE};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![export, erase_me, get_policy, replace_policy,]
}

#[route(
    get, "/v1/me/export",
    summary = "Export my data",
    access = SignedIn,
    rate = Read,
    tag = "me",
    responses((status = 200, description = "Everything the tenant holds about the caller (JSON download)", body = super::service::PersonalExport)))]
async fn export(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.authenticated()?;
    let document = service::export(&state, &context, principal).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"export-{}.json\"", principal.user_id),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(document))
}

/// `POST /v1/me/erasure`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// The caller's own email address, typed to confirm.
    pub confirm_email: String,
}

#[route(
    post, "/v1/me/erasure",
    summary = "Erase my account",
    access = SignedIn,
    audit = event("me.erase", "user"),
    rate = Auth,
    tag = "me",
    request_body = ErasureRequest,
    responses((status = 204, description = "Erased: the account, its sessions and tokens are gone; the sign-in history keeps no personal data; owned records go by the privacy policy"), (status = 400, description = "`invalid_input`: the address typed is not the caller's"), (status = 403, description = "`recent_sign_in_required`: the session's sign-in is over ten minutes old"), (status = 409, description = "`last_owner`: the tenant's last active owner; `no_heir`: records are kept and no other owner could keep them")))]
async fn erase_me(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<ErasureRequest>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.authenticated()?;
    crate::users::service::erase_self(&state, &context, principal, &body.confirm_email).await?;
    Ok(HttpResponse::NoContent().finish())
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
