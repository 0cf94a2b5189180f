//! HTTP for the API keys admin, under `/v1/admin/api-keys`: create, list, read, rotate and
//! revoke, all for signed-in users holding `api_keys:manage` (a key cannot manage keys).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use shared::error::ApiError;
use shared::json_body::{self, Json};
use shared::routes::{route, routes, Route};
use time::OffsetDateTime;
use uuid::Uuid;

use super::input::{GracePeriod, IpAllowList, KeyName, Scopes};
use super::service::{self, NewKey};
use super::store::KeyView;
use super::{ApiKeyError, MANAGE};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![
        list_api_keys,
        create_api_key,
        get_api_key,
        revoke_api_key,
        rotate_api_key,
    ]
}

/// A key id from the path; anything that is not one names no key (404, like an id of
/// another tenant).
fn key_id(path: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(path).map_err(|_| ApiKeyError::NotFound.into())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "name": "billing-export",
    "scopes": ["records.invoices:read", "telemetry:write"],
    "expires_at": "2027-06-30T00:00:00Z",
    "allowed_ips": ["203.0.113.0/24"]
})))]
struct CreateRequest {
    name: String,
    scopes: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    allowed_ips: Option<Vec<String>>,
}

#[route(
    post, "/v1/admin/api-keys",
    summary = "Create an API key",
    access = Permission(MANAGE),
    audit = event("api_keys.create", "api_key"),
    rate = Write,
    tag = "api_keys",
    request_body = CreateRequest,
    responses((status = 201, description = "Created; the key itself is shown only in this answer", body = crate::api_keys::service::IssuedKey)))]
async fn create_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
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

/// The tenant's API keys, as `GET /v1/admin/api-keys` answers.
#[derive(Serialize, utoipa::ToSchema)]
struct KeyList {
    api_keys: Vec<KeyView>,
}

#[route(
    get, "/v1/admin/api-keys",
    summary = "List API keys",
    access = Permission(MANAGE),
    rate = Read,
    tag = "api_keys",
    responses((status = 200, description = "The tenant's API keys (never their secrets)", body = KeyList)))]
async fn list_api_keys(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let api_keys = service::list(&state, &context).await?;
    Ok(HttpResponse::Ok().json(KeyList { api_keys }))
}

#[route(
    get, "/v1/admin/api-keys/{id}",
    summary = "Get an API key",
    access = Permission(MANAGE),
    rate = Read,
    tag = "api_keys",
    responses((status = 200, description = "The key (never its secret)", body = crate::api_keys::store::KeyView)))]
async fn get_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = service::get(&state, &context, key_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(key))
}

/// The body of a rotation, which may be left out (or empty) for the defaults.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// How long the replaced secret keeps working, in seconds (absent: the default grace
    /// period).
    grace_seconds: Option<i64>,
}

/// The rotation request: an empty body takes the defaults, anything else must be JSON.
fn rotate_request(request: &HttpRequest, body: &[u8]) -> Result<RotateRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RotateRequest::default());
    }
    if !json_body::is_json(request) {
        return Err(shared::http::unsupported_media_type());
    }
    Ok(json_body::parse(body)?)
}

#[route(
    post, "/v1/admin/api-keys/{id}/rotate",
    summary = "Rotate an API key",
    access = Permission(MANAGE),
    audit = event("api_keys.rotate", "api_key").id_from("id"),
    rate = Write,
    tag = "api_keys",
    request_body = Option<RotateRequest>,
    responses((status = 200, description = "A new key; the old one works until its grace period ends", body = crate::api_keys::service::IssuedKey)))]
async fn rotate_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    let key_id = key_id(&path)?;
    let grace = GracePeriod::parse(rotate_request(&request, &body)?.grace_seconds)?;
    let issued = service::rotate(&state, &context, caller, key_id, grace).await?;
    Ok(HttpResponse::Ok().json(issued))
}

#[route(
    delete, "/v1/admin/api-keys/{id}",
    summary = "Revoke an API key",
    access = Permission(MANAGE),
    audit = event("api_keys.revoke", "api_key").id_from("id"),
    rate = Write,
    tag = "api_keys",
    responses((status = 204, description = "Revoked")))]
async fn revoke_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service::revoke(&state, &context, key_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
