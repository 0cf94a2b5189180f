//! The text of an API key and its stored form.
//!
//! A key reads `tnt_<prefix>_<secret>`: the prefix is 12 characters of Crockford's base32
//! (lower case, 60 random bits), public, unique within the tenant and used to find the key;
//! the secret is 32 random bytes in base64url without padding (43 characters). Only
//! HMAC-SHA256(tenant id ‖ prefix ‖ secret) is stored, keyed with a key derived from the
//! server's pepper ([`DIGEST_KEY_PURPOSE`]): a fast keyed hash is right for a 256-bit random
//! secret, and without the pepper a stolen table neither authenticates nor lets anyone test
//! guesses. Presented secrets are checked with `ring::hmac::verify`, in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use shared::envelope::EnvelopeError;
use uuid::Uuid;
use zeroize::Zeroizing;

/// What every API key starts with (refresh tokens are `tnrt_`, mailed tokens `tnut_`).
pub const KEY_START: &str = "tnt_";
/// Characters of the public prefix.
pub const PREFIX_LENGTH: usize = 12;
/// Characters of the secret: 32 bytes in base64url without padding.
const SECRET_LENGTH: usize = 43;
const SECRET_BYTES: usize = 32;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// The purpose the digest key is derived for (from the password pepper).
pub const DIGEST_KEY_PURPOSE: &str = "tenantry api keys v1";

/// A key as a client presented it, split into its parts. Holds no copy of the secret.
#[derive(Clone, Copy)]
pub struct PresentedKey<'a> {
    pub prefix: &'a str,
    pub secret: &'a str,
}

impl std::fmt::Debug for PresentedKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PresentedKey({}, <redacted>)", self.prefix)
    }
}

impl<'a> PresentedKey<'a> {
    /// The parts of `text` if it has the shape of one of our keys; `None` for anything else
    /// (refused before any database work).
    pub fn parse(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix(KEY_START)?;
        if rest.len() != PREFIX_LENGTH + 1 + SECRET_LENGTH || !rest.is_ascii() {
            return None;
        }
        let (prefix, rest) = rest.split_at(PREFIX_LENGTH);
        let secret = rest.strip_prefix('_')?;
        let prefix_ok = prefix.bytes().all(|b| ALPHABET.contains(&b));
        let secret_ok = secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (prefix_ok && secret_ok).then_some(Self { prefix, secret })
    }
}

/// Whether `value` (a bearer credential) is meant as an API key rather than an access token.
pub fn looks_like_key(value: &str) -> bool {
    value.starts_with(KEY_START)
}

/// A fresh public prefix.
pub fn generate_prefix(rng: &SystemRandom) -> Result<String, EnvelopeError> {
    let mut bytes = [0u8; PREFIX_LENGTH];
    rng.fill(&mut bytes).map_err(|_| EnvelopeError::Random)?;
    // 256 is a multiple of 32, so masking keeps every symbol equally likely.
    Ok(bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(byte & 31)]))
        .collect())
}

/// A fresh secret, base64url.
pub fn generate_secret(rng: &SystemRandom) -> Result<Zeroizing<String>, EnvelopeError> {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    rng.fill(bytes.as_mut())
        .map_err(|_| EnvelopeError::Random)?;
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref())))
}

/// The full key text handed out once.
pub fn key_text(prefix: &str, secret: &str) -> Zeroizing<String> {
    Zeroizing::new(format!("{KEY_START}{prefix}_{secret}"))
}

fn message(tenant_id: Uuid, prefix: &str, secret: &str) -> Zeroizing<Vec<u8>> {
    // Tenant id and prefix have fixed lengths, so the concatenation is unambiguous.
    let mut message = Zeroizing::new(Vec::with_capacity(16 + prefix.len() + secret.len()));
    message.extend_from_slice(tenant_id.as_bytes());
    message.extend_from_slice(prefix.as_bytes());
    message.extend_from_slice(secret.as_bytes());
    message
}

/// The stored form of `secret` of the key `prefix` in `tenant_id`.
pub fn digest(key: &hmac::Key, tenant_id: Uuid, prefix: &str, secret: &str) -> Vec<u8> {
    hmac::sign(key, &message(tenant_id, prefix, secret))
        .as_ref()
        .to_vec()
}

/// Whether `presented` matches the stored digest `stored`, compared in constant time.
pub fn matches(
    key: &hmac::Key,
    tenant_id: Uuid,
    presented: PresentedKey<'_>,
    stored: &[u8],
) -> bool {
    hmac::verify(
        key,
        &message(tenant_id, presented.prefix, presented.secret),
        stored,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_and_junk_does_not() {
        let rng = SystemRandom::new();
        let prefix = generate_prefix(&rng).unwrap();
        let secret = generate_secret(&rng).unwrap();
        let text = key_text(&prefix, &secret);
        let parsed = PresentedKey::parse(&text).unwrap();
        assert_eq!(parsed.prefix, prefix);
        assert_eq!(parsed.secret, secret.as_str());
        assert!(looks_like_key(&text));
        assert!(!format!("{parsed:?}").contains(secret.as_str()));
        for junk in [
            "",
            "tnt_",
            "tnrt_abc",
            &text[1..],
            &format!("{}x", text.as_str()),
            &text.replace(&prefix, &prefix.to_uppercase()),
            &text.replacen('_', "-", 2),
            &format!("tnt_{prefix}_{}a", "é".repeat(21)),
        ] {
            assert!(PresentedKey::parse(junk).is_none(), "{junk}");
        }
    }

    #[test]
    fn digests_bind_the_tenant_and_prefix_and_verify_only_the_right_secret() {
        let rng = SystemRandom::new();
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"a key for the test");
        let tenant = Uuid::new_v4();
        let prefix = generate_prefix(&rng).unwrap();
        let secret = generate_secret(&rng).unwrap();
        let stored = digest(&key, tenant, &prefix, &secret);
        let text = key_text(&prefix, &secret);
        let presented = PresentedKey::parse(&text).unwrap();
        assert!(matches(&key, tenant, presented, &stored));
        assert!(!matches(&key, Uuid::new_v4(), presented, &stored));
        let other = generate_secret(&rng).unwrap();
        let wrong = key_text(&prefix, &other);
        assert!(!matches(
            &key,
            tenant,
            PresentedKey::parse(&wrong).unwrap(),
            &stored
        ));
        let other_key = hmac::Key::new(hmac::HMAC_SHA256, b"another key");
        assert!(!matches(&other_key, tenant, presented, &stored));
    }
}
