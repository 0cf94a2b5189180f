//! HTTP for records and collections:
//! - `GET /v1/collections` — the collections the caller may read;
//! - `GET|PUT /v1/collections/{collection}` — a collection's settings (`read` / `manage`);
//! - `POST|GET /v1/collections/{collection}/records` — create (`create`) and list (`read`);
//! - `GET|PUT|PATCH|DELETE /v1/collections/{collection}/records/{id}` — `read`, `update`,
//!   `update`, `delete`.
//!
//! Each handler first parses the collection name, then passes the guard with
//! `records.<collection>:<action>`, then reads its body or query.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use shared::error::ApiError;
use uuid::Uuid;

use super::body::{self, Accept};
use super::collections::{self, Settings};
use super::document::Document;
use super::names::{CollectionName, FieldName};
use super::query::ListQuery;
use super::service::{self, Change, Page, Precondition, RecordView, Rights};
use super::store::Access;
use super::RecordsError;
use crate::authz::{self, Caller};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/collections", web::get().to(list_collections))
        .service(
            web::resource("/v1/collections/{collection}")
                .route(web::get().to(get_collection))
                .route(web::put().to(put_collection))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/collections/{collection}/records")
                .route(web::post().to(create_record))
                .route(web::get().to(list_records))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/v1/collections/{collection}/records/{id}")
                .route(web::get().to(get_record))
                .route(web::put().to(replace_record))
                .route(web::patch().to(patch_record))
                .route(web::delete().to(delete_record))
                .default_service(web::to(method_not_allowed)),
        );
}

/// Another method on a records path: 405 with the JSON error body.
async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed on this path",
    ))
}

fn collection_name(path: &str) -> Result<CollectionName, ApiError> {
    CollectionName::parse(path)
        .map_err(|error| RecordsError::InvalidCollection(error.to_string()).into())
}

/// A record id from the path; anything that is not one names no record (404, like an id of
/// another tenant).
fn record_id(path: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(path).map_err(|_| RecordsError::NotFound.into())
}

/// Whether the caller holds `permission`, for the rights that shape an answer rather than
/// allow it (a missing one is not an error; a failed lookup is).
async fn holds(
    state: &DataPlane,
    context: &RequestContext,
    permission: &str,
) -> Result<bool, ApiError> {
    match authz::require_caller(state, context, permission).await {
        Ok(_) => Ok(true),
        Err(error) if error.status() == actix_web::http::StatusCode::FORBIDDEN => Ok(false),
        Err(error) => Err(error),
    }
}

async fn rights(
    state: &DataPlane,
    context: &RequestContext,
    caller: Caller<'_>,
    collection: &CollectionName,
    need_sensitive: bool,
) -> Result<Rights, ApiError> {
    let manage = holds(state, context, &collection.permission("manage")).await?;
    let read_sensitive =
        need_sensitive && holds(state, context, &collection.sensitive_read_permission()).await?;
    Ok(Rights {
        user_id: caller.user_id(),
        read_sensitive,
        manage,
    })
}

fn if_match(req: &HttpRequest) -> Result<Option<Precondition>, ApiError> {
    let values: Vec<&str> = req
        .headers()
        .get_all(header::IF_MATCH)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| RecordsError::InvalidPrecondition)
        })
        .collect::<Result<_, _>>()?;
    if values.is_empty() {
        return Ok(None);
    }
    Ok(Some(Precondition::parse(&values.join(","))?))
}

fn with_etag(mut response: HttpResponse, version: i64) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(&service::etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn record_response(
    mut response: actix_web::HttpResponseBuilder,
    view: &RecordView,
) -> HttpResponse {
    with_etag(response.json(view), view.version)
}

async fn create_record(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path)?;
    let caller = authz::require_caller(&state, &context, &name.permission("create")).await?;
    let document = Document::from_value(body::json_body(&req, payload, Accept::Json).await?)?;
    let written = service::create(&state, &context, caller.user_id(), &name, document).await?;
    let read_sensitive = !written.secret.is_empty()
        && holds(&state, &context, &name.sensitive_read_permission()).await?;
    let view = written.view(read_sensitive);
    let location = format!("/v1/collections/{name}/records/{}", view.id);
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, location));
    Ok(record_response(response, &view))
}

