//! TOTP per RFC 6238 as authenticator apps expect it (SHA-1, 6 digits, 30-second steps),
//! through totp-rs; secrets are 160 random bits. Users' secrets are sealed with their
//! tenant's data key at rest (the data plane's `mfa`), operators' with the KEK (the control
//! plane's operator accounts).

use crate::envelope::EnvelopeError;
use qrcode::render::svg;
use qrcode::QrCode;
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use uuid::Uuid;
use zeroize::Zeroizing;

/// A TOTP computation that could not be made (a secret totp-rs refuses, a QR code too large).
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("totp: {0}")]
    Totp(String),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

/// Seconds per time step.
pub const STEP_SECONDS: u64 = 30;
/// Steps either side of now whose codes are accepted (clock drift, typing time).
pub const SKEW_STEPS: u16 = 1;
const SECRET_BYTES: usize = 20;

/// A TOTP secret in clear; wiped when dropped.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    pub fn generate(rng: &SystemRandom) -> Result<Self, TotpError> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        rng.fill(bytes.as_mut_slice())
            .map_err(|_| TotpError::Envelope(EnvelopeError::Random))?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// What sealing binds the secret to, so a sealed secret copied to another user or
    /// tenant does not open.
    pub fn sealing_context(tenant_id: Uuid, user_id: Uuid) -> Vec<u8> {
        format!("totp:{tenant_id}:{user_id}").into_bytes()
    }

    fn totp(&self, issuer: Option<&str>, account: &str) -> Result<Totp, TotpError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(SKEW_STEPS)
            .with_step_duration(STEP_SECONDS)
            .with_secret(Secret::from(self.0.as_slice()))
            .with_issuer(issuer)
            .with_account_name(account)
            .build()
            .map_err(|error| TotpError::Totp(error.to_string()))
    }

    /// The time step `code` belongs to, if it is valid within ±[`SKEW_STEPS`] of `now`.
    /// The step `code` (six digits) belongs to, if it is one of the steps around `now`.
    pub fn check(&self, code: &str, now: OffsetDateTime) -> Result<Option<i64>, TotpError> {
        let time = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let step = self.totp(None, "")?.check(code, time);
        Ok(step.and_then(|step| i64::try_from(step).ok()))
    }

    /// What an authenticator app needs: the base32 secret, the `otpauth://` URI and that URI
    /// as an SVG QR code.
    pub fn enrolment(&self, issuer: &str, account: &str) -> Result<Enrolment, TotpError> {
        let totp = self.totp(Some(issuer), account)?;
        let uri = Zeroizing::new(
            totp.to_url()
                .map_err(|error| TotpError::Totp(error.to_string()))?,
        );
        let qr_svg = QrCode::new(uri.as_bytes())
            .map_err(|error| TotpError::Totp(error.to_string()))?
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        Ok(Enrolment {
            secret: Zeroizing::new(totp.secret().to_base32()),
            otpauth_uri: uri,
            qr_svg,
        })
    }
}

pub struct Enrolment {
    pub secret: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
    pub qr_svg: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (the secret is "12345678901234567890"; 8-digit codes there,
    /// so their last six digits here).
    #[test]
    fn codes_match_the_rfc_test_vectors_within_one_step() {
        let secret = TotpSecret::from_bytes(Zeroizing::new(b"12345678901234567890".to_vec()));
        let at = |seconds| OffsetDateTime::from_unix_timestamp(seconds).unwrap();
        assert_eq!(secret.check("287082", at(59)).unwrap(), Some(1));
        assert_eq!(
            secret.check("005924", at(1_234_567_890)).unwrap(),
            Some(41_152_263)
        );
        // One step late is accepted, two are not.
        assert!(secret
            .check("005924", at(1_234_567_890 + 30))
            .unwrap()
            .is_some());
        assert!(secret
            .check("005924", at(1_234_567_890 + 60))
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_enrolment_names_issuer_and_account_and_carries_a_qr_code() {
        let secret = TotpSecret::generate(&SystemRandom::new()).unwrap();
        let enrolment = secret.enrolment("acme", "ada@acme.example").unwrap();
        assert_eq!(enrolment.secret.len(), 32);
        assert!(enrolment
            .otpauth_uri
            .starts_with("otpauth://totp/acme:ada%40acme.example?"));
        assert!(enrolment
            .otpauth_uri
            .contains(&format!("secret={}", *enrolment.secret)));
        assert!(enrolment.otpauth_uri.contains("issuer=acme"));
        assert!(enrolment.qr_svg.contains("<svg"));
    }
}
