//! HTTP for records and collections. Each route's permission names its collection
//! (`records.{collection}:read`), so the guard checks it before the handler runs; what else
//! the caller may do (see sensitive fields, every record of an `owner` collection) is the
//! service's [`service::rights`].
//!
//! Permissions: list collections (any caller: the answer is what they may read), read a
//! collection and its records (`read`), save its settings (`manage`), create, update (PUT and
//! PATCH) and delete records (`create`, `update`, `delete`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use shared::error::ApiError;
use shared::routes::{route, routes, Route};
use uuid::Uuid;

use super::body::{self, Accept};
use super::collections::{self, Settings};
use super::document::Document;
use super::names::{CollectionName, FieldName};
use super::query::ListQuery;
use super::service::{self, Change, Precondition, RecordView};
use super::store::{Access, Collection};
use super::RecordsError;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![
        list_collections,
        get_collection,
        put_collection,
        create_record,
        list_records,
        get_record,
        replace_record,
        patch_record,
        delete_record,
    ]
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

#[route(post, "/v1/collections/{collection}/records",
    summary = "Create a record",
    access = UserOrKey("records.{collection}:create"),
    audit = event("records.create", "record"),
    rate = Write,
    tag = "records",
    request_body(content = Document, description = "The record's fields: a JSON object", example = json!({ "customer": "Globex", "amount": 1250.5, "currency": "EUR", "paid": false })),
    responses((status = 201, description = "Created; `Location` and `ETag` name the record", body = RecordView)))]
async fn create_record(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path)?;
    let rights = service::rights(&state, &context, context.caller()?, &name).await?;
    let document = Document::from_value(body::json_body(&req, payload, Accept::Json).await?)?;
    let written = service::create(&state, &context, rights.user_id, &name, document).await?;
    let view = written.view(rights.read_sensitive);
    let location = format!("/v1/collections/{name}/records/{}", view.id);
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, location));
    Ok(record_response(response, &view))
}

#[route(get, "/v1/collections/{collection}/records/{id}",
    summary = "Get a record",
    access = UserOrKey("records.{collection}:read"),
    rate = Read,
    tag = "records",
    responses((status = 200, description = "The record; `ETag` is its version", body = RecordView)))]
async fn get_record(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path.0)?;
    let id = record_id(&path.1)?;
    let rights = service::rights(&state, &context, context.caller()?, &name).await?;
    let view = service::read(&state, &context, &rights, &name, id).await?;
    Ok(record_response(HttpResponse::Ok(), &view))
}

#[route(get, "/v1/collections/{collection}/records",
    summary = "List records",
    access = UserOrKey("records.{collection}:read"),
    rate = Read,
    tag = "records",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200,
            description = "Records per page (default 50)"),
        ("sort" = Option<String>, Query,
            description = "`created` (default), `-created`, `updated` or `-updated`; ties by id"),
        ("cursor" = Option<String>, Query,
            description = "The previous page's `next_cursor`, with the same `sort`"),
    ),
    responses((status = 200, description = "A page of records and the cursor of the next; \
        `filter.<field>=<value>` (a JSON scalar, up to 16) keeps only records whose top-level \
        field equals it", body = service::Page)))]
async fn list_records(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path)?;
    let query = ListQuery::parse(req.query_string())?;
    let rights = service::rights(&state, &context, context.caller()?, &name).await?;
    let page = service::read_page(&state, &context, &rights, &name, &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[route(put, "/v1/collections/{collection}/records/{id}",
    summary = "Replace a record",
    access = UserOrKey("records.{collection}:update"),
    audit = event("records.replace", "record").id_from("id"),
    rate = Write,
    tag = "records",
    request_body(content = Document, description = "The record's new fields: a JSON object", example = json!({ "customer": "Globex", "amount": 1250.5, "currency": "EUR", "paid": true })),
    responses((status = 200, description = "Replaced; `ETag` is the new version", body = RecordView)))]
async fn replace_record(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let target = Target::of(&req, &path)?;
    let document = Document::from_value(body::json_body(&req, payload, Accept::Json).await?)?;
    update(&context, &state, target, Change::Replace(document)).await
}

#[route(patch, "/v1/collections/{collection}/records/{id}",
    summary = "Update a record (JSON merge patch)",
    access = UserOrKey("records.{collection}:update"),
    audit = event("records.update", "record").id_from("id"),
    rate = Write,
    tag = "records",
    request_body(content = Document, content_type = "application/merge-patch+json",
        description = "A JSON merge patch (RFC 7396): a field set to `null` is removed; \
                       `application/json` is taken too",
        example = json!({ "paid": true, "currency": null })),
    responses((status = 200, description = "Updated (JSON merge patch); `ETag` is the new version", body = RecordView)))]
