//! The control plane's pools to tenant clusters, one per cluster, made at first use. The
//! catalog's own cluster is the catalog pool.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use deadpool_postgres::Pool;
use shared::tenant::Tenant;

use super::service::UrlRef;
use crate::context::ControlPlane;
use crate::error::ControlError;

/// Connections the control plane opens to each cluster other than the catalog's, at most.
const POOL_SIZE: usize = 4;

#[derive(Default)]
pub struct ClusterPools {
    pools: Mutex<HashMap<String, Pool>>,
}

impl ClusterPools {
    /// The pool for cluster `name`, reached through `url` (`None`: the catalog's cluster).
    /// Building it opens no connection.
    pub fn pool(
        &self,
        control: &ControlPlane,
        name: &str,
        url: Option<&UrlRef>,
    ) -> Result<Pool, ControlError> {
        let Some(url) = url else {
            return Ok(control.pool.clone());
        };
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pool) = pools.get(name) {
            return Ok(pool.clone());
        }
        // A pool is built without connecting: only settings it refuses can fail here.
        let pool = shared::db::pool(url.pg_config()?, POOL_SIZE).map_err(|_| url.not_a_url())?;
        pools.insert(name.to_owned(), pool.clone());
        Ok(pool)
    }

    /// The pool of the cluster `tenant` is placed on, and whether that is another cluster than
    /// the catalog's (then a step's work and its record in the catalog are two transactions).
    /// Asks the catalog through `catalog`, the connection the caller holds: taking a second
    /// one from the catalog pool while holding one could wait on itself when the pool is full.
    pub async fn of_tenant(
        &self,
        control: &ControlPlane,
        catalog: &tokio_postgres::Client,
        tenant: &Tenant,
    ) -> Result<TenantCluster, ControlError> {
        self.named(control, catalog, &tenant.cluster).await
    }

    /// The pool of the cluster called `name`, asking the catalog through `catalog` where it
    /// is (see [`Self::of_tenant`]).
    pub async fn named(
        &self,
        control: &ControlPlane,
        catalog: &tokio_postgres::Client,
        name: &str,
    ) -> Result<TenantCluster, ControlError> {
        let url = super::store::url_of(catalog, name)
            .await?
            .ok_or_else(|| ControlError::ClusterNotFound(name.to_owned()))?;
        Ok(TenantCluster {
            pool: self.pool(control, name, url.as_ref())?,
            remote: url.is_some(),
        })
    }

    /// A connection to the cluster `tenant` is placed on, for a caller that holds no catalog
    /// connection (the one used to look the cluster up is given back first).
    pub async fn client_of(
        &self,
        control: &ControlPlane,
        tenant: &Tenant,
    ) -> Result<deadpool_postgres::Object, ControlError> {
        let cluster = {
            let catalog = control.pool.get().await?;
            self.of_tenant(control, &catalog, tenant).await?
        };
        Ok(cluster.pool.get().await?)
    }

    /// Every pool made so far, by cluster name (for `/metrics`).
    pub fn opened(&self) -> Vec<(String, Pool)> {
        self.pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, pool)| (name.clone(), pool.clone()))
            .collect()
    }

    /// Drops the pool of a cluster that was removed.
    pub fn forget(&self, name: &str) {
        self.pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

/// Where a tenant's schema lives.
pub struct TenantCluster {
    pub pool: Pool,
    /// Not the catalog's cluster.
    pub remote: bool,
}
