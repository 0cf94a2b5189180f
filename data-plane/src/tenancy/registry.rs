//! The data plane's view of the catalog: tenants by slug and custom domains, cached in moka.
//!
//! Entries (also "no such tenant") live at most the configured TTL; the control plane's
//! NOTIFY normally evicts them within milliseconds of a change (see `listener`). Concurrent
//! misses for one key share a single catalog query, which has the tenant transactions'
//! round-trip deadline: a catalog that gives no connection in time or does not answer is 503
//! `catalog_unavailable` with `Retry-After`, never a request that waits as long as the hang.
//!
//! A load and an eviction can cross: a load that read the catalog before a change and is
//! stored after the change's eviction would keep the old entry until its TTL (seen: a moved
//! tenant's writes sent to its dropped source schema, a 500). So every eviction moves a
//! generation on, and a load that sees the generation move while it reads reads again (up to
//! three times): what it stores was read after the last eviction it could have missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use moka::future::Cache;
use shared::catalog::{self, Quotas};
use shared::error::ApiError;
use shared::tenant::{Tenant, TenantSlug};
use shared::tenant_context::TenantScope;

use super::resolve::{tenant_mismatch, TenantKey};
use crate::metrics::Metrics;

/// A tenant as the data plane serves it.
#[derive(Debug)]
pub struct ServedTenant {
    pub tenant: Tenant,
    pub scope: TenantScope,
    /// The tenant's effective limits (overrides over plan defaults), reloaded with the tenant
    /// whenever the control plane publishes a change, quota changes included.
    pub quotas: Quotas,
}

/// Reads of one load at most while evictions keep crossing it.
const LOAD_ATTEMPTS: usize = 3;

#[derive(Clone)]
pub struct TenantRegistry {
    pool: Pool,
    /// The longest the catalog may take to answer a load.
    deadline: Duration,
    by_slug: Cache<TenantSlug, Option<Arc<ServedTenant>>>,
    domains: Cache<String, Option<TenantSlug>>,
    /// Moved on by every eviction (see the module's doc).
    generation: Arc<AtomicU64>,
    metrics: Metrics,
}

impl TenantRegistry {
    pub fn new(pool: Pool, ttl: Duration, deadline: Duration, metrics: Metrics) -> Self {
        Self {
            pool,
            deadline,
            by_slug: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            domains: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            generation: Arc::new(AtomicU64::new(0)),
            metrics,
        }
    }

    /// The tenant `key` names, in whatever status the catalog has it (deleted ones excepted).
    /// A registered custom domain whose tenant is not the one `X-Tenant` named is 400
    /// `tenant_mismatch`, as a slug host is (`resolve`).
    pub async fn lookup(&self, key: &TenantKey) -> Result<Option<Arc<ServedTenant>>, ApiError> {
        let slug = match key {
            TenantKey::Slug(slug) => slug.clone(),
            TenantKey::Domain { name, header } => match self.domain_slug(name).await? {
                Some(slug) if header.as_ref().is_some_and(|named| *named != slug) => {
                    return Err(tenant_mismatch());
                }
                Some(slug) => slug,
                None => return Ok(None),
            },
        };
        if let Some(cached) = self.by_slug.get(&slug).await {
            self.metrics.tenant_cache_hits.inc();
            return Ok(cached);
        }
        self.metrics.tenant_cache_misses.inc();
        let loaded = self
            .by_slug
            .try_get_with(slug.clone(), async {
                let mut served = None;
                for _ in 0..LOAD_ATTEMPTS {
                    let generation = self.generation.load(Ordering::Acquire);
                    let read = self.load(&slug).await?;
                    if self.generation.load(Ordering::Acquire) == generation {
                        return Ok::<_, String>(read);
                    }
                    served = Some(read);
                }
                // Evictions kept coming (a storm of changes): keep the last read, which the
                // next eviction or the TTL replaces.
                Ok(served.flatten())
            })
            .await;
        loaded.map_err(|error| catalog_unavailable(&error))
    }

    /// The tenant with `slug` and its quotas, read from the catalog.
    async fn load(&self, slug: &TenantSlug) -> Result<Option<Arc<ServedTenant>>, String> {
        let client = self.pool.get().await.map_err(|error| error.to_string())?;
        let read = async {
            let Some(tenant) = catalog::tenant_by_slug(&client, slug).await? else {
                return Ok(None);
            };
            // No quotas means the row vanished between the two reads: not served.
            let quotas = catalog::effective_quotas(&client, tenant.id).await?;
            Ok::<_, catalog::CatalogError>(quotas.map(|quotas| (tenant, quotas)))
        };
        let read = tokio::time::timeout(self.deadline, read).await;
        let read = self.answered(client, read)?;
        Ok(read.map(|(tenant, quotas)| {
            Arc::new(ServedTenant {
                scope: TenantScope::for_tenant(&tenant),
                tenant,
                quotas,
            })
        }))
    }

    /// What a read on `client` within the deadline gave, or why not.
    fn answered<T>(
        &self,
        client: Object,
        read: Result<Result<T, catalog::CatalogError>, tokio::time::error::Elapsed>,
    ) -> Result<T, String> {
        shared::db::answered_in_time(client, read)
            .ok_or_else(|| format!("no answer within {:?}", self.deadline))?
            .map_err(|error| error.to_string())
    }

    async fn domain_slug(&self, domain: &str) -> Result<Option<TenantSlug>, ApiError> {
        self.domains
            .try_get_with(domain.to_owned(), async {
                let client = self.pool.get().await.map_err(|error| error.to_string())?;
                let read = catalog::tenant_by_domain(&client, domain);
                let read = tokio::time::timeout(self.deadline, read).await;
                let tenant = self.answered(client, read)?;
                Ok::<_, String>(tenant.map(|tenant| tenant.slug))
            })
            .await
            .map_err(|error| catalog_unavailable(&error))
    }

    /// The id of the tenant cached under `slug`, if any (to evict caches keyed by id).
    pub async fn cached_id(&self, slug: &str) -> Option<uuid::Uuid> {
        let slug = TenantSlug::parse(slug).ok()?;
        self.by_slug
            .get(&slug)
            .await
            .flatten()
            .map(|served| served.tenant.id)
    }

    /// Forgets what is cached about `slug` (and every domain mapping, which are few and
    /// cheap to reload).
    pub async fn invalidate(&self, slug: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(slug) = TenantSlug::parse(slug) {
            self.by_slug.invalidate(&slug).await;
        }
        self.domains.invalidate_all();
    }

    /// Forgets everything: after the listener lost its connection and may have missed news.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.by_slug.invalidate_all();
        self.domains.invalidate_all();
    }
}

fn catalog_unavailable(error: &str) -> ApiError {
    tracing::error!(%error, "tenant catalog lookup failed");
    ApiError::unavailable(
        "catalog_unavailable",
        "the tenant catalog is unavailable; retry shortly",
    )
    .with_retry_after(shared::error::DATABASE_RETRY_AFTER_SECONDS)
}
