//! HTTP for SCIM 2.0 under `/scim/v2` (every route: `scim:manage`, a directory's API key), and
//! the tenant admin's group-to-role mapping under `/v1/admin/scim/groups`.
//!
//! Lists take `filter`, `startIndex` (from 1), `count` (at most [`MAX_RESULTS`]),
//! `attributes` and `excludedAttributes`, as query parameters or, for `POST …/.search`, as a
//! `SearchRequest` body; `sortBy` is not supported and is ignored, as RFC 7644 §3.4.2.3 lets a
//! service provider do.

use actix_web::http::header::{HOST, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};
use uuid::Uuid;

use super::filter::{self, AttributePath, Filter};
use super::response::{answer, read_body, LIST_SCHEMA};
use super::schema::{self, ResourceType, GROUP_TYPE, USER_TYPE};
use super::{groups, patch, users, ScimError, MANAGE};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// The most resources one list answer holds.
pub const MAX_RESULTS: usize = 200;

pub fn routes() -> Vec<Route> {
    routes![
        service_provider_config,
        list_resource_types,
        get_resource_type,
        list_schemas,
        get_schema,
        search_all,
        list_users,
        create_user,
        search_users,
        get_user,
        replace_user,
        patch_user,
        delete_user,
        list_groups,
        create_group,
        search_groups,
        get_group,
        replace_group,
        patch_group,
        delete_group,
        list_group_mappings,
        map_group_role,
    ]
}

/// The service's URL as this request reached it (for `meta.location` and `$ref`s).
fn base_url(state: &DataPlane, req: &HttpRequest) -> String {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!(
        "{}://{host}{}",
        state.config.public_scheme,
        shared::routes::SCIM_PREFIX
    )
}

fn resource_id(path: &str, kind: &'static str) -> Result<Uuid, ScimError> {
    Uuid::parse_str(path).map_err(|_| ScimError::NotFound(kind))
}

fn list(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

// ---- discovery -----------------------------------------------------------------------------

#[route(get, "/scim/v2/ServiceProviderConfig", access = UserOrKey(MANAGE), rate = Read)]
async fn service_provider_config(
    req: HttpRequest,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&state, &req);
    Ok(answer(
        StatusCode::OK,
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": { "supported": true },
            "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
            "filter": { "supported": true, "maxResults": MAX_RESULTS },
            "changePassword": { "supported": false },
            "sort": { "supported": false },
            "etag": { "supported": false },
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "API key",
                "description": "A tenant API key whose scopes grant scim:manage, sent as \
                                `Authorization: Bearer tnt_…`",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base}/ServiceProviderConfig"),
            },
        }),
    ))
}

static RESOURCE_TYPES: [&ResourceType; 2] = [&USER_TYPE, &GROUP_TYPE];

#[route(get, "/scim/v2/ResourceTypes", access = UserOrKey(MANAGE), rate = Read)]
async fn list_resource_types(
    req: HttpRequest,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&state, &req);
    let types: Vec<Value> = RESOURCE_TYPES
        .iter()
        .map(|resource_type| schema::resource_type_document(resource_type, &base))
        .collect();
    let total = types.len();
    Ok(answer(StatusCode::OK, &list(types, total, 1)))
}

#[route(get, "/scim/v2/ResourceTypes/{name}", access = UserOrKey(MANAGE), rate = Read)]
async fn get_resource_type(
    req: HttpRequest,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&state, &req);
    let resource_type = RESOURCE_TYPES
        .iter()
        .find(|resource_type| resource_type.name == path.as_str())
        .ok_or(ScimError::NotFound("resource type"))?;
    Ok(answer(
        StatusCode::OK,
        &schema::resource_type_document(resource_type, &base),
    ))
}

static SCHEMAS: [&schema::Schema; 3] = [&schema::USER, &schema::ENTERPRISE_USER, &schema::GROUP];

#[route(get, "/scim/v2/Schemas", access = UserOrKey(MANAGE), rate = Read)]
async fn list_schemas(
    req: HttpRequest,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&state, &req);
    let schemas: Vec<Value> = SCHEMAS
        .iter()
        .map(|schema| schema::schema_document(schema, &base))
        .collect();
    let total = schemas.len();
    Ok(answer(StatusCode::OK, &list(schemas, total, 1)))
}

