//! Access tokens: JWTs signed with the tenant's active Ed25519 key.
//!
//! Claims: `sub` (user), `tid` (tenant), `sid` (session), `roles`, `amr` (how the user
//! authenticated: `pwd`, `otp`, …), `iat`, `exp`, `iss` and `aud` (both the tenant's
//! issuer URL), `jti`, and `restr` when the session may only do a few things until the user
//! acts (change an expired password, enrol in required MFA).

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::signing_keys::TenantSigningKeys;
use super::TokenError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    pub tid: Uuid,
    pub sid: Uuid,
    pub roles: Vec<String>,
    pub amr: Vec<String>,
    /// The identity provider (its name in the tenant) after an SSO sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restr: Vec<Restriction>,
}

/// What a session must do before it may do anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Restriction {
    /// The password is older than the tenant allows: change it.
    PasswordChange,
    /// The tenant requires MFA for this user and none is set up: enrol.
    MfaEnrollment,
}

/// Why a presented access token was refused. Every variant is a 401 to the client; the
/// distinction is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not accepted")]
    Algorithm,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token issued for another tenant")]
    OtherTenant,
    #[error("token expired")]
    Expired,
}

/// The issuer (and audience) of a tenant's tokens: its public base URL.
pub fn issuer(scheme: &str, slug: &str, base_domain: &str) -> String {
    format!("{scheme}://{slug}.{base_domain}")
}

pub struct NewAccessToken<'a> {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub roles: Vec<String>,
    pub amr: Vec<String>,
    pub idp: Option<String>,
    pub restrictions: Vec<Restriction>,
    pub issuer: &'a str,
    pub now: OffsetDateTime,
    pub ttl: std::time::Duration,
}

pub fn issue(keys: &TenantSigningKeys, token: NewAccessToken<'_>) -> Result<String, TokenError> {
    let iat = token.now.unix_timestamp();
    let claims = AccessClaims {
        sub: token.user_id,
        tid: token.tenant_id,
        sid: token.session_id,
        roles: token.roles,
        amr: token.amr,
        idp: token.idp,
        iat,
        exp: iat + i64::try_from(token.ttl.as_secs()).unwrap_or(900),
        iss: token.issuer.to_owned(),
        aud: token.issuer.to_owned(),
        jti: Uuid::now_v7(),
        restr: token.restrictions,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.active.kid.clone());
    jsonwebtoken::encode(&header, &claims, &keys.active.encoding)
        .map_err(|error| TokenError::Signing(error.to_string()))
}

/// Seconds past `exp` a token is still accepted (clock skew between nodes).
pub const LEEWAY_SECONDS: i64 = 30;

/// Whether a token expiring at `exp` is still accepted at `now` (both Unix seconds). The one
/// expiry rule: the full check and the cache of verified tokens both apply it, at the node's
/// clock (`DataPlane::clock`), so a manual clock moves token expiry too.
pub fn unexpired(exp: i64, now: i64) -> bool {
    exp >= now - LEEWAY_SECONDS
}

/// An accepted token: its claims and the key that signed it.
pub struct Verified {
    pub claims: std::sync::Arc<AccessClaims>,
    pub kid: String,
}

/// Verifies a token presented to tenant `tenant_id` whose issuer is `expected_issuer`, at
/// `now`. Requests go through [`super::verified::VerifiedTokens`], which calls this on a miss.
pub fn verify(
    keys: &TenantSigningKeys,
    token: &str,
    tenant_id: Uuid,
    expected_issuer: &str,
    now: OffsetDateTime,
) -> Result<Verified, Rejection> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
    if header.alg != Algorithm::EdDSA {
        return Err(Rejection::Algorithm);
    }
    let kid = header.kid.ok_or(Rejection::UnknownKey)?;
    let key = keys.published(&kid).ok_or(Rejection::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    // jsonwebtoken would read the system clock; expiry is checked below, at `now`.
    validation.validate_exp = false;
    validation.set_audience(&[expected_issuer]);
    validation.set_issuer(&[expected_issuer]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
        .map_err(|error| Rejection::Invalid(error.to_string()))?
        .claims;
    if !unexpired(claims.exp, now.unix_timestamp()) {
        return Err(Rejection::Expired);
    }
    if claims.tid != tenant_id {
        return Err(Rejection::OtherTenant);
    }
    Ok(Verified {
        claims: std::sync::Arc::new(claims),
        kid,
    })
}
