//! Password hashing and the tenant's password rules.
//!
//! Hashes are argon2id PHC strings (parameters inside, so they can be raised later: a hash
//! made with weaker parameters is re-made at the next successful sign-in) keyed with a
//! deployment-wide pepper (argon2's secret input) that lives outside the database. Hashing
//! runs on the blocking pool: it takes tens of milliseconds of CPU by design.
//!
//! Unknown users are "verified" against a dummy hash with the same parameters, so a sign-in
//! for an address nobody has costs the same time as one with a wrong password.

use std::path::Path;
use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("cannot read the password pepper file {path}: {reason}")]
    PepperFile { path: String, reason: String },
    #[error("the password pepper must be at least 32 bytes")]
    PepperTooShort,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// A password as received, wiped from memory when dropped.
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Password::new)
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Wrong,
    Right { needs_rehash: bool },
}

#[derive(Clone)]
pub struct PasswordHasher {
    pepper: Arc<Zeroizing<Vec<u8>>>,
    params: Params,
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// Reads the pepper file: any bytes, at least 32 (e.g. `openssl rand -hex 32`).
    pub fn from_pepper_file(path: &Path) -> Result<Self, PasswordError> {
        let pepper =
            Zeroizing::new(
                std::fs::read(path).map_err(|error| PasswordError::PepperFile {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                })?,
            );
        let trimmed = Zeroizing::new(pepper.trim_ascii().to_vec());
        Self::new(trimmed)
    }

    pub fn new(pepper: Zeroizing<Vec<u8>>) -> Result<Self, PasswordError> {
        if pepper.len() < 32 {
            return Err(PasswordError::PepperTooShort);
        }
        let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
            .map_err(|error| PasswordError::Hashing(error.to_string()))?;
        let mut hasher = Self {
            pepper: Arc::new(pepper),
            params,
            dummy_hash: Arc::from(""),
        };
        hasher.dummy_hash = Arc::from(hasher.hash_now("not a password anyone has")?);
        Ok(hasher)
    }

    /// A key for `purpose` derived from the pepper (HMAC-SHA256 of the purpose under the
    /// pepper), for secrets stored as keyed digests (backup codes): without the pepper, which
    /// is not in the database, a dump cannot test guesses against them.
    pub fn derived_key(&self, purpose: &str) -> ring::hmac::Key {
        let pepper_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.pepper);
        let derived = Zeroizing::new(
            ring::hmac::sign(&pepper_key, purpose.as_bytes())
                .as_ref()
                .to_vec(),
        );
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &derived)
    }

    fn argon2(&self) -> Result<Argon2<'_>, PasswordError> {
        Argon2::new_with_secret(
            &self.pepper,
            Algorithm::Argon2id,
            Version::V0x13,
            self.params.clone(),
        )
        .map_err(|error| PasswordError::Hashing(error.to_string()))
    }

    fn hash_now(&self, password: &str) -> Result<String, PasswordError> {
        self.argon2()?
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| PasswordError::Hashing(error.to_string()))
    }

    fn verify_now(&self, password: &str, stored: Option<&str>) -> Result<Verdict, PasswordError> {
        let (hash_text, real) = match stored {
            Some(hash) => (hash, true),
            None => (&*self.dummy_hash, false),
        };
        let Ok(hash) = PasswordHash::new(hash_text) else {
            return Ok(Verdict::Wrong);
        };
        let matches = self
            .argon2()?
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        if !(matches && real) {
            return Ok(Verdict::Wrong);
        }
        let needs_rehash = Params::try_from(&hash).map_or(true, |stored| {
            stored.m_cost() < self.params.m_cost()
                || stored.t_cost() < self.params.t_cost()
                || stored.p_cost() < self.params.p_cost()
        }) || hash.algorithm.as_str() != "argon2id";
        Ok(Verdict::Right { needs_rehash })
    }

    /// A new hash of `password`.
    pub async fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        let hasher = self.clone();
        let password = password.0.clone();
        tokio::task::spawn_blocking(move || hasher.hash_now(&password))
            .await
            .map_err(|error| PasswordError::Hashing(error.to_string()))?
    }

    /// Checks `password` against `stored`; with no stored hash (unknown user, no password
    /// set) it does the same work and answers `Wrong`.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<String>,
    ) -> Result<Verdict, PasswordError> {
        let hasher = self.clone();
        let password = password.0.clone();
        tokio::task::spawn_blocking(move || hasher.verify_now(&password, stored.as_deref()))
            .await
            .map_err(|error| PasswordError::Hashing(error.to_string()))?
    }
}

