//! HTTP for MFA: `GET /v1/me/mfa`, `POST /v1/me/mfa/totp/setup`, `POST /v1/me/mfa/totp/enable`,
//! `DELETE /v1/me/mfa/totp`, `POST /v1/me/mfa/backup-codes` and the second step of sign-in,
//! `POST /v1/auth/mfa/verify`.
//!
//! The `/v1/me/mfa` endpoints accept a restricted session (`signed_in`): a user whom the
//! tenant requires to enrol must be able to.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::codes::{CodeInput, OneTimeCode, TotpCode};
use super::service::{self, Proof};
use super::MfaError;
use crate::identity::passwords::Password;
use crate::identity::service::Client;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![
        get_mfa,
        setup_totp,
        enable_totp,
        delete_totp,
        regenerate_backup_codes,
        verify_mfa,
    ]
}

fn no_store() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.insert_header(("Cache-Control", "no-store"));
    response
}

#[route(
    get, "/v1/me/mfa",
    summary = "My MFA status",
    access = RestrictedOk,
    rate = Read,
    tag = "mfa",
    responses((status = 200, description = "The caller's MFA status", body = super::service::MfaStatus)))]
async fn get_mfa(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    Ok(HttpResponse::Ok().json(service::status(&state, &context, principal).await?))
}

#[route(
    post, "/v1/me/mfa/totp/setup",
    summary = "Start TOTP enrolment",
    access = RestrictedOk,
    audit = event("mfa.totp_setup", "user"),
    rate = Write,
    tag = "mfa",
    responses((status = 200, description = "A new TOTP secret, its otpauth URI and QR code, to confirm with /enable", body = super::service::TotpSetup)))]
async fn setup_totp(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    Ok(no_store().json(service::setup(&state, &context, principal).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    code: CodeInput,
}

#[route(
    post, "/v1/me/mfa/totp/enable",
    summary = "Confirm TOTP enrolment",
    access = RestrictedOk,
    audit = event("mfa.totp_enable", "user"),
    rate = Auth,
    tag = "mfa",
    request_body = CodeRequest,
    responses((status = 200, description = "TOTP is on; the backup codes are shown once", body = super::service::BackupCodes)))]
async fn enable_totp(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let code = TotpCode::parse(body.code.as_str())?;
    Ok(no_store().json(service::enable(&state, &context, principal, &code).await?))
}

#[route(
    post, "/v1/me/mfa/backup-codes",
    summary = "Regenerate backup codes",
    access = RestrictedOk,
    audit = event("mfa.backup_codes_regenerate", "user"),
    rate = Write,
    tag = "mfa",
    request_body = CodeRequest,
    responses((status = 200, description = "New backup codes, shown once; the old ones are void", body = super::service::BackupCodes)))]
async fn regenerate_backup_codes(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let code = TotpCode::parse(body.code.as_str())?;
    Ok(
        no_store()
            .json(service::regenerate_backup_codes(&state, &context, principal, &code).await?),
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DisableRequest {
    password: Option<Password>,
    code: Option<CodeInput>,
}

#[route(
    delete, "/v1/me/mfa/totp",
    summary = "Turn TOTP off",
    access = RestrictedOk,
    audit = event("mfa.totp_disable", "user"),
    rate = Write,
    tag = "mfa",
    request_body = DisableRequest,
    responses((status = 409, description = "`totp_not_enabled`; `mfa_required_by_policy`: the tenant requires MFA of this user"), (status = 204, description = "TOTP is off")))]
async fn delete_totp(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<DisableRequest>,
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    mfa_token: String,
    code: CodeInput,
}

#[route(
    post, "/v1/auth/mfa/verify",
    summary = "Answer an MFA challenge",
    access = Public,
    audit = event("auth.mfa_verify", "session"),
    rate = Auth,
    tag = "auth",
    request_body = VerifyRequest,
    responses((status = 401, description = "`invalid_mfa_code`, `mfa_code_reused`, `invalid_mfa_token`"), (status = 200, description = "Signed in: access and refresh tokens", body = crate::identity::service::TokenResponse)))]
async fn verify_mfa(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let code = OneTimeCode::parse(body.code.as_str())?;
    let client = Client {
        ip: context.source_ip,
        user_agent: context.user_agent.as_deref(),
    };
    let tokens = service::verify(&state, &context, &body.mfa_token, &code, client).await?;
    Ok(no_store().json(tokens))
}
