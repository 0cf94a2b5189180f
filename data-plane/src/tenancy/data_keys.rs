//! Tenants' data keys, opened with the key-encryption key and cached in memory.
//!
//! Wrapped keys live in the catalog (`control.tenant_data_keys`), readable by the data plane's
//! login role; only a node holding the KEK can open them. Clear keys are kept in a moka cache
//! (zeroised when evicted and dropped) and forgotten when the control plane announces a change
//! to the tenant, so a destroyed key (tenant deletion) stops being usable at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use moka::future::Cache;
use shared::envelope::{DataKey, EnvelopeError, Kek};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    #[error("catalog unavailable: {0}")]
    Catalog(String),
    #[error("tenant {0} has no data key")]
    Missing(Uuid),
    #[error("data key version {version} of tenant {tenant} is unknown")]
    UnknownVersion { tenant: Uuid, version: i32 },
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

/// One tenant's opened data keys, by version; the newest seals new values.
pub struct TenantDataKeys {
    tenant_id: Uuid,
    keys: BTreeMap<i32, DataKey>,
}

impl TenantDataKeys {
    /// The key new values are sealed with, and its version.
    pub fn current(&self) -> Result<(i32, &DataKey), DataKeyError> {
        self.keys
            .iter()
            .next_back()
            .map(|(version, key)| (*version, key))
            .ok_or(DataKeyError::Missing(self.tenant_id))
    }

    pub fn version(&self, version: i32) -> Result<&DataKey, DataKeyError> {
        self.keys.get(&version).ok_or(DataKeyError::UnknownVersion {
            tenant: self.tenant_id,
            version,
        })
    }
}

#[derive(Clone)]
pub struct DataKeys {
    pool: Pool,
    kek: Arc<Kek>,
    cache: Cache<Uuid, Arc<TenantDataKeys>>,
}

impl DataKeys {
    pub fn new(pool: Pool, kek: Arc<Kek>, ttl: Duration) -> Self {
        Self {
            pool,
            kek,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    pub async fn for_tenant(&self, tenant_id: Uuid) -> Result<Arc<TenantDataKeys>, DataKeyError> {
        self.cache
            .try_get_with(tenant_id, self.load(tenant_id))
            .await
            .map_err(|error| match Arc::try_unwrap(error) {
                Ok(error) => error,
                Err(shared) => DataKeyError::Catalog(shared.to_string()),
            })
    }

    async fn load(&self, tenant_id: Uuid) -> Result<Arc<TenantDataKeys>, DataKeyError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| DataKeyError::Catalog(error.to_string()))?;
        let wrapped_keys = shared::catalog::wrapped_data_keys(&client, tenant_id)
            .await
            .map_err(|error| DataKeyError::Catalog(error.to_string()))?;
        let mut keys = BTreeMap::new();
        for (version, wrapped) in wrapped_keys {
            keys.insert(version, self.kek.unwrap_key(&wrapped, tenant_id, version)?);
        }
        if keys.is_empty() {
            return Err(DataKeyError::Missing(tenant_id));
        }
        Ok(Arc::new(TenantDataKeys { tenant_id, keys }))
    }

    pub async fn invalidate(&self, tenant_id: Uuid) {
        self.cache.invalidate(&tenant_id).await;
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}