#[route(get, "/scim/v2/Schemas/{id}", access = UserOrKey(MANAGE), rate = Read)]
async fn get_schema(
    req: HttpRequest,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&state, &req);
    let schema = SCHEMAS
        .iter()
        .find(|schema| schema.id == path.as_str())
        .ok_or(ScimError::NotFound("schema"))?;
    Ok(answer(
        StatusCode::OK,
        &schema::schema_document(schema, &base),
    ))
}

// ---- queries -------------------------------------------------------------------------------

/// A list's parameters, as query parameters or a `SearchRequest` body (RFC 7644 §3.4.3).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryInput {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<Value>,
    excluded_attributes: Option<Value>,
}

/// A list's parameters, parsed.
struct Query {
    filter: Option<Filter>,
    start_index: usize,
    count: usize,
    attributes: Vec<AttributePath>,
    excluded: Vec<AttributePath>,
}

/// An attribute list: a comma-separated string (query) or an array of strings (body).
fn attribute_list(input: Option<&Value>) -> Result<Vec<AttributePath>, ScimError> {
    let text = match input {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ScimError::InvalidSyntax("attributes must be strings".to_owned()))?
            .join(","),
        Some(_) => {
            return Err(ScimError::InvalidSyntax(
                "attributes must be a list of attribute names".to_owned(),
            ))
        }
    };
    filter::parse_attribute_list(&text).map_err(|error| ScimError::InvalidSyntax(error.to_string()))
}

impl QueryInput {
    fn parse(self) -> Result<Query, ScimError> {
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                filter::parse(text).map_err(|error| ScimError::InvalidFilter(error.to_string()))?,
            ),
        };
        let start_index = usize::try_from(self.start_index.unwrap_or(1).max(1)).unwrap_or(1);
        let count = usize::try_from(self.count.unwrap_or(100).clamp(0, MAX_RESULTS as i64))
            .unwrap_or(MAX_RESULTS);
        Ok(Query {
            filter,
            start_index,
            count,
            attributes: attribute_list(self.attributes.as_ref())?,
            excluded: attribute_list(self.excluded_attributes.as_ref())?,
        })
    }
}

/// Query parameters as received: numbers arrive as text.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryParameters {
    filter: Option<String>,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

fn number(text: Option<&str>, name: &str) -> Result<Option<i64>, ScimError> {
    text.map(|text| {
        text.trim()
            .parse::<i64>()
            .map_err(|_| ScimError::InvalidValue(format!("{name} must be an integer")))
    })
    .transpose()
}

fn query_of(req: &HttpRequest) -> Result<Query, ScimError> {
    let parameters = web::Query::<QueryParameters>::from_query(req.query_string())
        .map_err(|error| ScimError::InvalidSyntax(format!("query: {error}")))?
        .into_inner();
    QueryInput {
        filter: parameters.filter,
        start_index: number(parameters.start_index.as_deref(), "startIndex")?,
        count: number(parameters.count.as_deref(), "count")?,
        attributes: parameters.attributes.map(Value::String),
        excluded_attributes: parameters.excluded_attributes.map(Value::String),
    }
    .parse()
}

/// A `SearchRequest` body as a list's parameters.
fn search_query(body: Value) -> Result<Query, ScimError> {
    let schemas = body["schemas"].as_array().cloned().unwrap_or_default();
    if !schemas.contains(&json!(
        "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
    )) {
        return Err(ScimError::InvalidSyntax(
            "a search names the schema urn:ietf:params:scim:api:messages:2.0:SearchRequest"
                .to_owned(),
        ));
    }
    let input: QueryInput = serde_json::from_value(body)
        .map_err(|error| ScimError::InvalidSyntax(format!("search request: {error}")))?;
    input.parse()
}

fn shown(document: &Value, resource_type: &ResourceType, query: &Query) -> Value {
    if query.attributes.is_empty() && query.excluded.is_empty() {
        return document.clone();
    }
    schema::project(document, resource_type, &query.attributes, &query.excluded)
}

/// The page `query` asks for of `matching` (each document with its resource type).
fn page_of(matching: &[(Value, &ResourceType)], query: &Query) -> Value {
    let resources: Vec<Value> = matching
        .iter()
        .skip(query.start_index - 1)
        .take(query.count)
        .map(|(document, resource_type)| shown(document, resource_type, query))
        .collect();
    list(resources, matching.len(), query.start_index)
}

