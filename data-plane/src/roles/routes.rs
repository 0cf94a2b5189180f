//! HTTP for the roles admin, under `/v1/admin/roles`: list and read (`roles:read`), create,
//! replace and delete custom roles (`roles:manage`).

use actix_web::{web, HttpResponse};
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::service::{self, RoleDefinition, RoleName};
use super::{RolesError, MANAGE, READ};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![list_roles, create_role, get_role, replace_role, delete_role,]
}

/// A name that cannot be a role's is a role that does not exist.
fn role_name(path: &str) -> Result<RoleName, ApiError> {
    RoleName::parse(path).map_err(|_| RolesError::NotFound.into())
}

/// The tenant's roles, as `GET /v1/admin/roles` answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RoleList {
    roles: Vec<crate::roles::store::RoleView>,
}

#[route(
    get, "/v1/admin/roles",
    summary = "List roles",
    access = Permission(READ),
    rate = Read,
    tag = "roles",
    responses((status = 200, description = "The roles", body = RoleList)))]
async fn list_roles(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let roles = service::list(&state, &context).await?;
    Ok(HttpResponse::Ok().json(RoleList { roles }))
}

#[route(
    get, "/v1/admin/roles/{name}",
    summary = "Get a role",
    access = Permission(READ),
    rate = Read,
    tag = "roles",
    responses((status = 200, description = "The role", body = crate::roles::service::RoleDetail)))]
async fn get_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let role = service::get(&state, &context, &role_name(&path)?).await?;
    Ok(HttpResponse::Ok().json(role))
}

/// The body of `POST /v1/admin/roles`: a name and the role's definition. Read in two steps
/// (`deny_unknown_fields` does not work through `flatten`); this type describes it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(examples(json!({
    "name": "support-agent",
    "description": "Reads users and tickets; answers tickets",
    "permissions": ["users:read", "records.tickets:read", "records.tickets:update"],
    "includes": ["member"]
})))]
struct NewRole {
    name: String,
    #[serde(flatten)]
    definition: RoleDefinition,
}

#[route(
    post, "/v1/admin/roles",
    summary = "Create a custom role",
    access = Permission(MANAGE),
    audit = event("roles.create", "role"),
    rate = Write,
    tag = "roles",
    request_body = NewRole,
    responses((status = 409, description = "`role_exists`: a role of this name exists; `role_cycle`: the inclusions would form a cycle"), (status = 201, description = "Created", body = crate::roles::service::RoleDetail)))]
async fn create_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    // `deny_unknown_fields` does not work through `flatten`: read the name, then the rest.
    let mut body = body.into_inner();
    let name = body
        .as_object_mut()
        .and_then(|object| object.remove("name"))
        .ok_or_else(|| ApiError::bad_request("invalid_role", "name is required"))?;
    let name: String = serde_json::from_value(name)
        .map_err(|_| ApiError::bad_request("invalid_role", "name must be a string"))?;
    let definition: RoleDefinition = serde_json::from_value(body)
        .map_err(|error| ApiError::bad_request("invalid_role", error.to_string()))?;
    let name = RoleName::parse(name.trim())?;
    let role = service::save(&state, &context, caller, &name, &definition, true).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/v1/admin/roles/{}", name.as_str()),
        ))
        .json(role))
}

#[route(
    put, "/v1/admin/roles/{name}",
    summary = "Replace a custom role",
    access = Permission(MANAGE),
    audit = event("roles.update", "role").id_from("name"),
    rate = Write,
    tag = "roles",
    request_body = RoleDefinition,
    responses((status = 409, description = "`role_cycle`: the inclusions would form a cycle"), (status = 200, description = "Saved", body = crate::roles::service::RoleDetail)))]
async fn replace_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: Json<RoleDefinition>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    let name = role_name(&path)?;
    let role = service::save(&state, &context, caller, &name, &body, false).await?;
    Ok(HttpResponse::Ok().json(role))
}

#[route(
    delete, "/v1/admin/roles/{name}",
    summary = "Delete a custom role",
    access = Permission(MANAGE),
    audit = event("roles.delete", "role").id_from("name"),
    rate = Write,
    tag = "roles",
    responses((status = 409, description = "`role_in_use`: another role includes it"), (status = 204, description = "Deleted")))]
async fn delete_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service::delete(&state, &context, &role_name(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
