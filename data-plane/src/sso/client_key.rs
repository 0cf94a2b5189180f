//! `private_key_jwt` (OIDC Core §9, RFC 7523): a provider whose IdP wants token requests
//! signed instead of a client secret. Its RSA key is made when the provider is saved
//! (`shared::sso::providers`), kept sealed with the tenant's data key where a client secret
//! would be, and never leaves the node; the public half is published as a JWKS at
//! `/v1/auth/sso/{name}/jwks` for the IdP (fetched, or pasted into it). Each token request
//! carries a fresh assertion: issuer and subject our client id, audience the token endpoint,
//! one minute long, a random `jti`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::SsoError;

/// The `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key_error(error: impl std::fmt::Display) -> SsoError {
    SsoError::InvalidConfig(format!("the provider's client key: {error}"))
}

/// The public key of `pem` as a JWK, with its RFC 7638 thumbprint as `kid`.
fn public_jwk(pem: &str) -> Result<Value, SsoError> {
    let key = openssl::pkey::PKey::private_key_from_pem(pem.as_bytes()).map_err(key_error)?;
    let rsa = key.rsa().map_err(key_error)?;
    let n = URL_SAFE_NO_PAD.encode(rsa.n().to_vec());
    let e = URL_SAFE_NO_PAD.encode(rsa.e().to_vec());
    // The thumbprint hashes the required members in lexicographic order, no spaces.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ));
    Ok(json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}))
}

/// The JWKS the IdP checks our assertions with.
pub fn public_jwks(pem: &Zeroizing<String>) -> Result<Value, SsoError> {
    Ok(json!({ "keys": [public_jwk(pem)?] }))
}

/// A client assertion for one token request to `token_endpoint`.
pub fn assertion(
    pem: &Zeroizing<String>,
    client_id: &str,
    token_endpoint: &str,
    now: time::OffsetDateTime,
    jti: &str,
) -> Result<String, SsoError> {
    let kid = public_jwk(pem)?["kid"].as_str().map(str::to_owned);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = kid;
    let issued = now.unix_timestamp();
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint,
        "jti": jti,
        "iat": issued,
        "exp": issued + 60,
    });
    let rsa = openssl::pkey::PKey::private_key_from_pem(pem.as_bytes())
        .and_then(|key| key.rsa())
        .and_then(|rsa| rsa.private_key_to_der())
        .map(Zeroizing::new)
        .map_err(key_error)?;
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&rsa);
    jsonwebtoken::encode(&header, &claims, &key).map_err(key_error)
}
