//! HTTP for signing in: `POST /v1/auth/login`, `/v1/auth/refresh`, `/v1/auth/activate`,
//! `GET /v1/me`, `POST /v1/me/password`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use shared::email::Email;
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::passwords::Password;
use super::service::{self, Client};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![login, refresh, activate, get_me, update_me, change_password,]
}

fn client(context: &RequestContext) -> Client<'_> {
    Client {
        ip: context.source_ip,
        user_agent: context.user_agent.as_deref(),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({ "email": "ada@acme.example", "password": "correct horse battery staple" })))]
struct LoginRequest {
    email: String,
    password: Password,
}

#[route(
    post, "/v1/auth/login",
    summary = "Sign in with email and password",
    access = Public,
    audit = event("auth.login", "session"),
    rate = Auth,
    tag = "auth",
    request_body = LoginRequest,
    responses((status = 401, description = "`invalid_credentials`: wrong email or password (one answer for both)"), (status = 403, description = "`account_disabled`, `email_not_verified`, `sso_required`"), (status = 200, description = "Signed in: access and refresh tokens, or an MFA challenge", body = crate::identity::service::LoginOutcome)))]
async fn login(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|error| ApiError::bad_request("invalid_email", error.to_string()))?;
    let outcome =
        service::login(&state, &context, &email, &body.password, client(&context)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(outcome))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

#[route(
    post, "/v1/auth/refresh",
    summary = "Exchange a refresh token for new tokens",
    access = Public,
    audit = event("auth.refresh", "session"),
    rate = Write,
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 401, description = "`invalid_grant`, `refresh_token_reused`: the refresh token is not live (a reused one ends its whole family)"), (status = 409, description = "`refresh_token_already_used`: spent a moment ago by a concurrent refresh"), (status = 200, description = "New access and refresh tokens (the old refresh token is spent)", body = crate::identity::service::TokenResponse)))]
async fn refresh(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tokens = service::refresh(&state, &context, &body.refresh_token, client(&context)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(tokens))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ActivateRequest {
    token: String,
    password: Password,
}

#[route(
    post, "/v1/auth/activate",
    summary = "Activate an invited account and set its password",
    access = Public,
    audit = event("auth.activate", "user"),
    rate = Auth,
    tag = "auth",
    request_body = ActivateRequest,
    responses((status = 200, description = "The invited user is active", body = Activated)))]
async fn activate(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<ActivateRequest>,
) -> Result<HttpResponse, ApiError> {
    let user_id = service::activate(&state, &context, &body.token, &body.password).await?;
    Ok(HttpResponse::Ok().json(Activated {
        user_id,
        status: "active",
    }))
}

/// An activated account.
#[derive(Serialize, utoipa::ToSchema)]
struct Activated {
    user_id: uuid::Uuid,
    /// Always `active`.
    status: &'static str,
}

#[route(
    get, "/v1/me",
    summary = "The signed-in user",
    access = RestrictedOk,
    rate = Read,
    tag = "me",
    responses((status = 200, description = "The signed-in user, their roles and pending restrictions", body = crate::identity::service::Me)))]
async fn get_me(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    Ok(HttpResponse::Ok().json(service::me(&state, &context, principal).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: Password,
    new_password: Password,
}

/// `PATCH /v1/me`: what the user may change about themselves.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeUpdate {
    /// 1 to 200 characters, no control characters.
    pub display_name: String,
}

#[route(
    patch, "/v1/me",
    summary = "Change my display name",
    access = SignedIn,
    audit = event("me.update", "user"),
    rate = Write,
    tag = "me",
    request_body = MeUpdate,
    responses((status = 400, description = "`invalid_input`: an empty or too long name, or one with control characters"), (status = 200, description = "The signed-in user, renamed", body = crate::identity::service::Me)))]
async fn update_me(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<MeUpdate>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.authenticated()?;
    let me = service::rename(&state, &context, principal, &body.display_name).await?;
    Ok(HttpResponse::Ok().json(me))
}

#[route(
    post, "/v1/me/password",
    summary = "Change the password",
    access = RestrictedOk,
    audit = event("me.password_change", "user"),
    rate = Auth,
    tag = "me",
    request_body = PasswordChange,
    responses((status = 204, description = "Changed; other sessions are ended")))]
async fn change_password(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    service::change_password(
        &state,
        &context,
        principal,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
