//! HTTP for signing in: `POST /v1/auth/login`, `/v1/auth/refresh`, `/v1/auth/activate`,
//! `GET /v1/me`, `POST /v1/me/password`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use shared::email::Email;
use shared::error::ApiError;

use super::passwords::Password;
use super::service::{self, Client};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/auth/login", web::post().to(login))
        .route("/v1/auth/refresh", web::post().to(refresh))
        .route("/v1/auth/activate", web::post().to(activate))
        .route("/v1/me", web::get().to(get_me))
        .route("/v1/me/password", web::post().to(change_password));
}

fn client(context: &RequestContext) -> Client<'_> {
    Client {
        ip: context.source_ip,
        user_agent: context.user_agent.as_deref(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: Password,
}

async fn login(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|error| ApiError::bad_request("invalid_email", error.to_string()))?;
    let outcome =
        service::login(&state, &context, &email, &body.password, client(&context)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(outcome))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tokens = service::refresh(&state, &context, &body.refresh_token, client(&context)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(tokens))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateRequest {
    token: String,
    password: Password,
}

async fn activate(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<ActivateRequest>,
) -> Result<HttpResponse, ApiError> {
    let user_id = service::activate(&state, &context, &body.token, &body.password).await?;
    Ok(HttpResponse::Ok().json(json!({ "user_id": user_id, "status": "active" })))
}

async fn get_me(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    Ok(HttpResponse::Ok().json(service::me(&state, &context, principal).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: Password,
    new_password: Password,
}

async fn change_password(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<PasswordChange>,
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
