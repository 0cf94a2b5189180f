//! Password hashing and the tenant's password rules.
//!
//! Hashes are argon2id PHC strings (parameters inside, so they can be raised later: a hash
//! made with weaker parameters is re-made at the next successful sign-in) keyed with a
//! deployment-wide pepper (argon2's secret input) that lives outside the database. Hashing
//! takes tens of milliseconds of CPU and 19 MiB by design, so it runs on the blocking pool
//! and only through the node's [`HashGate`]: a request first asks for a place
//! ([`PasswordHasher::admit`], before its first database step), then each computation waits
//! for a permit and runs in the gate's reused memory (see `hash_gate` for the bounds).
//!
//! Unknown users are "verified" against a dummy hash with the same parameters, so a sign-in
//! for an address nobody has costs the same time as one with a wrong password.

use std::path::Path;
use std::sync::Arc;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};
use shared::error::ApiError;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::hash_gate::Lease;
pub use super::hash_gate::{Busy, HashGate, HashLimits, HashTicket};

/// OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;
/// The most memory a stored hash may make a verification use. Stored hashes are ours, made
/// with `MEMORY_KIB` or less; a larger cost means a row nobody should trust, and it must not
/// make the node allocate what the PHC string asks for.
const MAX_STORED_MEMORY_KIB: u32 = 4 * MEMORY_KIB;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("cannot read the password pepper file {path}: {reason}")]
    PepperFile { path: String, reason: String },
    #[error("the password pepper must be at least 32 bytes")]
    PepperTooShort,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Busy(#[from] Busy),
}

impl From<PasswordError> for ApiError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Busy(busy) => ApiError::unavailable(
                "credential_check_busy",
                format!("{busy}; retry in {} s", busy.retry_after_seconds),
            )
            .with_retry_after(busy.retry_after_seconds),
            error => ApiError::internal(&error),
        }
    }
}

fn hashing_error(error: impl std::fmt::Display) -> PasswordError {
    PasswordError::Hashing(error.to_string())
}

/// A password as received, wiped from memory when dropped.
pub struct Password(Zeroizing<String>);

/// A string in the OpenAPI documents, marked `format: password`.
impl utoipa::PartialSchema for Password {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .into()
    }
}

impl utoipa::ToSchema for Password {}

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
    gate: HashGate,
}

impl PasswordHasher {
    /// Reads the pepper file: any bytes, at least 32 (e.g. `openssl rand -hex 32`).
    pub fn from_pepper_file(path: &Path, limits: HashLimits) -> Result<Self, PasswordError> {
        let pepper =
            Zeroizing::new(
                std::fs::read(path).map_err(|error| PasswordError::PepperFile {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                })?,
            );
        let trimmed = Zeroizing::new(pepper.trim_ascii().to_vec());
        Self::new(trimmed, limits)
    }

    pub fn new(pepper: Zeroizing<Vec<u8>>, limits: HashLimits) -> Result<Self, PasswordError> {
        if pepper.len() < 32 {
            return Err(PasswordError::PepperTooShort);
        }
        let params = Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(hashing_error)?;
        let mut hasher = Self {
            pepper: Arc::new(pepper),
            gate: HashGate::new(limits, params.block_count()),
            params,
            dummy_hash: Arc::from(""),
        };
        // Made once at start, outside the gate, in memory freed right after.
        let mut memory = vec![Block::new(); hasher.params.block_count()];
        hasher.dummy_hash = Arc::from(hasher.hash_now("not a password anyone has", &mut memory)?);
        Ok(hasher)
    }

    /// A place for a request of `tenant_id` among those doing password work, or
    /// [`PasswordError::Busy`] when the node or the tenant has none left. Ask before the
    /// request's first database step, and drop it when the password work is done.
    pub fn admit(&self, tenant_id: Uuid) -> Result<HashTicket, PasswordError> {
        Ok(self.gate.admit(tenant_id)?)
    }

    /// The gate's limits.
    pub fn limits(&self) -> HashLimits {
        self.gate.limits()
    }

    /// Requests admitted to password work now, over all tenants and for `tenant_id`.
    pub fn admitted(&self, tenant_id: Uuid) -> (usize, usize) {
        self.gate.admitted(tenant_id)
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
        .map_err(hashing_error)
    }