async fn get_record(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path.0)?;
    let caller = authz::require_caller(&state, &context, &name.permission("read")).await?;
    let id = record_id(&path.1)?;
    let (record, collection) = service::get(&state, &context, &name, id).await?;
    if !service::is_visible_to_owner(&collection, &record, caller.user_id())
        && !holds(&state, &context, &name.permission("manage")).await?
    {
        return Err(RecordsError::NotFound.into());
    }
    let read_sensitive = record.sealed.is_some()
        && holds(&state, &context, &name.sensitive_read_permission()).await?;
    let view = service::views(&state, &context, &collection, vec![record], read_sensitive)
        .await?
        .pop()
        .ok_or(RecordsError::NotFound)?;
    Ok(record_response(HttpResponse::Ok(), &view))
}

async fn list_records(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path)?;
    let caller = authz::require_caller(&state, &context, &name.permission("read")).await?;
    let query = ListQuery::parse(req.query_string())?;
    let Some(collection) = collections::collection(&state, &context, &name).await? else {
        // Collections appear on their first write: before it, a list is empty.
        return Ok(HttpResponse::Ok().json(Page {
            records: Vec::new(),
            next_cursor: None,
        }));
    };
    service::check_filter(&collection, &query)?;
    let only_owner = if collection.access == Access::Owner
        && !holds(&state, &context, &name.permission("manage")).await?
    {
        Some(caller.user_id())
    } else {
        None
    };
    let read_sensitive = !collection.sensitive_fields.is_empty()
        && holds(&state, &context, &name.sensitive_read_permission()).await?;
    let page = service::list(
        &state,
        &context,
        &collection,
        only_owner,
        &query,
        read_sensitive,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn replace_record(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path.0)?;
    let caller = authz::require_caller(&state, &context, &name.permission("update")).await?;
    let id = record_id(&path.1)?;
    let precondition = if_match(&req)?;
    let document = Document::from_value(body::json_body(&req, payload, Accept::Json).await?)?;
    let rights = rights(&state, &context, caller, &name, true).await?;
    let written = service::update(
        &state,
        &context,
        &rights,
        &name,
        id,
        precondition.as_ref(),
        Change::Replace(document),
    )
    .await?;
    Ok(record_response(
        HttpResponse::Ok(),
        &written.view(rights.read_sensitive),
    ))
}

async fn patch_record(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path.0)?;
    let caller = authz::require_caller(&state, &context, &name.permission("update")).await?;
    let id = record_id(&path.1)?;
    let precondition = if_match(&req)?;
    let patch = body::json_body(&req, payload, Accept::MergePatch).await?;
    if !patch.is_object() {
        return Err(RecordsError::NotAnObject.into());
    }
    let rights = rights(&state, &context, caller, &name, true).await?;
    let written = service::update(
        &state,
        &context,
        &rights,
        &name,
        id,
        precondition.as_ref(),
        Change::MergePatch(patch),
    )
    .await?;
    Ok(record_response(
        HttpResponse::Ok(),
        &written.view(rights.read_sensitive),
    ))
}

async fn delete_record(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path.0)?;
    let caller = authz::require_caller(&state, &context, &name.permission("delete")).await?;
    let id = record_id(&path.1)?;
    let precondition = if_match(&req)?;
    let rights = rights(&state, &context, caller, &name, false).await?;
    service::delete(&state, &context, &rights, &name, id, precondition.as_ref()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_collections(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let every = holds(&state, &context, "records:read").await?;
    let mut collections = collections::collections(&state, &context).await?;
    if !every {
        // Only the collections the caller may read; at least one must be.
        let mut readable = Vec::with_capacity(collections.len());
        for collection in collections {
            if holds(&state, &context, &collection.name.permission("read")).await? {
                readable.push(collection);
            }
        }
        if readable.is_empty() {
            authz::require_caller(&state, &context, "records:read").await?;
        }
        collections = readable;
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "collections": collections })))
}

async fn get_collection(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path)?;
    authz::require_caller(&state, &context, &name.permission("read")).await?;
    let collection = collections::collection(&state, &context, &name)
        .await?
        .ok_or(RecordsError::CollectionNotFound)?;
    Ok(HttpResponse::Ok().json(&*collection))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectionRequest {
    #[serde(default)]
    sensitive_fields: Vec<String>,
    #[serde(default)]
    access: Access,
}

async fn put_collection(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path)?;
    authz::require_caller(&state, &context, &name.permission("manage")).await?;
    let body: CollectionRequest =
        serde_json::from_value(body::json_body(&req, payload, Accept::Json).await?)
            .map_err(|error| RecordsError::InvalidSettings(error.to_string()))?;
    let sensitive_fields = body
        .sensitive_fields
        .iter()
        .map(|field| FieldName::parse(field).map_err(|_| RecordsError::InvalidField(field.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = Settings {
        sensitive_fields,
        access: body.access,
    };
    let (collection, created) =
        collections::save_collection(&state, &context, &name, settings).await?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(collection))
}
