//! HTTP for the users admin, under `/v1/admin/users`: list and read (`users:read`), invite,
//! disable, enable, set roles, reset MFA and delete (`users:manage`).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};
use uuid::Uuid;

use super::service::{self, NewInvitation, PageRequest, RoleAssignment, UserStatus};
use super::{UsersError, MANAGE, READ};
use crate::authz::conditions::{Conditions, ConditionsInput};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

pub fn routes() -> Vec<Route> {
    routes![
        list_users,
        invite_user,
        get_user,
        delete_user,
        disable_user,
        enable_user,
        set_user_roles,
        reset_user_mfa,
    ]
}

/// A user id from the path; anything that is not one names no user (404, like an id of
/// another tenant).
fn user_id(path: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(path).map_err(|_| UsersError::NotFound.into())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[param(inline)]
    status: Option<UserStatus>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[route(
    get, "/v1/admin/users",
    summary = "List users",
    access = Permission(READ),
    rate = Read,
    tag = "users",
    params(ListQuery),
    responses((status = 200, description = "A page of users", body = service::Page)))]
async fn list_users(
    context: RequestContext,
    state: web::Data<DataPlane>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    let after = query
        .cursor
        .as_deref()
        .map(Uuid::parse_str)
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_cursor", "cursor is not one we issued"))?;
    let request = PageRequest {
        status: query.status,
        after,
        limit,
    };
    Ok(HttpResponse::Ok().json(service::list(&state, &context, &request).await?))
}

#[route(
    get, "/v1/admin/users/{id}",
    summary = "Get a user",
    access = Permission(READ),
    rate = Read,
    tag = "users",
    responses((status = 200, description = "The user", body = crate::users::store::UserView)))]
async fn get_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = service::get(&state, &context, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "email": "grace@acme.example",
    "display_name": "Grace Hopper",
    "roles": ["member"]
})))]
struct InvitationRequest {
    email: String,
    display_name: Option<String>,
    roles: Vec<String>,
}

#[route(
    post, "/v1/admin/users/invitations",
    summary = "Invite a user",
    access = Permission(MANAGE),
    audit = event("users.invite", "user"),
    rate = Write,
    tag = "users",
    request_body = InvitationRequest,
    responses((status = 409, description = "`user_exists`: a user with this address exists"), (status = 201, description = "Invited: the user exists, pending, and an invitation mail is on its way", body = crate::users::store::UserView)))]
async fn invite_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<InvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    let body = body.into_inner();
    let email = Email::parse(&body.email)
        .map_err(|error| ApiError::bad_request("invalid_email", error.to_string()))?;
    let invitation = NewInvitation {
        email,
        display_name: service::display_name(body.display_name.as_deref())?,
        roles: body.roles,
    };
    let user = service::invite(&state, &context, caller, invitation).await?;
    Ok(HttpResponse::Created().json(user))
}

#[route(
    post, "/v1/admin/users/{id}/disable",
    summary = "Disable a user",
    access = Permission(MANAGE),
    audit = event("users.disable", "user").id_from("id"),
    rate = Write,
    tag = "users",
    responses((status = 200, description = "Disabled; their sessions are ended", body = crate::users::store::UserView)))]
async fn disable_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    let user = service::disable(&state, &context, caller, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[route(
    post, "/v1/admin/users/{id}/enable",
    summary = "Enable a user",
    access = Permission(MANAGE),
    audit = event("users.enable", "user").id_from("id"),
    rate = Write,
    tag = "users",
    responses((status = 200, description = "Enabled", body = crate::users::store::UserView)))]
async fn enable_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    let user = service::enable(&state, &context, caller, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RolesRequest {
    roles: Vec<AssignmentRequest>,
}

/// A role by name, or a role with the conditions under which it grants.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum AssignmentRequest {
    Role(String),
    WithConditions {
        role: String,
        conditions: ConditionsInput,
    },
}

impl AssignmentRequest {
    fn parse(self) -> Result<RoleAssignment, ApiError> {
        let (role, conditions) = match self {
            AssignmentRequest::Role(role) => (role, None),
            AssignmentRequest::WithConditions { role, conditions } => {
                let conditions = Conditions::parse(&conditions)
                    .map_err(|message| ApiError::bad_request("invalid_conditions", message))?;
                (role, conditions)
            }
        };
        Ok(RoleAssignment {
            role: role.trim().to_owned(),
            conditions,
        })
    }
}

#[route(
    put, "/v1/admin/users/{id}/roles",
    summary = "Set a user's roles",
    access = Permission(MANAGE),
    audit = event("users.set_roles", "user").id_from("id"),
    rate = Write,
    tag = "users",
    request_body = RolesRequest,
    responses((status = 409, description = "`last_owner`: the tenant's last active owner keeps the role"), (status = 200, description = "The user's role assignments", body = crate::users::store::UserView)))]
async fn set_user_roles(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: Json<RolesRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    let assignments = body
        .into_inner()
        .roles
        .into_iter()
        .map(AssignmentRequest::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let user = service::set_roles(&state, &context, caller, user_id(&path)?, assignments).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[route(
    delete, "/v1/admin/users/{id}/mfa",
    summary = "Reset a user's MFA",
    access = Permission(MANAGE),
    audit = event("users.reset_mfa", "user").id_from("id"),
    rate = Write,
    tag = "users",
    responses((status = 200, description = "The user, their MFA removed", body = crate::users::store::UserView)))]
async fn reset_user_mfa(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    let user = service::reset_mfa(&state, &context, caller, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[route(
    delete, "/v1/admin/users/{id}",
    summary = "Delete a user",
    access = Permission(MANAGE),
    audit = event("users.delete", "user").id_from("id"),
    rate = Write,
    tag = "users",
    responses((status = 204, description = "Deleted")))]
async fn delete_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = context.authenticated()?;
    service::delete(&state, &context, caller, user_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