    /// A new PHC string for `password`, computed in `memory` (at least the parameters'
    /// block count).
    fn hash_now(&self, password: &str, memory: &mut [Block]) -> Result<String, PasswordError> {
        let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| PasswordError::Hashing("no randomness for a salt".to_owned()))?;
        let salt = Salt::new(&salt).map_err(hashing_error)?;
        let mut output = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
        self.argon2()?
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut *output, memory)
            .map_err(hashing_error)?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(hashing_error)?,
            salt: Some(salt),
            hash: Some(Output::new(&*output).map_err(hashing_error)?),
        };
        Ok(hash.to_string())
    }

    fn verify_now(
        &self,
        password: &str,
        stored: Option<&str>,
        lease: &mut Lease,
    ) -> Result<Verdict, PasswordError> {
        let (hash_text, real) = match stored {
            Some(hash) => (hash, true),
            None => (&*self.dummy_hash, false),
        };
        let Ok(hash) = PasswordHash::new(hash_text) else {
            return Ok(Verdict::Wrong);
        };
        let matches = self.matches(password.as_bytes(), &hash, lease);
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

    /// Whether `password` gives `hash`'s output under `hash`'s own algorithm, version and
    /// parameters (what argon2's `verify_password` does, in the lease's memory). A hash this
    /// node cannot compute (unknown algorithm, bad parameters, a memory cost over
    /// [`MAX_STORED_MEMORY_KIB`]) matches nothing.
    fn matches(&self, password: &[u8], hash: &PasswordHash, lease: &mut Lease) -> bool {
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
            return false;
        };
        let Ok(version) = hash.version.map(Version::try_from).transpose() else {
            return false;
        };
        let Ok(params) = Params::try_from(hash) else {
            return false;
        };
        if params.m_cost() > MAX_STORED_MEMORY_KIB {
            return false;
        }
        let blocks = params.block_count();
        let Ok(argon2) =
            Argon2::new_with_secret(&self.pepper, algorithm, version.unwrap_or_default(), params)
        else {
            return false;
        };
        let mut computed = Zeroizing::new([0u8; Output::MAX_LENGTH]);
        let Some(computed) = computed.get_mut(..expected.len()) else {
            return false;
        };
        if argon2
            .hash_password_into_with_memory(password, salt, &mut *computed, lease.memory(blocks))
            .is_err()
        {
            return false;
        }
        // `Output` compares in constant time.
        Output::new(computed).is_ok_and(|computed| computed == *expected)
    }

    /// A new hash of `password`, for the holder of `ticket`: waits for a permit (at most the
    /// gate's `wait`, else [`PasswordError::Busy`]), then hashes on the blocking pool.
    pub async fn hash(
        &self,
        ticket: &HashTicket,
        password: &Password,
    ) -> Result<String, PasswordError> {
        let mut lease = self.gate.lease(ticket).await?;
        let hasher = self.clone();
        let password = password.0.clone();
        tokio::task::spawn_blocking(move || {
            let blocks = hasher.params.block_count();
            hasher.hash_now(&password, lease.memory(blocks))
        })
        .await
        .map_err(hashing_error)?
    }

    /// Checks `password` against `stored`, for the holder of `ticket` (waiting as
    /// [`hash`](Self::hash) does); with no stored hash (unknown user, no password set) it
    /// does the same work and answers `Wrong`.
    pub async fn verify(
        &self,
        ticket: &HashTicket,
        password: &Password,
        stored: Option<String>,
    ) -> Result<Verdict, PasswordError> {
        let mut lease = self.gate.lease(ticket).await?;
        let hasher = self.clone();
        let password = password.0.clone();
        tokio::task::spawn_blocking(move || {
            hasher.verify_now(&password, stored.as_deref(), &mut lease)
        })
        .await
        .map_err(hashing_error)?
    }

    /// Why `password` may not be the new password of the user at `email`: the policy's rules;
    /// when those pass, a match with one of `used` (their current hash and their last
    /// `policy.history`), each checked by hashing, so only then. Empty: it may.
    pub async fn refusals_of_new(
        &self,
        ticket: &HashTicket,
        policy: &PasswordPolicy,
        password: &Password,
        email: &str,
        used: impl IntoIterator<Item = String>,
    ) -> Result<Vec<String>, PasswordError> {
        let failed = policy.violations(password.as_str(), email);
        if !failed.is_empty() {
            return Ok(failed);
        }
        for old in used {
            if matches!(
                self.verify(ticket, password, Some(old)).await?,
                Verdict::Right { .. }
            ) {
                return Ok(vec![format!(
                    "must differ from the last {} passwords",
                    policy.history.max(1)
                )]);
            }
        }
        Ok(Vec::new())
    }
}

