//! The tenant's public key material and discovery document:
//! `GET /v1/.well-known/jwks.json` and `GET /v1/.well-known/openid-configuration`.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::access;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![jwks, discovery,]
}

/// The tenant's token-signing public keys (RFC 7517 JWK set).
#[derive(Serialize, utoipa::ToSchema)]
struct Jwks {
    keys: Vec<Jwk>,
}

/// An Ed25519 public key (RFC 8037).
#[derive(Serialize, utoipa::ToSchema)]
struct Jwk {
    /// `OKP`.
    kty: &'static str,
    /// `Ed25519`.
    crv: &'static str,
    /// `EdDSA`.
    alg: &'static str,
    /// `sig`.
    #[serde(rename = "use")]
    key_use: &'static str,
    kid: String,
    /// The public key, base64url.
    x: String,
}

#[route(
    get, "/v1/.well-known/jwks.json",
    summary = "Token-signing keys (JWKS)",
    access = Public,
    rate = Read,
    tag = "tokens",
    responses((status = 200, description = "The tenant's token-signing public keys (JWK set)", body = Jwks)))]
async fn jwks(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let keys = state
        .signing_keys
        .for_tenant(&state.tenant_db, &state.data_keys, &context.scope)
        .await?;
    let keys = keys
        .published
        .iter()
        .map(|key| Jwk {
            kty: "OKP",
            crv: "Ed25519",
            alg: "EdDSA",
            key_use: "sig",
            kid: key.kid.clone(),
            x: key.x.clone(),
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(Jwks { keys }))
}

/// The issuer's metadata (OpenID Connect Discovery 1.0 names).
#[derive(Serialize, utoipa::ToSchema)]
struct IssuerMetadata {
    issuer: String,
    jwks_uri: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    id_token_signing_alg_values_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    grant_types_supported: Vec<&'static str>,
    subject_types_supported: Vec<&'static str>,
    claims_supported: Vec<&'static str>,
}

#[route(
    get, "/v1/.well-known/openid-configuration",
    summary = "Issuer metadata",
    access = Public,
    rate = Read,
    tag = "tokens",
    responses((status = 200, description = "Issuer metadata", body = IssuerMetadata)))]
async fn discovery(context: RequestContext, state: web::Data<DataPlane>) -> HttpResponse {
    let issuer = access::issuer(
        &state.config.public_scheme,
        context.tenant.tenant.slug.as_str(),
        &state.config.base_domain,
    );
    HttpResponse::Ok().json(IssuerMetadata {
        jwks_uri: format!("{issuer}/v1/.well-known/jwks.json"),
        token_endpoint: format!("{issuer}/v1/auth/refresh"),
        userinfo_endpoint: format!("{issuer}/v1/me"),
        issuer,
        id_token_signing_alg_values_supported: vec!["EdDSA"],
        token_endpoint_auth_methods_supported: vec!["none"],
        grant_types_supported: vec!["password", "refresh_token"],
        subject_types_supported: vec!["public"],
        claims_supported: vec![
            "sub", "tid", "sid", "roles", "amr", "iat", "exp", "iss", "aud",
        ],
    })
}
