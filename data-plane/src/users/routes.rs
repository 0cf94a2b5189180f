//! HTTP for the users admin, under `/v1/admin/users`: list and read (`users:read`), invite,
//! disable, enable, set roles, reset MFA and delete (`users:manage`).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;
use uuid::Uuid;

use super::service::{self, NewInvitation, PageRequest, RoleAssignment, UserStatus};
use super::{UsersError, MANAGE, READ};
use crate::authz;
use crate::authz::conditions::{Conditions, ConditionsInput};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;
const MAX_DISPLAY_NAME: usize = 200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/users", web::get().to(list_users))
        .route("/v1/admin/users/invitations", web::post().to(invite_user))
        .service(
            web::resource("/v1/admin/users/{id}")
                .route(web::get().to(get_user))
                .route(web::delete().to(delete_user)),
        )
        .route("/v1/admin/users/{id}/disable", web::post().to(disable_user))
        .route("/v1/admin/users/{id}/enable", web::post().to(enable_user))
        .route("/v1/admin/users/{id}/roles", web::put().to(set_user_roles))
        .route("/v1/admin/users/{id}/mfa", web::delete().to(reset_user_mfa));
}

/// A user id from the path; anything that is not one names no user (404, like an id of
/// another tenant).
fn user_id(path: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(path).map_err(|_| UsersError::NotFound.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<UserStatus>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_users(
    context: RequestContext,
    state: web::Data<DataPlane>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, READ).await?;
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

async fn get_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, READ).await?;
    let user = service::get(&state, &context, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvitationRequest {
    email: String,
    display_name: Option<String>,
    roles: Vec<String>,
}

async fn invite_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<InvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
    let held = authz::in_force(&state, &context, caller).await?;
    let body = body.into_inner();
    let email = Email::parse(&body.email)
        .map_err(|error| ApiError::bad_request("invalid_email", error.to_string()))?;
    let display_name = body.display_name.unwrap_or_default().trim().to_owned();
    if display_name.chars().count() > MAX_DISPLAY_NAME || display_name.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "invalid_input",
            format!("display_name must be at most {MAX_DISPLAY_NAME} characters, without control characters"),
        ));
    }
    let invitation = NewInvitation {
        email,
        display_name,
        roles: body.roles,
    };
    let user = service::invite(&state, &context, caller, &held, invitation).await?;
    Ok(HttpResponse::Created().json(user))
}

async fn disable_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
    let user = service::disable(&state, &context, caller, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(user))
}

async fn enable_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
    let user = service::enable(&state, &context, caller, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesRequest {
    roles: Vec<AssignmentRequest>,
}

/// A role by name, or a role with the conditions under which it grants.
#[derive(Deserialize)]
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

async fn set_user_roles(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: web::Json<RolesRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
    let held = authz::in_force(&state, &context, caller).await?;
    let assignments = body
        .into_inner()
        .roles
        .into_iter()
        .map(AssignmentRequest::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let user = service::set_roles(
        &state,
        &context,
        caller,
        &held,
        user_id(&path)?,
        assignments,
    )
    .await?;
    Ok(HttpResponse::Ok().json(user))
}

async fn reset_user_mfa(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
    let user = service::reset_mfa(&state, &context, caller, user_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(user))
}

async fn delete_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authz::require(&state, &context, MANAGE).await?;
    service::delete(&state, &context, caller, user_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
