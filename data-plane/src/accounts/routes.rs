//! HTTP for the mailbox flows: `POST /v1/auth/register`, `/v1/auth/verify-email`,
//! `/v1/auth/verify-email/resend`, `/v1/auth/password-reset`,
//! `/v1/auth/password-reset/confirm`.
//!
//! Register, resend and reset answer `202 Accepted` with a fixed body whatever happened, so
//! the answer never tells whether an address has an account.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use shared::email::Email;
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};
use uuid::Uuid;

use super::service::{self, Registration};
use super::AccountsError;
use crate::identity::passwords::Password;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![
        register,
        verify_email,
        resend_verification,
        request_password_reset,
        confirm_password_reset,
    ]
}

fn parse_email(raw: &str) -> Result<Email, AccountsError> {
    Email::parse(raw).map_err(|_| AccountsError::InvalidEmail)
}

/// The one answer of the endpoints that must not reveal whether an address is known.
#[derive(Serialize, utoipa::ToSchema)]
struct Accepted {
    /// Always `accepted`.
    status: &'static str,
    message: &'static str,
}

fn accepted() -> HttpResponse {
    HttpResponse::Accepted().json(Accepted {
        status: "accepted",
        message: "if the address can receive this mail, it is on its way",
    })
}

/// A verified address.
#[derive(Serialize, utoipa::ToSchema)]
struct EmailVerified {
    user_id: Uuid,
    /// Always true.
    email_verified: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    email: String,
    password: Password,
    display_name: Option<String>,
}

#[route(
    post, "/v1/auth/register",
    summary = "Register an account",
    access = Public,
    audit = event("auth.register", "user"),
    rate = Auth,
    tag = "auth",
    request_body = RegisterRequest,
    responses((status = 403, description = "`self_signup_disabled`: the tenant does not allow self sign-up"), (status = 202, description = "Accepted: a verification mail is on its way (the same answer whether or not the address was known)", body = Accepted)))]
async fn register(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let registration = Registration {
        email: parse_email(&body.email)?,
        password: body.password,
        display_name: body.display_name,
    };
    service::register(&state, &context, registration).await?;
    Ok(accepted())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    token: String,
}

#[route(
    post, "/v1/auth/verify-email",
    summary = "Verify an email address",
    access = Public,
    audit = event("auth.verify_email", "user"),
    rate = Auth,
    tag = "auth",
    request_body = TokenRequest,
    responses((status = 200, description = "The address is verified", body = EmailVerified)))]
async fn verify_email(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let user_id = service::verify_email(&state, &context, &body.token).await?;
    Ok(HttpResponse::Ok().json(EmailVerified {
        user_id,
        email_verified: true,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EmailRequest {
    email: String,
}

#[route(
    post, "/v1/auth/verify-email/resend",
    summary = "Send the verification mail again",
    access = Public,
    audit = event("auth.verify_email_resend", "user"),
    rate = Auth,
    tag = "auth",
    request_body = EmailRequest,
    responses((status = 202, description = "Accepted (the same answer whatever the address)", body = Accepted)))]
async fn resend_verification(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.email)?;
    service::resend_verification(&state, &context, &email).await?;
    Ok(accepted())
}

#[route(
    post, "/v1/auth/password-reset",
    summary = "Ask for a password-reset mail",
    access = Public,
    audit = event("auth.password_reset_request", "user"),
    rate = Auth,
    tag = "auth",
    request_body = EmailRequest,
    responses((status = 202, description = "Accepted (the same answer whatever the address)", body = Accepted)))]
async fn request_password_reset(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<EmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = parse_email(&body.email)?;
    service::request_password_reset(&state, &context, &email).await?;
    Ok(accepted())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResetConfirmation {
    token: String,
    password: Password,
}

#[route(
    post, "/v1/auth/password-reset/confirm",
    summary = "Set a new password with a reset token",
    access = Public,
    audit = event("auth.password_reset", "user"),
    rate = Auth,
    tag = "auth",
    request_body = ResetConfirmation,
    responses((status = 204, description = "The password is set; every session is ended")))]
async fn confirm_password_reset(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<ResetConfirmation>,
) -> Result<HttpResponse, ApiError> {
    service::confirm_password_reset(&state, &context, &body.token, &body.password).await?;
    Ok(HttpResponse::NoContent().finish())
}