/// A tenant's password rules (part of its auth policy, editable by tenant admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

    use std::future::Future as _;

    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    /// One permit, so every computation below reuses the same (dirty) buffer.
    fn hasher() -> PasswordHasher {
        let limits = HashLimits {
            concurrency: 1,
            queue: 1,
            wait: std::time::Duration::from_secs(60),
        };
        PasswordHasher::new(Zeroizing::new(vec![7u8; 32]), limits).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = hasher();
        let ticket = hasher.admit(Uuid::new_v4()).unwrap();
        let password = Password::new("correct horse battery".to_owned());
        let hash = hasher.hash(&ticket, &password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let other_hash = hasher
            .hash(&ticket, &Password::new("another one entirely".to_owned()))
            .await
            .unwrap();
        assert_eq!(
            hasher
                .verify(&ticket, &password, Some(hash.clone()))
                .await
                .unwrap(),
            Verdict::Right {
                needs_rehash: false
            }
        );
        let wrong = Password::new("correct horse battery!".to_owned());
        for (password, stored) in [
            (&wrong, Some(hash.clone())),
            (&password, Some(other_hash)),
            (&password, None),
        ] {
            assert_eq!(
                hasher.verify(&ticket, password, stored).await.unwrap(),
                Verdict::Wrong
            );
        }
        // Another pepper: the same hash no longer verifies.
        let other = PasswordHasher::new(Zeroizing::new(vec![8u8; 32]), hasher.limits()).unwrap();
        let other_ticket = other.admit(Uuid::new_v4()).unwrap();
        assert_eq!(
            other
                .verify(&other_ticket, &password, Some(hash.clone()))
                .await
                .unwrap(),
            Verdict::Wrong
        );
        // The hash computed in reused memory is argon2's own: its verifier accepts it.
        let stock = hasher.argon2().unwrap();
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(stock
            .verify_password(password.as_str().as_bytes(), &parsed)
            .is_ok());
        assert!(stock
            .verify_password(wrong.as_str().as_bytes(), &parsed)
            .is_err());
    }

    #[tokio::test]
    async fn weaker_hashes_are_flagged_for_rehash() {
        let hasher = hasher();
        let ticket = hasher.admit(Uuid::new_v4()).unwrap();
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
            hasher.verify(&ticket, &password, Some(weak)).await.unwrap(),
            Verdict::Right { needs_rehash: true }
        );
    }

    #[tokio::test]
    async fn a_stored_hash_asking_for_more_memory_than_allowed_matches_nothing() {
        let hasher = hasher();
        let ticket = hasher.admit(Uuid::new_v4()).unwrap();
        let password = Password::new("correct horse battery".to_owned());
        let hash = hasher.hash(&ticket, &password).await.unwrap();
        let greedy = hash.replace("m=19456,", &format!("m={},", MAX_STORED_MEMORY_KIB + 1024));
        assert_ne!(greedy, hash);
        assert_eq!(
            hasher
                .verify(&ticket, &password, Some(greedy))
                .await
                .unwrap(),
            Verdict::Wrong
        );
    }

    #[tokio::test]
    async fn a_computation_keeps_its_permit_when_its_request_is_dropped() {
        let hasher = hasher();
        let ticket = hasher.admit(Uuid::new_v4()).unwrap();
        let password = Password::new("correct horse battery".to_owned());
        let mut verifying = Box::pin(hasher.verify(&ticket, &password, None));
        // One poll takes the permit and starts the computation on the blocking pool.
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(verifying.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        drop(verifying);
        drop(ticket);
        assert_eq!(hasher.gate.running(), 1, "the permit left with the request");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while hasher.gate.running() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the permit never came back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn password_work_beyond_the_gate_is_refused_as_busy() {
        // One permit and one place in the queue: a tenant may have one request admitted,
        // the node two.
        let hasher = hasher();
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let _held = hasher.admit(first).unwrap();
        assert!(matches!(hasher.admit(first), Err(PasswordError::Busy(_))));
        let _also_held = hasher.admit(second).unwrap();
        let refused = hasher.admit(Uuid::new_v4()).err().unwrap();
        assert!(matches!(refused, PasswordError::Busy(_)));
        let answer = ApiError::from(refused);
        assert_eq!(
            (answer.status().as_u16(), answer.code()),
            (503, "credential_check_busy")
        );
        let response = actix_web::ResponseError::error_response(&answer);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .unwrap()
                .to_str()
                .unwrap(),
            "1"
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