async fn patch_record(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let target = Target::of(&req, &path)?;
    let patch = body::json_body(&req, payload, Accept::MergePatch).await?;
    if !patch.is_object() {
        return Err(RecordsError::NotAnObject.into());
    }
    update(&context, &state, target, Change::MergePatch(patch)).await
}

/// The record a replace or a patch is for, and the request's `If-Match`.
struct Target {
    collection: CollectionName,
    id: Uuid,
    precondition: Option<Precondition>,
}

impl Target {
    fn of(req: &HttpRequest, path: &(String, String)) -> Result<Self, ApiError> {
        Ok(Self {
            collection: collection_name(&path.0)?,
            id: record_id(&path.1)?,
            precondition: if_match(req)?,
        })
    }
}

async fn update(
    context: &RequestContext,
    state: &DataPlane,
    target: Target,
    change: Change,
) -> Result<HttpResponse, ApiError> {
    let rights = service::rights(state, context, context.caller()?, &target.collection).await?;
    let written = service::update(
        state,
        context,
        &rights,
        &target.collection,
        target.id,
        target.precondition.as_ref(),
        change,
    )
    .await?;
    Ok(record_response(
        HttpResponse::Ok(),
        &written.view(rights.read_sensitive),
    ))
}

#[route(delete, "/v1/collections/{collection}/records/{id}",
    summary = "Delete a record",
    access = UserOrKey("records.{collection}:delete"),
    audit = event("records.delete", "record").id_from("id"),
    rate = Write,
    tag = "records",
    responses((status = 204, description = "Deleted")))]
async fn delete_record(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path.0)?;
    let id = record_id(&path.1)?;
    let precondition = if_match(&req)?;
    let rights = service::rights(&state, &context, context.caller()?, &name).await?;
    service::delete(&state, &context, &rights, &name, id, precondition.as_ref()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The collections a caller may read, as `GET /v1/collections` answers.
#[derive(Serialize, utoipa::ToSchema)]
struct CollectionList {
    collections: Vec<Collection>,
}

#[route(get, "/v1/collections",
    summary = "List the collections I may read",
    access = Caller,
    rate = Read,
    tag = "records",
    responses((status = 200, description = "The collections the caller may read", body = CollectionList)))]
async fn list_collections(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let collections = service::readable_collections(&state, &context, context.caller()?).await?;
    Ok(HttpResponse::Ok().json(CollectionList { collections }))
}

#[route(get, "/v1/collections/{collection}",
    summary = "Get a collection's settings",
    access = UserOrKey("records.{collection}:read"),
    rate = Read,
    tag = "records",
    responses((status = 200, description = "The collection's settings", body = Collection)))]
async fn get_collection(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path)?;
    let collection = collections::collection(&state, &context, &name)
        .await?
        .ok_or(RecordsError::CollectionNotFound)?;
    Ok(HttpResponse::Ok().json(&*collection))
}

/// A collection's settings, as an admin saves them.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({ "sensitive_fields": ["iban", "tax_id"], "access": "owner" })))]
struct CollectionRequest {
    /// Top-level fields to store encrypted (absent: none).
    #[serde(default)]
    sensitive_fields: Vec<String>,
    /// Who sees the records (absent: `shared`).
    #[serde(default)]
    access: Access,
}

#[route(put, "/v1/collections/{collection}",
    summary = "Save a collection's settings",
    access = UserOrKey("records.{collection}:manage"),
    audit = event("collections.update", "collection").id_from("collection"),
    rate = Write,
    tag = "records",
    request_body = CollectionRequest,
    responses((status = 200, description = "Saved", body = Collection), (status = 201, description = "Created with these settings", body = Collection)))]
async fn put_collection(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = collection_name(&path)?;
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
