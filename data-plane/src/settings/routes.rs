//! HTTP for the tenant's settings: `GET`/`PUT /v1/settings/auth-policy` and
//! `POST /v1/settings/signing-keys/rotate`, all `settings:manage`.

use actix_web::{web, HttpResponse};
use shared::error::ApiError;

use super::{service, MANAGE};
use crate::authz;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/settings/auth-policy")
            .route(web::get().to(get_auth_policy))
            .route(web::put().to(replace_auth_policy)),
    )
    .route(
        "/v1/settings/signing-keys/rotate",
        web::post().to(rotate_signing_key),
    );
}

async fn get_auth_policy(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    Ok(HttpResponse::Ok().json(service::auth_policy(&state, &context).await?))
}

async fn replace_auth_policy(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    let policy = service::replace_auth_policy(&state, &context, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(policy))
}

async fn rotate_signing_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    let rotated = service::rotate_signing_key(&state, &context).await?;
    Ok(HttpResponse::Ok().json(rotated))
}
