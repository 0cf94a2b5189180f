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
    /// The catalog gave no connection in time, or the connection failed under the query:
    /// 503 `database_unavailable`, like every other such wait.
    #[error("catalog unavailable: {0}")]
    CatalogUnavailable(String),
    /// The catalog refused the query itself.
    #[error("reading the data keys failed: {0}")]
    Catalog(String),
    #[error("tenant {0} has no data key")]
    Missing(Uuid),
    #[error("data key version {version} of tenant {tenant} is unknown")]
    UnknownVersion { tenant: Uuid, version: i32 },
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

/// A catalog that gave no connection in time is 503 `database_unavailable` (retry), as every
/// other wait for a connection is; anything else is a logged 500. Every error type of the data
/// plane that carries a `DataKeyError` maps it through here.
impl From<DataKeyError> for shared::error::ApiError {
    fn from(error: DataKeyError) -> Self {
        match error {
            DataKeyError::CatalogUnavailable(reason) => {
                tracing::warn!(%reason, "a tenant's data keys could not be read: catalog unavailable");
                Self::database_unavailable()
            }
            other => Self::internal(&other),
        }
    }
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
    /// The longest the catalog may take to answer a load.
    deadline: Duration,
}

impl DataKeys {
    pub fn new(pool: Pool, kek: Arc<Kek>, ttl: Duration, deadline: Duration) -> Self {
        Self {
            pool,
            kek,
            deadline,
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
                // Another request's load failed, and this one waited for it.
                Err(shared) => match &*shared {
                    DataKeyError::CatalogUnavailable(reason) => {
                        DataKeyError::CatalogUnavailable(reason.clone())
                    }
                    other => DataKeyError::Catalog(other.to_string()),
                },
            })
    }

    async fn load(&self, tenant_id: Uuid) -> Result<Arc<TenantDataKeys>, DataKeyError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| DataKeyError::CatalogUnavailable(error.to_string()))?;
        let read = shared::catalog::wrapped_data_keys(&client, tenant_id);
        let read = tokio::time::timeout(self.deadline, read).await;
        let Some(read) = shared::db::answered_in_time(client, read) else {
            return Err(DataKeyError::CatalogUnavailable(format!(
                "no answer within {:?}",
                self.deadline
            )));
        };
        let wrapped_keys = read.map_err(|error| match &error {
            // No SQL state: the connection failed, not the query.
            shared::catalog::CatalogError::Db(db) if db.code().is_none() => {
                DataKeyError::CatalogUnavailable(error.to_string())
            }
            _ => DataKeyError::Catalog(error.to_string()),
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_catalog_that_gives_no_connection_is_a_503_to_retry_not_a_500() {
        // Nothing listens on port 1 of loopback: every connection is refused.
        let unreachable = "postgres://tenantry@127.0.0.1:1/catalog".parse().unwrap();
        let pool = shared::db::pool(unreachable, 1).unwrap();
        let kek = Arc::new(Kek::from_bytes(&[7; 32]).unwrap());
        let keys = DataKeys::new(pool, kek, Duration::from_secs(60), Duration::from_secs(3));
        let error = keys.for_tenant(Uuid::now_v7()).await.err().unwrap();
        let refusal = shared::error::ApiError::from(error);
        assert_eq!(
            (refusal.status().as_u16(), refusal.code()),
            (503, "database_unavailable")
        );
        // What the catalog refuses is a fault of ours: logged, 500.
        let refused = shared::error::ApiError::from(DataKeyError::Missing(Uuid::now_v7()));
        assert_eq!(refused.status().as_u16(), 500);
    }
}
