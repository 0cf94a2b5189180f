//! The tenant's public key material and discovery document:
//! `GET /v1/.well-known/jwks.json` and `GET /v1/.well-known/openid-configuration`.

use actix_web::{web, HttpResponse};
use serde_json::json;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::access;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![jwks, discovery,]
}

#[route(
    get, "/v1/.well-known/jwks.json",
    summary = "Token-signing keys (JWKS)",
    access = Public,
    rate = Read,
    tag = "tokens",
    responses((status = 200, description = "The tenant's token-signing public keys (JWK set)")))]
async fn jwks(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let keys = state
        .signing_keys
        .for_tenant(&state.tenant_db, &state.data_keys, &context.scope)
        .await
        .map_err(|error| ApiError::internal(&error))?;
    let keys: Vec<_> = keys
        .published
        .iter()
        .map(|key| {
            json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": key.kid, "x": key.x })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(json!({ "keys": keys })))
}

#[route(
    get, "/v1/.well-known/openid-configuration",
    summary = "Issuer metadata",
    access = Public,
    rate = Read,
    tag = "tokens",
    responses((status = 200, description = "Issuer metadata")))]
async fn discovery(context: RequestContext, state: web::Data<DataPlane>) -> HttpResponse {
    let issuer = access::issuer(
        &state.config.public_scheme,
        context.tenant.tenant.slug.as_str(),
        &state.config.base_domain,
    );
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/v1/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/v1/auth/refresh"),
        "userinfo_endpoint": format!("{issuer}/v1/me"),
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": ["password", "refresh_token"],
        "subject_types_supported": ["public"],
        "claims_supported": ["sub", "tid", "sid", "roles", "amr", "iat", "exp", "iss", "aud"],
    }))
}
