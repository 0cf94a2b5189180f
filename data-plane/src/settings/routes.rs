//! HTTP for the tenant's settings: `GET`/`PUT /v1/settings/auth-policy` and
//! `POST /v1/settings/signing-keys/rotate`, all `settings:manage`.

use actix_web::{web, HttpResponse};
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::{service, MANAGE};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![get_auth_policy, replace_auth_policy, rotate_signing_key,]
}

#[route(
    get, "/v1/settings/auth-policy",
    summary = "Get the sign-in policy",
    access = Permission(MANAGE),
    rate = Read,
    tag = "settings",
    responses((status = 200, description = "The tenant's sign-in policy", body = crate::identity::policy::AuthPolicy)))]
async fn get_auth_policy(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::auth_policy(&state, &context).await?))
}

#[route(
    put, "/v1/settings/auth-policy",
    summary = "Replace the sign-in policy",
    access = Permission(MANAGE),
    audit = event("settings.auth_policy_update", "settings"),
    rate = Write,
    tag = "settings",
    request_body = crate::identity::policy::AuthPolicy,
    responses((status = 200, description = "Saved", body = crate::identity::policy::AuthPolicy)))]
async fn replace_auth_policy(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let policy = service::replace_auth_policy(&state, &context, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(policy))
}

#[route(
    post, "/v1/settings/signing-keys/rotate",
    summary = "Rotate the token-signing key",
    access = Permission(MANAGE),
    audit = event("settings.signing_key_rotate", "settings"),
    rate = Write,
    tag = "settings",
    responses((status = 200, description = "A new signing key is current; the old one verifies until its tokens expire", body = crate::settings::service::Rotated)))]
async fn rotate_signing_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let rotated = service::rotate_signing_key(&state, &context).await?;
    Ok(HttpResponse::Ok().json(rotated))
}
