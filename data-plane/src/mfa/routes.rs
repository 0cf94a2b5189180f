//! HTTP for MFA: `GET /v1/me/mfa`, `POST /v1/me/mfa/totp/setup`, `POST /v1/me/mfa/totp/enable`,
//! `DELETE /v1/me/mfa/totp`, `POST /v1/me/mfa/backup-codes` and the second step of sign-in,
//! `POST /v1/auth/mfa/verify`.
//!
//! The `/v1/me/mfa` endpoints accept a restricted session (`signed_in`): a user whom the
//! tenant requires to enrol must be able to.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared::error::ApiError;

use super::codes::{CodeInput, OneTimeCode, TotpCode};
use super::service::{self, Proof};
use super::MfaError;
use crate::identity::passwords::Password;
use crate::identity::service::Client;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/me/mfa", web::get().to(get_mfa))
        .route("/v1/me/mfa/totp/setup", web::post().to(setup_totp))
        .route("/v1/me/mfa/totp/enable", web::post().to(enable_totp))
        .route("/v1/me/mfa/totp", web::delete().to(delete_totp))
        .route(
            "/v1/me/mfa/backup-codes",
            web::post().to(regenerate_backup_codes),
        )
        .route("/v1/auth/mfa/verify", web::post().to(verify_mfa));
}

fn no_store() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.insert_header(("Cache-Control", "no-store"));
    response
}

async fn get_mfa(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    Ok(HttpResponse::Ok().json(service::status(&state, &context, principal).await?))
}

async fn setup_totp(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    Ok(no_store().json(service::setup(&state, &context, principal).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    code: CodeInput,
}

async fn enable_totp(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let code = TotpCode::parse(body.code.as_str())?;
    Ok(no_store().json(service::enable(&state, &context, principal, &code).await?))
}

async fn regenerate_backup_codes(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let code = TotpCode::parse(body.code.as_str())?;
    Ok(
        no_store()
            .json(service::regenerate_backup_codes(&state, &context, principal, &code).await?),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisableRequest {
    password: Option<Password>,
    code: Option<CodeInput>,
}

async fn delete_totp(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<DisableRequest>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let DisableRequest { password, code } = body.into_inner();
    let proof = match (password, code) {
        (Some(password), None) => Proof::Password(password),
        (None, Some(code)) => Proof::Code(TotpCode::parse(code.as_str())?),
        _ => {
            return Err(MfaError::InvalidInput(
                "send either the current `password` or a current `code`",
            )
            .into())
        }
    };
    service::disable(&state, &context, principal, &proof).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    mfa_token: String,
    code: CodeInput,
}

async fn verify_mfa(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = OneTimeCode::parse(body.code.as_str())?;
    let client = Client {
        ip: context.source_ip,
        user_agent: context.user_agent.as_deref(),
    };
    let tokens = service::verify(&state, &context, &body.mfa_token, &code, client).await?;
    Ok(no_store().json(tokens))
}