/// A tenant's password rules (part of its auth policy, editable by tenant admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
    /// A new password may not equal any of the user's last N.
    pub history: usize,
    /// Days after which a password must be changed; `None` for never.
    pub max_age_days: Option<u32>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 12,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
            history: 5,
            max_age_days: None,
        }
    }
}

/// Longer inputs are refused before hashing: nobody types more, and argon2 over megabytes is
/// a denial-of-service lever.
pub const MAX_PASSWORD_LENGTH: usize = 256;

impl PasswordPolicy {
    /// The rules `password` breaks, as messages for the client; empty when it is acceptable.
    pub fn violations(&self, password: &str, email: &str) -> Vec<String> {
        let mut failed = Vec::new();
        let length = password.chars().count();
        if length < self.min_length {
            failed.push(format!(
                "must be at least {} characters long",
                self.min_length
            ));
        }
        if length > MAX_PASSWORD_LENGTH {
            failed.push(format!(
                "must be at most {MAX_PASSWORD_LENGTH} characters long"
            ));
        }
        let has = |test: fn(char) -> bool| password.chars().any(test);
        if self.require_lowercase && !has(|c| c.is_lowercase()) {
            failed.push("must contain a lowercase letter".to_owned());
        }
        if self.require_uppercase && !has(|c| c.is_uppercase()) {
            failed.push("must contain an uppercase letter".to_owned());
        }
        if self.require_digit && !has(|c| c.is_ascii_digit()) {
            failed.push("must contain a digit".to_owned());
        }
        if self.require_symbol && !has(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
            failed.push("must contain a symbol".to_owned());
        }
        let local = email.split('@').next().unwrap_or_default();
        if local.len() >= 3 && password.to_lowercase().contains(local) {
            failed.push("must not contain the email address".to_owned());
        }
        failed
    }

    /// Checks the policy itself (what an admin may set).
    pub fn validate(&self) -> Result<(), String> {
        if !(8..=MAX_PASSWORD_LENGTH).contains(&self.min_length) {
            return Err(format!("min_length must be 8 to {MAX_PASSWORD_LENGTH}"));
        }
        if self.history > 24 {
            return Err("history must be 0 to 24".to_owned());
        }
        if self.max_age_days == Some(0) {
            return Err("max_age_days must be positive (or null for never)".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        PasswordHasher::new(Zeroizing::new(vec![7u8; 32])).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = hasher();
        let password = Password::new("correct horse battery".to_owned());
        let hash = hasher.hash(&password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            hasher.verify(&password, Some(hash.clone())).await.unwrap(),
            Verdict::Right {
                needs_rehash: false
            }
        );
        let wrong = Password::new("correct horse battery!".to_owned());
        assert_eq!(
            hasher.verify(&wrong, Some(hash.clone())).await.unwrap(),
            Verdict::Wrong
        );
        assert_eq!(
            hasher.verify(&password, None).await.unwrap(),
            Verdict::Wrong
        );
        // Another pepper: the same hash no longer verifies.
        let other = PasswordHasher::new(Zeroizing::new(vec![8u8; 32])).unwrap();
        assert_eq!(
            other.verify(&password, Some(hash)).await.unwrap(),
            Verdict::Wrong
        );
    }

    #[tokio::test]
    async fn weaker_hashes_are_flagged_for_rehash() {
        let hasher = hasher();
        let weak = Argon2::new_with_secret(
            &hasher.pepper,
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .unwrap()
        .hash_password(b"correct horse battery")
        .unwrap()
        .to_string();
        let password = Password::new("correct horse battery".to_owned());
        assert_eq!(
            hasher.verify(&password, Some(weak)).await.unwrap(),
            Verdict::Right { needs_rehash: true }
        );
    }

    #[test]
    fn the_policy_lists_every_rule_a_password_breaks() {
        let policy = PasswordPolicy {
            require_uppercase: true,
            require_digit: true,
            require_symbol: true,
            ..PasswordPolicy::default()
        };
        let failed = policy.violations("short", "ada@example.com");
        assert_eq!(failed.len(), 4, "{failed:?}");
        assert!(policy
            .violations("Long enough 1 !", "ada@example.com")
            .is_empty());
        assert_eq!(
            policy.violations("ada-Rules-1-forever!", "ada@example.com"),
            vec!["must not contain the email address".to_owned()]
        );
    }
}
