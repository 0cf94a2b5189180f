//! Opaque bearer secrets (activation and reset tokens, refresh tokens, MFA challenges, API
//! keys): 256 random bits behind a readable prefix, shown to their holder once and stored only
//! as a SHA-256 digest.
//!
//! A fast digest is right here because the secret has full entropy (slow hashes are for
//! passwords). Lookups go by digest, so secrets are never compared byte by byte and timing
//! reveals nothing about them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::envelope::EnvelopeError;

/// Prefix of the single-use tokens mailed to users (activation, invitation, email
/// verification, password reset).
pub const USER_TOKEN_PREFIX: &str = "tnut_";

/// A freshly made secret: the text to hand out once, and the digest to store.
pub struct SecretToken {
    text: Zeroizing<String>,
    digest: Vec<u8>,
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

impl SecretToken {
    /// A new secret `<prefix><43 base64url characters>`.
    pub fn generate(rng: &SystemRandom, prefix: &str) -> Result<Self, EnvelopeError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill(secret.as_mut())
            .map_err(|_| EnvelopeError::Random)?;
        let text = Zeroizing::new(format!(
            "{prefix}{}",
            URL_SAFE_NO_PAD.encode(secret.as_ref())
        ));
        Ok(Self {
            digest: token_digest(&text),
            text,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The secret's text, for the one response that hands it out.
    pub fn into_text(self) -> Zeroizing<String> {
        self.text
    }
}

/// The stored form of a secret a client presents.
pub fn token_digest(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// Whether `token` looks like one of ours with `prefix` (cheap refusal of junk before any
/// database work).
pub fn well_formed(token: &str, prefix: &str) -> bool {
    token.len() == prefix.len() + 43
        && token.starts_with(prefix)
        && token[prefix.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_stored_by_digest() {
        let rng = SystemRandom::new();
        let first = SecretToken::generate(&rng, "tnrt_").unwrap();
        let second = SecretToken::generate(&rng, "tnrt_").unwrap();
        assert_ne!(first.as_str(), second.as_str());
        assert!(well_formed(first.as_str(), "tnrt_"));
        assert!(!well_formed(first.as_str(), "tnak_"));
        assert!(!well_formed("tnrt_short", "tnrt_"));
        assert_eq!(token_digest(first.as_str()), first.digest());
        assert!(!format!("{first:?}").contains(&first.as_str()[5..]));
    }
}
