//! Operator tokens: bearer credentials for the control plane's REST API; and operator
//! accounts, for people signing in to the operator console ([`accounts`]).
//!
//! A token is 256 random bits, shown once and stored only as its SHA-256 digest (a fast hash
//! is right for a full-entropy secret; slow hashes are for passwords). Lookup is by digest, so
//! comparing secrets byte by byte never happens and timing reveals nothing about the token.

pub mod accounts;
pub mod auth;
mod store;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest::{digest, SHA256};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use crate::context::ControlPlane;
use crate::error::ControlError;

const TOKEN_PREFIX: &str = "tnop_";

fn token_digest(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// Creates a token named `name` and returns its secret, which is not stored anywhere.
pub async fn create_token(
    control: &ControlPlane,
    name: &str,
) -> Result<Zeroizing<String>, ControlError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ControlError::InvalidInput {
            field: "name",
            message: "must be 1 to 100 characters without control characters".to_owned(),
        });
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    control
        .rng
        .fill(secret.as_mut())
        .map_err(|_| shared::envelope::EnvelopeError::Random)?;
    let token = Zeroizing::new(format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(secret.as_ref())
    ));
    let client = control.pool.get().await?;
    if !store::insert_token(&client, name, &token_digest(&token)).await? {
        return Err(ControlError::TokenNameTaken(name.to_owned()));
    }
    Ok(token)
}

/// The name of the live token `token` is, if any.
pub async fn authenticate(
    control: &ControlPlane,
    token: &str,
) -> Result<Option<String>, ControlError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Ok(None);
    }
    let client = control.pool.get().await?;
    store::use_token(&client, &token_digest(token)).await
}