fn page(matching: Vec<Value>, resource_type: &'static ResourceType, query: &Query) -> Value {
    let typed: Vec<(Value, &ResourceType)> = matching
        .into_iter()
        .map(|document| (document, resource_type))
        .collect();
    page_of(&typed, query)
}

#[route(post, "/scim/v2/.search",
    access = UserOrKey(MANAGE),
    audit = event("scim.search", "directory"),
    rate = Read)]
async fn search_all(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let query = search_query(read_body(&req, payload).await?)?;
    let base = base_url(&state, &req);
    let filter = query.filter.as_ref();
    let mut matching: Vec<(Value, &ResourceType)> =
        users::matching(&state, &context, filter, &base)
            .await?
            .into_iter()
            .map(|document| (document, &USER_TYPE))
            .collect();
    let groups = groups::matching(&state, &context, filter, &base).await?;
    matching.extend(groups.into_iter().map(|document| (document, &GROUP_TYPE)));
    Ok(answer(StatusCode::OK, &page_of(&matching, &query)))
}

// ---- users ---------------------------------------------------------------------------------

#[route(get, "/scim/v2/Users", access = UserOrKey(MANAGE), rate = Read)]
async fn list_users(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let query = query_of(&req)?;
    let base = base_url(&state, &req);
    let matching = users::matching(&state, &context, query.filter.as_ref(), &base).await?;
    Ok(answer(StatusCode::OK, &page(matching, &USER_TYPE, &query)))
}

#[route(post, "/scim/v2/Users/.search",
    access = UserOrKey(MANAGE),
    audit = event("scim.users.search", "user"),
    rate = Read)]
async fn search_users(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let query = search_query(read_body(&req, payload).await?)?;
    let base = base_url(&state, &req);
    let matching = users::matching(&state, &context, query.filter.as_ref(), &base).await?;
    Ok(answer(StatusCode::OK, &page(matching, &USER_TYPE, &query)))
}

/// A created resource's answer: 201 with `Location`.
fn created(document: &Value) -> HttpResponse {
    let location = document["meta"]["location"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut response = answer(StatusCode::CREATED, document);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn note_created(req: &HttpRequest, document: &Value) {
    crate::audit::note(
        req,
        crate::audit::AuditNote {
            resource_id: document["id"].as_str().map(str::to_owned),
            ..Default::default()
        },
    );
}

#[route(post, "/scim/v2/Users",
    access = UserOrKey(MANAGE),
    audit = event("scim.users.create", "user"),
    rate = Write)]
async fn create_user(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let document = read_body(&req, payload).await?;
    let base = base_url(&state, &req);
    let user = users::create(&state, &context, document, &base).await?;
    note_created(&req, &user);
    Ok(created(&user))
}

#[route(get, "/scim/v2/Users/{id}", access = UserOrKey(MANAGE), rate = Read)]
async fn get_user(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = query_of(&req)?;
    let base = base_url(&state, &req);
    let user = users::get(&state, &context, resource_id(&path, "User")?, &base).await?;
    Ok(answer(StatusCode::OK, &shown(&user, &USER_TYPE, &query)))
}

#[route(put, "/scim/v2/Users/{id}",
    access = UserOrKey(MANAGE),
    audit = event("scim.users.replace", "user").id_from("id"),
    rate = Write)]
async fn replace_user(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = resource_id(&path, "User")?;
    let document = read_body(&req, payload).await?;
    let actor = users::actor(&context)?;
    let base = base_url(&state, &req);
    let user = users::replace(&state, &context, actor, id, document, &base).await?;
    Ok(answer(StatusCode::OK, &user))
}

#[route(patch, "/scim/v2/Users/{id}",
    access = UserOrKey(MANAGE),
    audit = event("scim.users.patch", "user").id_from("id"),
    rate = Write)]
async fn patch_user(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = resource_id(&path, "User")?;
    let operations =
        patch::parse_request(&read_body(&req, payload).await?).map_err(ScimError::from)?;
    let actor = users::actor(&context)?;
    let base = base_url(&state, &req);
    let user = users::patch(&state, &context, actor, id, &operations, &base).await?;
    Ok(answer(StatusCode::OK, &user))
}

#[route(delete, "/scim/v2/Users/{id}",
    access = UserOrKey(MANAGE),
    audit = event("scim.users.delete", "user").id_from("id"),
    rate = Write)]
