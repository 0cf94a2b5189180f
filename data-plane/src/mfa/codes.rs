//! The codes a user types: six-digit TOTP codes and backup codes, parsed at the edge, and
//! how backup codes are made and stored.
//!
//! A backup code is 10 characters of Crockford's base32 alphabet (50 random bits), shown as
//! `xxxxx-xxxxx`; input is read case-insensitively, ignoring dashes and spaces. Only an
//! HMAC-SHA256 digest is stored, keyed with a key derived from the password pepper and bound
//! to the tenant and user.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use shared::envelope::EnvelopeError;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::MfaError;

/// Backup codes made at a time.
pub const BACKUP_CODE_COUNT: usize = 10;
const BACKUP_CODE_LENGTH: usize = 10;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// The purpose the backup-code key is derived for (from the password pepper).
pub const BACKUP_CODE_KEY_PURPOSE: &str = "tenantry backup codes v1";

/// A code as received in a request body, before parsing; wiped when dropped.
pub struct CodeInput(Zeroizing<String>);

/// A string in the OpenAPI documents: a 6-digit TOTP code or a backup code.
impl utoipa::PartialSchema for CodeInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A 6-digit TOTP code, or a backup code"))
            .into()
    }
}

impl utoipa::ToSchema for CodeInput {}

impl CodeInput {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for CodeInput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(Zeroizing::new(text)))
    }
}

/// A six-digit TOTP code.
pub struct TotpCode(Zeroizing<String>);

impl TotpCode {
    pub fn parse(input: &str) -> Result<Self, MfaError> {
        match OneTimeCode::parse(input)? {
            OneTimeCode::Totp(code) => Ok(code),
            OneTimeCode::Backup(_) => Err(MfaError::MalformedCode(
                "expected the six-digit code from the authenticator app",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A normalised backup code (lower case, no separators).
pub struct BackupCode(Zeroizing<String>);

/// What a user may type at the second step of a sign-in.
pub enum OneTimeCode {
    Totp(TotpCode),
    Backup(BackupCode),
}

impl OneTimeCode {
    pub fn parse(input: &str) -> Result<Self, MfaError> {
        let normalised: Zeroizing<String> = Zeroizing::new(
            input
                .chars()
                .filter(|c| !matches!(c, '-' | ' '))
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        );
        if normalised.len() == 6 && normalised.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self::Totp(TotpCode(normalised)));
        }
        if normalised.len() == BACKUP_CODE_LENGTH
            && normalised.bytes().all(|b| ALPHABET.contains(&b))
        {
            return Ok(Self::Backup(BackupCode(normalised)));
        }
        Err(MfaError::MalformedCode(
            "expected a six-digit code or a backup code (xxxxx-xxxxx)",
        ))
    }
}

/// Fresh backup codes, formatted for the user (`xxxxx-xxxxx`).
pub fn generate_backup_codes(rng: &SystemRandom) -> Result<Vec<Zeroizing<String>>, MfaError> {
    (0..BACKUP_CODE_COUNT)
        .map(|_| {
            let mut bytes = Zeroizing::new([0u8; BACKUP_CODE_LENGTH]);
            rng.fill(bytes.as_mut())
                .map_err(|_| MfaError::Envelope(EnvelopeError::Random))?;
            // 256 is a multiple of 32, so masking keeps every symbol equally likely.
            let symbols: Zeroizing<Vec<u8>> = Zeroizing::new(
                bytes
                    .iter()
                    .map(|byte| ALPHABET[usize::from(byte & 31)])
                    .collect(),
            );
            let (first, second) = symbols.split_at(BACKUP_CODE_LENGTH / 2);
            Ok(Zeroizing::new(format!(
                "{}-{}",
                String::from_utf8_lossy(first),
                String::from_utf8_lossy(second)
            )))
        })
        .collect()
}

/// The stored form of a backup code of `user_id` in `tenant_id`.
pub fn backup_code_digest(key: &hmac::Key, tenant_id: Uuid, user_id: Uuid, code: &str) -> Vec<u8> {
    let normalised: Zeroizing<String> = Zeroizing::new(
        code.chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    let mut context = hmac::Context::with_key(key);
    context.update(tenant_id.as_bytes());
    context.update(user_id.as_bytes());
    context.update(normalised.as_bytes());
    context.sign().as_ref().to_vec()
}

impl BackupCode {
    pub fn digest(&self, key: &hmac::Key, tenant_id: Uuid, user_id: Uuid) -> Vec<u8> {
        backup_code_digest(key, tenant_id, user_id, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_told_apart_and_junk_is_refused() {
        assert!(matches!(
            OneTimeCode::parse("123 456").unwrap(),
            OneTimeCode::Totp(_)
        ));
        assert!(matches!(
            OneTimeCode::parse("ABCDE-12345").unwrap(),
            OneTimeCode::Backup(_)
        ));
        for junk in [
            "",
            "12345",
            "1234567",
            "12a456",
            "+12345",
            "abcde-1234u",
            "１２３４５６",
        ] {
            assert!(OneTimeCode::parse(junk).is_err(), "{junk}");
        }
        assert!(TotpCode::parse("abcde-12345").is_err());
    }

    #[test]
    fn backup_codes_are_distinct_well_formed_and_digested_per_user() {
        let rng = SystemRandom::new();
        let codes = generate_backup_codes(&rng).unwrap();
        assert_eq!(codes.len(), BACKUP_CODE_COUNT);
        for code in &codes {
            assert!(matches!(
                OneTimeCode::parse(code).unwrap(),
                OneTimeCode::Backup(_)
            ));
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"a key for the test");
        let (tenant, user) = (Uuid::new_v4(), Uuid::new_v4());
        let digest = backup_code_digest(&key, tenant, user, &codes[0]);
        assert_eq!(
            digest,
            backup_code_digest(&key, tenant, user, &codes[0].to_uppercase())
        );
        assert_ne!(
            digest,
            backup_code_digest(&key, tenant, Uuid::new_v4(), &codes[0])
        );
        assert_ne!(digest, backup_code_digest(&key, tenant, user, &codes[1]));
    }
}
