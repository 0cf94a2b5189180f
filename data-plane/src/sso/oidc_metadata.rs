//! OpenID providers' discovery documents and signing keys, cached per issuer on each node.
//!
//! A sign-in needs the issuer's metadata twice (start and callback); fetching it each time
//! costs two round trips to the IdP per step and makes every sign-in wait on the IdP's
//! `.well-known` endpoint. So each node keeps what it fetched (document and JWKS together) for
//! as long as the IdP's `Cache-Control` says, within [`MIN_FRESH`] and [`MAX_FRESH`]
//! ([`DEFAULT_FRESH`] without one); concurrent misses for one issuer share one fetch.
//!
//! **Key rotation.** An ID token signed with a key the cached JWKS does not hold (an unknown
//! `kid`) gets one fresh fetch before it is refused: IdPs publish a new key shortly before
//! they sign with it. That forced refresh happens at most once per [`FORCED_REFRESH_EVERY`]
//! per issuer, so tokens with made-up key ids cannot make us hammer the IdP.
//!
//! Every fetch goes through the node's egress guard (`shared::egress`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::IssuerUrl;
use serde::de::DeserializeOwned;

use super::SsoError;
use crate::state::DataPlane;

/// Shortest time a fetched document is kept, whatever the IdP says (`no-cache`, `max-age=0`).
pub const MIN_FRESH: Duration = Duration::from_secs(60);
/// Longest time a fetched document is kept, whatever the IdP says.
pub const MAX_FRESH: Duration = Duration::from_secs(24 * 3600);
/// How long a document is kept when the IdP sends no `Cache-Control` max-age.
pub const DEFAULT_FRESH: Duration = Duration::from_secs(15 * 60);
/// Least time between two refreshes forced by an unknown key id, per issuer.
pub const FORCED_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Issuers whose metadata a node keeps at most (a bound on memory whatever tenants configure).
const CAPACITY: u64 = 10_000;

/// One issuer's discovery document with its JWKS, as fetched.
#[derive(Debug)]
pub struct Fetched {
    pub metadata: CoreProviderMetadata,
    fetched_at: Instant,
    fresh_for: Duration,
    /// Fetched because a token named a key the previous copy lacked.
    forced: bool,
}

struct FreshFor;

impl moka::Expiry<String, Arc<Fetched>> for FreshFor {
    fn expire_after_create(
        &self,
        _issuer: &String,
        fetched: &Arc<Fetched>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(fetched.fresh_for)
    }
}

/// The node's cache of issuers' metadata.
#[derive(Clone)]
pub struct MetadataCache {
    cache: moka::future::Cache<String, Arc<Fetched>>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(FreshFor)
                .build(),
        }
    }
}

impl MetadataCache {
    /// The issuer's metadata: the cached copy while it is fresh, else fetched now.
    pub async fn get(
        &self,
        state: &DataPlane,
        issuer: &IssuerUrl,
    ) -> Result<Arc<Fetched>, SsoError> {
        self.cache
            .try_get_with(issuer.as_str().to_owned(), async {
                fetch(state, issuer, false).await.map(Arc::new)
            })
            .await
            .map_err(|error| error.as_ref().clone().into())
    }

    /// After a token named a key `stale` does not hold: a fresh copy, unless one was forced
    /// less than [`FORCED_REFRESH_EVERY`] ago (then `None`: the token is refused as it is).
    pub async fn refresh_for_unknown_key(
        &self,
        state: &DataPlane,
        issuer: &IssuerUrl,
        stale: &Fetched,
    ) -> Result<Option<Arc<Fetched>>, SsoError> {
        if stale.forced && stale.fetched_at.elapsed() < FORCED_REFRESH_EVERY {
            return Ok(None);
        }
        let key = issuer.as_str().to_owned();
        // Another request may have refreshed it already: take that copy if it is newer.
        if let Some(current) = self.cache.get(&key).await {
            if current.fetched_at > stale.fetched_at {
                return Ok(Some(current));
            }
        }
        let fetched = Arc::new(fetch(state, issuer, true).await.map_err(SsoError::from)?);
        self.cache.insert(key, fetched.clone()).await;
        Ok(Some(fetched))
    }
}

/// Why a fetch failed, kept by the cache for the requests that waited on it.
#[derive(Debug, Clone)]
pub enum FetchError {
    /// The configuration cannot work (a refused address, an issuer that is not what the
    /// document says).
    Config(String),
    /// The IdP could not be reached, or answered badly.
    Unavailable(String),
}