async fn delete_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = resource_id(&path, "User")?;
    let actor = users::actor(&context)?;
    users::delete(&state, &context, actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- groups --------------------------------------------------------------------------------

#[route(get, "/scim/v2/Groups", access = UserOrKey(MANAGE), rate = Read)]
async fn list_groups(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let query = query_of(&req)?;
    let base = base_url(&state, &req);
    let matching = groups::matching(&state, &context, query.filter.as_ref(), &base).await?;
    Ok(answer(StatusCode::OK, &page(matching, &GROUP_TYPE, &query)))
}

#[route(post, "/scim/v2/Groups/.search",
    access = UserOrKey(MANAGE),
    audit = event("scim.groups.search", "group"),
    rate = Read)]
async fn search_groups(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let query = search_query(read_body(&req, payload).await?)?;
    let base = base_url(&state, &req);
    let matching = groups::matching(&state, &context, query.filter.as_ref(), &base).await?;
    Ok(answer(StatusCode::OK, &page(matching, &GROUP_TYPE, &query)))
}

#[route(post, "/scim/v2/Groups",
    access = UserOrKey(MANAGE),
    audit = event("scim.groups.create", "group"),
    rate = Write)]
async fn create_group(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let document = read_body(&req, payload).await?;
    let base = base_url(&state, &req);
    let group = groups::create(&state, &context, document, &base).await?;
    note_created(&req, &group);
    Ok(created(&group))
}

#[route(get, "/scim/v2/Groups/{id}", access = UserOrKey(MANAGE), rate = Read)]
async fn get_group(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = query_of(&req)?;
    let base = base_url(&state, &req);
    let group = groups::get(&state, &context, resource_id(&path, "Group")?, &base).await?;
    Ok(answer(StatusCode::OK, &shown(&group, &GROUP_TYPE, &query)))
}

#[route(put, "/scim/v2/Groups/{id}",
    access = UserOrKey(MANAGE),
    audit = event("scim.groups.replace", "group").id_from("id"),
    rate = Write)]
async fn replace_group(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = resource_id(&path, "Group")?;
    let document = read_body(&req, payload).await?;
    let base = base_url(&state, &req);
    let group = groups::replace(&state, &context, id, document, &base).await?;
    Ok(answer(StatusCode::OK, &group))
}

#[route(patch, "/scim/v2/Groups/{id}",
    access = UserOrKey(MANAGE),
    audit = event("scim.groups.patch", "group").id_from("id"),
    rate = Write)]
async fn patch_group(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = resource_id(&path, "Group")?;
    let operations =
        patch::parse_request(&read_body(&req, payload).await?).map_err(ScimError::from)?;
    let base = base_url(&state, &req);
    let group = groups::patch(&state, &context, id, &operations, &base).await?;
    Ok(answer(StatusCode::OK, &group))
}

#[route(delete, "/scim/v2/Groups/{id}",
    access = UserOrKey(MANAGE),
    audit = event("scim.groups.delete", "group").id_from("id"),
    rate = Write)]
async fn delete_group(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    groups::delete(&state, &context, resource_id(&path, "Group")?).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- the tenant admin's mapping ------------------------------------------------------------

#[route(
    get, "/v1/admin/scim/groups",
    summary = "List directory groups and the roles they give",
    access = Permission(crate::users::READ),
    rate = Read,
    tag = "scim",
    responses((status = 200, description = "Every group a directory made, with its role", body = Vec<groups::GroupMapping>)))]
async fn list_group_mappings(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(groups::mappings(&state, &context).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({ "role": "developer" })))]
struct MappingRequest {
    /// The role the group's members hold; `null` to map the group to none.
    role: Option<String>,
}

#[route(
    put, "/v1/admin/scim/groups/{id}/role",
    summary = "Map a directory group to a role",
    access = Permission(crate::users::MANAGE),
    audit = event("scim.groups.map_role", "group").id_from("id"),
    rate = Write,
    tag = "scim",
    request_body = MappingRequest,
    responses(
        (status = 404, description = "`not_found`: no such group"),
        (status = 200, description = "Mapped; its members' roles follow at once", body = groups::GroupMapping)))]
async fn map_group_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: Json<MappingRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    let id = resource_id(&path, "group")?;
    let role = body.into_inner().role.map(|role| role.trim().to_owned());
    let mapping = groups::map_role(&state, &context, caller, id, role).await?;
    Ok(HttpResponse::Ok().json(mapping))
}
