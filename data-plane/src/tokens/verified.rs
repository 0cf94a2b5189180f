//! A per-node cache of access tokens whose signature and claims were already checked.
//!
//! An Ed25519 signature check is most of what a bearer token adds to a request (tens of
//! microseconds of CPU), and a client presents the same token many times during its life.
//! The cache maps (tenant, SHA-256 of the *whole* token) to its claims, so any change to the
//! header, payload or signature is a different key and gets the full check. A hit is honoured
//! only while the token is unexpired (with the same leeway as the full check) and its signing
//! key is still one of the tenant's published keys; anything else falls through to the full
//! check, which gives the precise rejection. Only accepted tokens are cached.
//!
//! What the cache does not decide: whether the session is still live (checked per request,
//! see `sessions`) — revocation is therefore exactly as immediate as without the cache.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use ring::digest::{digest, SHA256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::access::{self, unexpired, AccessClaims, Rejection, Verified, LEEWAY_SECONDS};
use super::signing_keys::TenantSigningKeys;

#[derive(Clone)]
pub struct VerifiedTokens {
    cache: Cache<(Uuid, [u8; 32]), Arc<Verified>>,
}

impl VerifiedTokens {
    /// Entries live at most as long as an access token (plus the leeway).
    pub fn new(access_token_ttl: Duration, capacity: u64) -> Self {
        let leeway = Duration::from_secs(LEEWAY_SECONDS.unsigned_abs());
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(access_token_ttl + leeway)
                .build(),
        }
    }

    /// [`access::verify`] at `now`, answered from the cache when the same token was accepted
    /// before.
    pub async fn verify(
        &self,
        keys: &TenantSigningKeys,
        token: &str,
        tenant_id: Uuid,
        expected_issuer: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<AccessClaims>, Rejection> {
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        let key = (tenant_id, fingerprint);
        if let Some(hit) = self.cache.get(&key).await {
            if unexpired(hit.claims.exp, now.unix_timestamp()) && keys.published(&hit.kid).is_some()
            {
                return Ok(hit.claims.clone());
            }
            self.cache.invalidate(&key).await;
        }
        let verified = Arc::new(access::verify(
            keys,
            token,
            tenant_id,
            expected_issuer,
            now,
        )?);
        let claims = verified.claims.clone();
        self.cache.insert(key, verified).await;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_token_is_honoured_up_to_its_expiry_plus_the_leeway_and_not_after() {
        let exp = 1_700_000_000;
        assert!(unexpired(exp, exp - 600));
        assert!(unexpired(exp, exp + LEEWAY_SECONDS));
        assert!(!unexpired(exp, exp + LEEWAY_SECONDS + 1));
    }
}
