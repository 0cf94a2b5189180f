//! HTTP for the CORS settings: `GET`/`PUT /v1/settings/cors`, `settings:manage`.

use actix_web::{web, HttpResponse};
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::service;
use crate::settings::MANAGE;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![get_cors, replace_cors,]
}

#[route(
    get, "/v1/settings/cors",
    summary = "Get the CORS policy",
    access = Permission(MANAGE),
    rate = Read,
    tag = "settings",
    responses((status = 200, description = "The tenant's CORS policy", body = crate::cors::CorsPolicy)))]
async fn get_cors(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::policy(&state, &context).await?))
}

#[route(
    put, "/v1/settings/cors",
    summary = "Replace the CORS policy",
    access = Permission(MANAGE),
    audit = event("settings.cors_update", "settings"),
    rate = Write,
    tag = "settings",
    request_body = crate::cors::CorsPolicy,
    responses((status = 200, description = "Saved (origins normalised and sorted)", body = crate::cors::CorsPolicy)))]
async fn replace_cors(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let policy = service::replace_policy(&state, &context, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(policy))
}
