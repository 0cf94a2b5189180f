//! HTTP for the API keys admin, under `/v1/admin/api-keys`: create, list, read, rotate and
//! revoke, all for signed-in users holding `api_keys:manage` (a key cannot manage keys).

use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use shared::error::ApiError;
use time::OffsetDateTime;
use uuid::Uuid;

use super::input::{GracePeriod, IpAllowList, KeyName, Scopes};
use super::service::{self, NewKey};
use super::store::KeyView;
use super::{ApiKeyError, MANAGE};
use crate::authz;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/admin/api-keys")
            .route(web::get().to(list_api_keys))
            .route(web::post().to(create_api_key)),
    )
    .service(
        web::resource("/v1/admin/api-keys/{id}")
            .route(web::get().to(get_api_key))
            .route(web::delete().to(revoke_api_key)),
    )
    .route(
        "/v1/admin/api-keys/{id}/rotate",
        web::post().to(rotate_api_key),
    );
}

/// A key id from the path; anything that is not one names no key (404, like an id of
/// another tenant).
fn key_id(path: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(path).map_err(|_| ApiKeyError::NotFound.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    scopes: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    allowed_ips: Option<Vec<String>>,
}

async fn create_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
    let body = body.into_inner();
    let new_key = NewKey {
        name: KeyName::parse(&body.name)?,
        scopes: Scopes::parse(&body.scopes)?,
        expires_at: body.expires_at,
        allowed_ips: body
            .allowed_ips
            .as_deref()
            .map(IpAllowList::parse)
            .transpose()?,
    };
    let issued = service::create(&state, &context, caller, new_key).await?;
    Ok(HttpResponse::Created().json(issued))
}

#[derive(Serialize)]
struct KeyList {
    api_keys: Vec<KeyView>,
}

async fn list_api_keys(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    let api_keys = service::list(&state, &context).await?;
    Ok(HttpResponse::Ok().json(KeyList { api_keys }))
}

async fn get_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    let key = service::get(&state, &context, key_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(key))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    grace_seconds: Option<i64>,
}

/// The rotation request: an empty body takes the defaults, anything else must be JSON.
fn rotate_request(request: &HttpRequest, body: &[u8]) -> Result<RotateRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RotateRequest::default());
    }
    let is_json = request
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|mime| mime.essence_str() == "application/json");
    if !is_json {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request("invalid_json", error.to_string()))
}

async fn rotate_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
    let key_id = key_id(&path)?;
    let grace = GracePeriod::parse(rotate_request(&request, &body)?.grace_seconds)?;
    let issued = service::rotate(&state, &context, caller, key_id, grace).await?;
    Ok(HttpResponse::Ok().json(issued))
}

async fn revoke_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    service::revoke(&state, &context, key_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
