//! HTTP for the roles admin, under `/v1/admin/roles`: list and read (`roles:read`), create,
//! replace and delete custom roles (`roles:manage`).

use actix_web::{web, HttpResponse};
use shared::error::ApiError;

use super::service::{self, RoleDefinition, RoleName};
use super::{RolesError, MANAGE, READ};
use crate::authz;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/admin/roles")
            .route(web::get().to(list_roles))
            .route(web::post().to(create_role)),
    )
    .service(
        web::resource("/v1/admin/roles/{name}")
            .route(web::get().to(get_role))
            .route(web::put().to(replace_role))
            .route(web::delete().to(delete_role)),
    );
}

/// A name that cannot be a role's is a role that does not exist.
fn role_name(path: &str) -> Result<RoleName, ApiError> {
    RoleName::parse(path).map_err(|_| RolesError::NotFound.into())
}

async fn list_roles(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, READ).await?;
    let roles = service::list(&state, &context).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "roles": roles })))
}

async fn get_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, READ).await?;
    let role = service::get(&state, &context, &role_name(&path)?).await?;
    Ok(HttpResponse::Ok().json(role))
}

async fn create_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
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
    let held = authz::in_force(&state, &context, caller).await?;
    let role = service::save(&state, &context, &held, &name, &definition, true).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/v1/admin/roles/{}", name.as_str()),
        ))
        .json(role))
}

async fn replace_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: web::Json<RoleDefinition>,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
    let name = role_name(&path)?;
    let held = authz::in_force(&state, &context, caller).await?;
    let role = service::save(&state, &context, &held, &name, &body, false).await?;
    Ok(HttpResponse::Ok().json(role))
}

async fn delete_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    service::delete(&state, &context, &role_name(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
