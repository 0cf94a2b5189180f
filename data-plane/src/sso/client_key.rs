//! `private_key_jwt` (OIDC Core §9, RFC 7523): a provider whose IdP wants token requests
//! signed instead of a client secret. Its RSA key is made when the provider is saved
//! (`shared::sso::providers`), kept sealed with the tenant's data key where a client secret
//! would be, and never leaves the node; the public half is published as a JWKS at
//! `/v1/auth/sso/{name}/jwks` for the IdP (fetched, or pasted into it). Each token request
//! carries a fresh assertion: issuer and subject our client id, audience the token endpoint,
//! one minute long, a random `jti`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openssl::pkey::Private;
use openssl::rsa::Rsa;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::store::ProviderRow;
use super::SsoError;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// The `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key_error(error: impl std::fmt::Display) -> SsoError {
    SsoError::InvalidConfig(format!("the provider's client key: {error}"))
}

/// The RSA key in `pem` (what `shared::sso::providers` sealed).
fn rsa_key(pem: &str) -> Result<Rsa<Private>, SsoError> {
    Rsa::private_key_from_pem(pem.as_bytes()).map_err(key_error)
}

/// The public half of `rsa` as a JWK, with its RFC 7638 thumbprint as `kid`.
fn public_jwk(rsa: &Rsa<Private>) -> Value {
    let n = URL_SAFE_NO_PAD.encode(rsa.n().to_vec());
    let e = URL_SAFE_NO_PAD.encode(rsa.e().to_vec());
    // The thumbprint hashes the required members in lexicographic order, no spaces.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ));
    json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e})
}

/// The JWKS the IdP checks a `private_key_jwt` provider's assertions with; not found for a
/// provider without that method.
pub async fn published_jwks(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
) -> Result<Value, SsoError> {
    if !provider.settings.provider.uses_client_key() {
        return Err(SsoError::ProviderNotFound);
    }
    let pem = super::admin::open_credential(state, context, provider)
        .await?
        .ok_or_else(|| SsoError::InvalidConfig("the provider has no client key".to_owned()))?;
    Ok(json!({ "keys": [public_jwk(&rsa_key(&pem)?)] }))
}

/// A client assertion for one token request to `token_endpoint`.
pub fn assertion(
    pem: &Zeroizing<String>,
    client_id: &str,
    token_endpoint: &str,
    now: time::OffsetDateTime,
    jti: &str,
) -> Result<String, SsoError> {
    let rsa = rsa_key(pem)?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = public_jwk(&rsa)["kid"].as_str().map(str::to_owned);
    let issued = now.unix_timestamp();
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint,
        "jti": jti,
        "iat": issued,
        "exp": issued + 60,
    });
    let der = Zeroizing::new(rsa.private_key_to_der().map_err(key_error)?);
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
    jsonwebtoken::encode(&header, &claims, &key).map_err(key_error)
}