impl From<FetchError> for SsoError {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Config(message) => SsoError::InvalidConfig(message),
            FetchError::Unavailable(message) => SsoError::ProviderUnavailable(message),
        }
    }
}

async fn fetch(state: &DataPlane, issuer: &IssuerUrl, forced: bool) -> Result<Fetched, FetchError> {
    let discovery_url = issuer
        .join(".well-known/openid-configuration")
        .map_err(|error| FetchError::Config(format!("issuer: {error}")))?;
    let (mut metadata, document_fresh): (CoreProviderMetadata, _) =
        fetch_json(state, "OIDC discovery", discovery_url).await?;
    state.metrics.idp_fetched("discovery");
    if metadata.issuer() != issuer {
        return Err(FetchError::Config(format!(
            "OIDC discovery: the document's issuer {:?} is not the configured {:?}",
            metadata.issuer().as_str(),
            issuer.as_str()
        )));
    }
    let (jwks, keys_fresh): (CoreJsonWebKeySet, _) =
        fetch_json(state, "OIDC keys (JWKS)", metadata.jwks_uri().url().clone()).await?;
    state.metrics.idp_fetched("jwks");
    metadata = metadata.set_jwks(jwks);
    Ok(Fetched {
        metadata,
        fetched_at: Instant::now(),
        fresh_for: document_fresh.min(keys_fresh),
        forced,
    })
}

/// GETs `url` as JSON through the egress guard: the value, and how long it may be kept.
async fn fetch_json<T: DeserializeOwned>(
    state: &DataPlane,
    what: &str,
    url: url::Url,
) -> Result<(T, Duration), FetchError> {
    use shared::egress::EgressError;
    let failed = |error: EgressError| match error {
        EgressError::Refused(refused) => FetchError::Config(format!("{what}: {refused}")),
        EgressError::Failed(message) => FetchError::Unavailable(format!("{what}: {message}")),
    };
    let response = state
        .egress
        .get(url)
        .map_err(failed)?
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|error| failed(error.into()))?;
    if !response.status().is_success() {
        return Err(FetchError::Unavailable(format!(
            "{what}: answered {}",
            response.status()
        )));
    }
    let fresh_for = fresh_for(response.headers().get(reqwest::header::CACHE_CONTROL));
    let body = shared::egress::read_body(response, shared::egress::MAX_LIBRARY_BODY)
        .await
        .map_err(failed)?;
    let value = serde_json::from_slice(&body)
        .map_err(|error| FetchError::Unavailable(format!("{what}: not what OIDC says: {error}")))?;
    Ok((value, fresh_for))
}

/// How long an answer with this `Cache-Control` may be kept, within our bounds.
fn fresh_for(cache_control: Option<&reqwest::header::HeaderValue>) -> Duration {
    let Some(text) = cache_control.and_then(|value| value.to_str().ok()) else {
        return DEFAULT_FRESH;
    };
    let mut max_age = None;
    for directive in text.split(',').map(str::trim) {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        match name.to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return MIN_FRESH,
            "max-age" => max_age = value.trim_matches('"').parse::<u64>().ok(),
            _ => {}
        }
    }
    max_age.map_or(DEFAULT_FRESH, |seconds| {
        Duration::from_secs(seconds).clamp(MIN_FRESH, MAX_FRESH)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(header: &str) -> Duration {
        fresh_for(Some(
            &reqwest::header::HeaderValue::from_str(header).unwrap(),
        ))
    }

    #[test]
    fn cache_control_sets_the_lifetime_within_bounds() {
        assert_eq!(fresh_for(None), DEFAULT_FRESH);
        assert_eq!(of("public, max-age=3600"), Duration::from_secs(3600));
        assert_eq!(of("max-age=\"600\""), Duration::from_secs(600));
        assert_eq!(of("max-age=5"), MIN_FRESH);
        assert_eq!(of("max-age=31536000"), MAX_FRESH);
        assert_eq!(of("no-cache"), MIN_FRESH);
        assert_eq!(of("max-age=3600, no-store"), MIN_FRESH);
        assert_eq!(of("private"), DEFAULT_FRESH);
        assert_eq!(of("max-age=soon"), DEFAULT_FRESH);
    }
}
