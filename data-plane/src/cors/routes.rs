//! HTTP for the CORS settings: `GET`/`PUT /v1/settings/cors`, `settings:manage`.

use actix_web::{web, HttpResponse};
use shared::error::ApiError;

use super::service;
use crate::authz;
use crate::settings::MANAGE;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/settings/cors")
            .route(web::get().to(get_cors))
            .route(web::put().to(replace_cors)),
    );
}

async fn get_cors(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    Ok(HttpResponse::Ok().json(service::policy(&state, &context).await?))
}

async fn replace_cors(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    let policy = service::replace_policy(&state, &context, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(policy))
}
