//! Each tenant's JWT signing keys: Ed25519, one active at a time, the private half sealed
//! with the tenant's data key in the tenant's own `signing_keys` table.
//!
//! A tenant gets its first key lazily, the first time a token is issued (two nodes racing to
//! make it end with one: the table allows a single active key). Rotation retires the active
//! key and makes a new one; a retired key stays published (JWKS) and trusted for as long as a
//! token it signed can live, then disappears. Keys are cached per tenant and evicted on every
//! node when a rotation is announced.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use moka::future::Cache;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use shared::tenant_context::{TenantDb, TenantScope, TenantTransaction};
use uuid::Uuid;

use super::{store, TokenError};
use crate::tenancy::data_keys::{DataKeys, TenantDataKeys};

pub const ALGORITHM: &str = "EdDSA";

/// The key that signs new tokens.
pub struct ActiveKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

/// A key whose signatures are accepted and which is published in the JWKS.
pub struct PublishedKey {
    pub kid: String,
    /// The raw public key, base64url (the JWK `x`).
    pub x: String,
    pub decoding: DecodingKey,
}

pub struct TenantSigningKeys {
    pub active: ActiveKey,
    pub published: Vec<PublishedKey>,
}

impl TenantSigningKeys {
    pub fn published(&self, kid: &str) -> Option<&PublishedKey> {
        self.published.iter().find(|key| key.kid == kid)
    }
}

#[derive(Clone)]
pub struct SigningKeys {
    cache: Cache<Uuid, Arc<TenantSigningKeys>>,
    rng: SystemRandom,
    /// How long a retired key stays trusted: the longest an access token lives, plus leeway.
    retired_key_lifetime: Duration,
}

fn sealing_context(tenant_id: Uuid, kid: &str) -> Vec<u8> {
    format!("signing-key:{tenant_id}:{kid}").into_bytes()
}

impl SigningKeys {
    pub fn new(access_token_ttl: Duration, cache_ttl: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(cache_ttl)
                .build(),
            rng: SystemRandom::new(),
            retired_key_lifetime: access_token_ttl + Duration::from_secs(120),
        }
    }

    /// The tenant's keys, made on first use.
    pub async fn for_tenant(
        &self,
        db: &TenantDb,
        data_keys: &DataKeys,
        scope: &TenantScope,
    ) -> Result<Arc<TenantSigningKeys>, TokenError> {
        self.cache
            .try_get_with(scope.tenant_id, async {
                let keys = data_keys.for_tenant(scope.tenant_id).await?;
                let mut transaction = db.begin(scope).await?;
                let loaded = self
                    .load_or_create(&mut transaction, scope.tenant_id, &keys)
                    .await?;
                transaction.commit().await?;
                Ok::<_, TokenError>(Arc::new(loaded))
            })
            .await
            .map_err(|error| TokenError::Keys(error.to_string()))
    }

    async fn load_or_create(
        &self,
        transaction: &mut TenantTransaction,
        tenant_id: Uuid,
        data_keys: &TenantDataKeys,
    ) -> Result<TenantSigningKeys, TokenError> {
        if let Some(keys) = self.load(transaction, tenant_id, data_keys).await? {
            return Ok(keys);
        }
        self.insert_new_key(transaction, tenant_id, data_keys)
            .await?;
        // Ours, or the one a concurrent node committed first.
        self.load(transaction, tenant_id, data_keys)
            .await?
            .ok_or_else(|| TokenError::Keys("no active signing key after creating one".to_owned()))
    }

    async fn load(
        &self,
        transaction: &mut TenantTransaction,
        tenant_id: Uuid,
        data_keys: &TenantDataKeys,
    ) -> Result<Option<TenantSigningKeys>, TokenError> {
        let retired_seconds = self.retired_key_lifetime.as_secs_f64();
        let stored = store::published_signing_keys(transaction, retired_seconds).await?;
        let mut active = None;
        let mut published = Vec::new();
        for key in stored {
            let kid = key.kid;
            let x = URL_SAFE_NO_PAD.encode(&key.public_key);
            let decoding = DecodingKey::from_ed_components(&x)
                .map_err(|error| TokenError::Keys(format!("stored public key {kid}: {error}")))?;
            if key.active {
                let data_key = data_keys.version(key.data_key_version)?;
                let private_key =
                    data_key.open(&sealing_context(tenant_id, &kid), &key.sealed_private_key)?;
                active = Some(ActiveKey {
                    kid: kid.clone(),
                    encoding: EncodingKey::from_ed_der(&private_key),
                });
            }
            published.push(PublishedKey { kid, x, decoding });
        }
        Ok(active.map(|active| TenantSigningKeys { active, published }))
    }

    async fn insert_new_key(
        &self,
        transaction: &mut TenantTransaction,
        tenant_id: Uuid,
        data_keys: &TenantDataKeys,
    ) -> Result<(), TokenError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&self.rng)
            .map_err(|_| TokenError::Keys("key generation failed".to_owned()))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| TokenError::Keys("generated key does not parse".to_owned()))?;
        let kid = Uuid::now_v7().simple().to_string();
        let (version, data_key) = data_keys.current()?;
        let sealed = data_key.seal(&self.rng, &sealing_context(tenant_id, &kid), pkcs8.as_ref())?;
        let public_key = pair.public_key().as_ref().to_vec();
        store::insert_signing_key(transaction, &kid, ALGORITHM, &public_key, &sealed, version)
            .await?;
        Ok(())
    }

    /// Retires the active key and makes a new one; returns the new key's id. The caller
    /// announces the change so every node reloads.
    pub async fn rotate(
        &self,
        transaction: &mut TenantTransaction,
        tenant_id: Uuid,
        data_keys: &TenantDataKeys,
    ) -> Result<String, TokenError> {
        store::retire_active_signing_key(transaction).await?;
        self.insert_new_key(transaction, tenant_id, data_keys)
            .await?;
        self.load(transaction, tenant_id, data_keys)
            .await?
            .map(|keys| keys.active.kid)
            .ok_or_else(|| TokenError::Keys("no active signing key after rotation".to_owned()))
    }

    pub async fn invalidate(&self, tenant_id: Uuid) {
        self.cache.invalidate(&tenant_id).await;
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}
