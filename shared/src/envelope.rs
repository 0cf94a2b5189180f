//! Envelope encryption of tenant data keys.
//!
//! The key-encryption key (KEK) comes from a file outside the database; each tenant's 256-bit
//! data key (DEK) is stored only wrapped by it with AES-256-GCM. The additional authenticated
//! data binds a wrapped key to its tenant and version, so a wrapped key copied onto another
//! tenant's row does not unwrap. Destroying the wrapped key makes the tenant's encrypted data
//! (including in backups) unreadable.

use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("cannot read the key-encryption key file {path}: {reason}")]
    KekFile { path: String, reason: String },
    #[error("the key-encryption key must be 32 bytes written as 64 hex characters")]
    KekFormat,
    #[error("wrapped data key was made with key-encryption key {found}, this node has {expected}")]
    WrongKek { found: String, expected: String },
    #[error("wrapped data key failed authentication")]
    Unwrap,
    #[error("the system random generator failed")]
    Random,
}

/// A tenant's data key in clear. Zeroised when dropped.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    pub fn generate(rng: &SystemRandom) -> Result<Self, EnvelopeError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill(bytes.as_mut())
            .map_err(|_| EnvelopeError::Random)?;
        Ok(Self(bytes))
    }

    /// A data key of known bytes, for unit tests.
    #[cfg(test)]
    pub(crate) fn from_bytes_for_tests(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `plaintext` under this data key with AES-256-GCM and a random nonce. `context`
    /// (e.g. `b"totp:<user id>"`) is bound as associated data, so a sealed value copied to
    /// another row or purpose does not open. Output: nonce followed by ciphertext and tag.
    pub fn seal(
        &self,
        rng: &SystemRandom,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let key = self.aead_key()?;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| EnvelopeError::Random)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        sealed.extend_from_slice(&nonce);
        let mut in_out = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut in_out,
        )
        .map_err(|_| EnvelopeError::Random)?;
        sealed.extend_from_slice(&in_out);
        in_out.zeroize();
        Ok(sealed)
    }

    /// Decrypts what [`seal`](Self::seal) made with the same key and context.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if sealed.len() < NONCE_LEN {
            return Err(EnvelopeError::Unwrap);
        }
        let key = self.aead_key()?;
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| EnvelopeError::Unwrap)?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plain_len = key
            .open_in_place(nonce, Aad::from(context), &mut in_out)
            .map_err(|_| EnvelopeError::Unwrap)?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }

    fn aead_key(&self) -> Result<LessSafeKey, EnvelopeError> {
        UnboundKey::new(&AES_256_GCM, self.expose())
            .map(LessSafeKey::new)
            .map_err(|_| EnvelopeError::Unwrap)
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A data key as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// The key-encryption key. Its id is derived from the key (a SHA-256 fingerprint), so a
/// wrapped key names the KEK that can open it without any configuration.
pub struct Kek {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn kek_sealing_context(context: &[u8]) -> Vec<u8> {
    let mut aad = b"tenantry-kek-sealed:".to_vec();
    aad.extend_from_slice(context);
    aad
}

fn associated_data(tenant_id: Uuid, version: i32) -> Vec<u8> {
    format!("tenantry-data-key:{tenant_id}:{version}").into_bytes()
}

impl Kek {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, EnvelopeError> {
        let fingerprint = digest(&SHA256, bytes);
        let id = format!("kek-{}", hex::encode(&fingerprint.as_ref()[..8]));
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| EnvelopeError::KekFormat)?;
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }

    /// Reads a KEK file: 64 hex characters, surrounding whitespace ignored.
    pub fn from_file(path: &Path) -> Result<Self, EnvelopeError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| {
            EnvelopeError::KekFile {
                path: path.display().to_string(),
                reason: error.to_string(),
            }
        })?);
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut()).map_err(|_| EnvelopeError::KekFormat)?;
        Self::from_bytes(&bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts a small secret of the control plane's own (an operator's TOTP secret) under
    /// the KEK, `context` bound as associated data (domain-separated from data keys' wrapping).
    /// Output: nonce followed by ciphertext and tag. Re-seal after a KEK rotation.
    pub fn seal(
        &self,
        rng: &SystemRandom,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| EnvelopeError::Random)?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kek_sealing_context(context)),
                &mut in_out,
            )
            .map_err(|_| EnvelopeError::Random)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&in_out);
        in_out.zeroize();
        Ok(sealed)
    }

    /// Opens what [`Kek::seal`] made with this KEK and `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if sealed.len() < NONCE_LEN {
            return Err(EnvelopeError::Unwrap);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| EnvelopeError::Unwrap)?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(kek_sealing_context(context)), &mut in_out)
            .map_err(|_| EnvelopeError::Unwrap)?;
        Ok(Zeroizing::new(plain.to_vec()))
    }

    pub fn wrap(
        &self,
        rng: &SystemRandom,
        data_key: &DataKey,
        tenant_id: Uuid,
        version: i32,
    ) -> Result<WrappedKey, EnvelopeError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| EnvelopeError::Random)?;
        let mut in_out = data_key.expose().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(tenant_id, version)),
                &mut in_out,
            )
            .map_err(|_| EnvelopeError::Random)?;
        Ok(WrappedKey {
            kek_id: self.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext: in_out,
        })
    }

    pub fn unwrap_key(
        &self,
        wrapped: &WrappedKey,
        tenant_id: Uuid,
        version: i32,
    ) -> Result<DataKey, EnvelopeError> {
        if wrapped.kek_id != self.id {
            return Err(EnvelopeError::WrongKek {
                found: wrapped.kek_id.clone(),
                expected: self.id.clone(),
            });
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&wrapped.nonce).map_err(|_| EnvelopeError::Unwrap)?;
        let mut in_out = Zeroizing::new(wrapped.ciphertext.clone());
        let plain = self
            .key
            .open_in_place(
                nonce,
                Aad::from(associated_data(tenant_id, version)),
                &mut in_out,
            )
            .map_err(|_| EnvelopeError::Unwrap)?;
        let bytes: [u8; 32] = plain.try_into().map_err(|_| EnvelopeError::Unwrap)?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_unwraps_only_for_its_tenant_and_version() {
        let rng = SystemRandom::new();
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let data_key = DataKey::generate(&rng).unwrap();
        let tenant = Uuid::new_v4();
        let wrapped = kek.wrap(&rng, &data_key, tenant, 1).unwrap();
        assert_ne!(&wrapped.ciphertext[..32], data_key.expose());
        let opened = kek.unwrap_key(&wrapped, tenant, 1).unwrap();
        assert_eq!(opened.expose(), data_key.expose());
        assert!(kek.unwrap_key(&wrapped, Uuid::new_v4(), 1).is_err());
        assert!(kek.unwrap_key(&wrapped, tenant, 2).is_err());
        let mut tampered = wrapped.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(kek.unwrap_key(&tampered, tenant, 1).is_err());
    }

    #[test]
    fn a_kek_sealed_value_opens_only_with_its_context_and_never_as_a_data_key() {
        let rng = SystemRandom::new();
        let kek = Kek::from_bytes(&[9u8; 32]).unwrap();
        let sealed = kek
            .seal(&rng, b"operator-totp:1", b"twenty secret bytes!")
            .unwrap();
        assert_eq!(
            &*kek.open(b"operator-totp:1", &sealed).unwrap(),
            b"twenty secret bytes!"
        );
        assert!(kek.open(b"operator-totp:2", &sealed).is_err());
        assert!(Kek::from_bytes(&[8u8; 32])
            .unwrap()
            .open(b"operator-totp:1", &sealed)
            .is_err());
        let as_wrapped = WrappedKey {
            kek_id: kek.id().to_owned(),
            nonce: sealed[..NONCE_LEN].to_vec(),
            ciphertext: sealed[NONCE_LEN..].to_vec(),
        };
        assert!(kek.unwrap_key(&as_wrapped, Uuid::nil(), 1).is_err());
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let rng = SystemRandom::new();
        let data_key = DataKey::generate(&rng).unwrap();
        let sealed = data_key.seal(&rng, b"totp:1", b"secret bytes").unwrap();
        assert!(!sealed.windows(12).any(|window| window == b"secret bytes"));
        assert_eq!(
            &data_key.open(b"totp:1", &sealed).unwrap()[..],
            b"secret bytes"
        );
        assert!(data_key.open(b"totp:2", &sealed).is_err());
        assert!(DataKey::generate(&rng)
            .unwrap()
            .open(b"totp:1", &sealed)
            .is_err());
        assert!(data_key.open(b"totp:1", &sealed[..5]).is_err());
    }

    #[test]
    fn another_kek_cannot_unwrap() {
        let rng = SystemRandom::new();
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let other = Kek::from_bytes(&[8u8; 32]).unwrap();
        let wrapped = kek
            .wrap(&rng, &DataKey::generate(&rng).unwrap(), Uuid::nil(), 1)
            .unwrap();
        assert!(matches!(
            other.unwrap_key(&wrapped, Uuid::nil(), 1),
            Err(EnvelopeError::WrongKek { .. })
        ));
    }
}
