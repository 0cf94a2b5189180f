//! Random values of a login transaction: `state`, `nonce`, the PKCE verifier and SAML request
//! ids, all from ring's system RNG, and the digest the transaction is stored under.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use shared::envelope::EnvelopeError;

/// 256 random bits as base64url (43 characters: also a valid PKCE verifier).
pub fn random_value(rng: &SystemRandom) -> Result<String, EnvelopeError> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes).map_err(|_| EnvelopeError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The key a transaction is stored and found under: looking up by digest means no secret is
/// compared byte by byte and a database reader cannot replay a `state`.
pub fn digest(value: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, value.as_bytes())
        .as_ref()
        .to_vec()
}
