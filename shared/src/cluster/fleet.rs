//! A data-plane node's connections to the clusters other than the catalog's.
//!
//! A tenant's transactions run on the cluster it is placed on. The catalog's cluster is served
//! by the node's own pools ([`crate::tenant_context::TenantDb`]); every other cluster gets
//! pools of its own at the first request for one of its tenants: one per HTTP worker (a
//! connection is driven by the runtime that opened it, see `TenantDb`) and one for work off
//! the workers, together at most the cluster's connection budget on this node. Building the
//! pools connects to nothing, so a cluster that is down costs only its own tenants' requests:
//! they get [`Unavailable`] (a 503 `tenant_unavailable`) within the pool's connect timeout.
//!
//! The node connects to every cluster as itself. The cluster's registered URL (read from the
//! reference in this node's environment) gives where: hosts, ports, database, TLS mode. The
//! node's own catalog settings give who and how: login role, password, options (none from the
//! data plane, whose statement timeout goes with each transaction), application name. So the control plane's credentials in that URL are never used
//! to connect by the data plane. Where the node's role has another password on a cluster, a
//! file named like the cluster in the node's `data_cluster_password_dir` holds it (the layout
//! of a Kubernetes Secret mounted as a directory); it is read when the cluster's pools are
//! built.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use deadpool_postgres::{Object, Pool};
use tokio_postgres::config::Host;

use zeroize::Zeroizing;

use super::UrlRef;

/// Connections of a cluster's pool for work off the HTTP workers, at most.
const SHARED_POOL_SIZE: usize = 2;

/// Pools to every cluster a node has served a tenant of, opened at first use.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    /// The catalog, which says where each cluster's URL is.
    catalog: Pool,
    /// Who the node is: login role, password, options, application name.
    login: tokio_postgres::Config,
    /// A directory of the node's passwords per cluster, a file per cluster name.
    passwords: Option<PathBuf>,
    /// Connections to each cluster on this node, at most (split over the workers).
    budget: usize,
    workers: usize,
    /// Affinity groups per worker (`TenantDb`'s).
    groups: usize,
    clusters: Mutex<HashMap<String, Arc<ClusterPools>>>,
    /// Held while a cluster's pools are looked up and built, so concurrent first requests
    /// ask the catalog once.
    opening: tokio::sync::Mutex<()>,
}

/// One cluster's pools on this node.
pub struct ClusterPools {
    name: String,
    shared: Pool,
    /// `groups` pools per worker, worker by worker.
    workers: Vec<Pool>,
    groups: usize,
}

impl ClusterPools {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection for a tenant of affinity group `group` on the `worker`-th HTTP worker,
    /// given as `(worker, group)`: preferably from that group's pool
    /// ([`crate::db::get_preferring`]). `None`: from the pool for work off the workers.
    pub async fn connection(
        &self,
        worker: Option<(usize, usize)>,
    ) -> Result<Object, deadpool_postgres::PoolError> {
        match worker {
            Some((worker, group)) if !self.workers.is_empty() => {
                let first = (worker % (self.workers.len() / self.groups)) * self.groups;
                crate::db::get_preferring(&self.workers[first..first + self.groups], group).await
            }
            _ => self.shared.get().await,
        }
    }

    /// The pool for work off the HTTP workers (background tasks, readiness).
    pub fn shared(&self) -> &Pool {
        &self.shared
    }

    /// Every pool of the cluster: the workers' and the shared one (for checks over every
    /// connection).
    pub fn all(&self) -> impl Iterator<Item = &Pool> {
        self.workers.iter().chain([&self.shared])
    }
}

/// A tenant's cluster could not give a connection: not registered, its URL reference leads
/// nowhere on this node, or it does not answer. Only that cluster's tenants are affected.
#[derive(Debug, thiserror::Error)]
#[error("cluster '{cluster}' is unavailable: {reason}")]
pub struct Unavailable {
    pub cluster: String,
    pub reason: String,
}

impl Fleet {
    /// `login` is how the node connects to its catalog (whose hosts and database are not
    /// used for other clusters), with the password of a cluster in `passwords` where there is
    /// one; `budget` the connections each other cluster may have from this node, split over
    /// `workers` HTTP workers and `groups` affinity groups each.
    pub fn new(
        catalog: Pool,
        login: tokio_postgres::Config,
        passwords: Option<PathBuf>,
        budget: usize,
        workers: usize,
        groups: usize,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                catalog,
                login,
                passwords,
                budget: budget.max(1),
                workers: workers.max(1),
                groups: groups.max(1),
                clusters: Mutex::default(),
                opening: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A connection to cluster `name` from the pool of an HTTP worker's affinity group,
    /// `(worker, group)` (`None`: work off the workers).
    pub async fn connection(
        &self,
        name: &str,
        worker: Option<(usize, usize)>,
    ) -> Result<Object, Unavailable> {
        let pools = self.cluster(name).await?;
        pools.connection(worker).await.map_err(|error| Unavailable {
            cluster: name.to_owned(),
            reason: error.to_string(),
        })
    }

    /// Cluster `name`'s pools, built at the first call (connecting to nothing).
    pub async fn cluster(&self, name: &str) -> Result<Arc<ClusterPools>, Unavailable> {
        if let Some(pools) = self.opened_pools(name) {
            return Ok(pools);
        }
        let _opening = self.inner.opening.lock().await;
        if let Some(pools) = self.opened_pools(name) {
            return Ok(pools);
        }
        let unavailable = |reason: String| Unavailable {
            cluster: name.to_owned(),
            reason,
        };
        let url = {
            let client = self
                .inner
                .catalog
                .get()
                .await
                .map_err(|error| unavailable(format!("the catalog: {error}")))?;
            super::store::url_of(&client, name)
                .await
                .map_err(|error| unavailable(format!("the catalog: {error}")))?
                .ok_or_else(|| unavailable("not registered".to_owned()))?
                .ok_or_else(|| unavailable("the catalog's cluster has no pools here".to_owned()))?
        };
        self.open(name, &url)
    }

    /// Builds cluster `name`'s pools, reached through `url` (connecting to nothing), unless
    /// they are built already.
    pub fn open(&self, name: &str, url: &UrlRef) -> Result<Arc<ClusterPools>, Unavailable> {
        let unavailable = |reason: String| Unavailable {
            cluster: name.to_owned(),
            reason,
        };
        let config = self
            .connection_config(name, url)
            .map_err(|error| unavailable(error.to_string()))?;
        let per_worker = self.inner.budget.div_ceil(self.inner.workers);
        let group_sizes = crate::db::group_sizes(per_worker, self.inner.groups);
        let pool = |size: usize| {
            crate::db::pool(config.clone(), size).map_err(|error| unavailable(error.to_string()))
        };
        let built = Arc::new(ClusterPools {
            name: name.to_owned(),
            shared: pool(per_worker.min(SHARED_POOL_SIZE))?,
            workers: (0..self.inner.workers)
                .flat_map(|_| group_sizes.iter().map(|size| pool(*size)))
                .collect::<Result<_, _>>()?,
            groups: group_sizes.len(),
        });
        let mut clusters = self
            .inner
            .clusters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(clusters.entry(name.to_owned()).or_insert(built).clone())
    }

    fn opened_pools(&self, name: &str) -> Option<Arc<ClusterPools>> {
        self.inner
            .clusters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every cluster whose pools are built, by name.
    pub fn opened(&self) -> Vec<Arc<ClusterPools>> {
        let mut opened: Vec<_> = self
            .inner
            .clusters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        opened.sort_by(|a, b| a.name.cmp(&b.name));
        opened
    }

    /// The catalog pool the fleet asks.
    pub fn catalog(&self) -> &Pool {
        &self.inner.catalog
    }

    /// How this node connects to cluster `name`, which `url` refers to (the pools use it, and
    /// connections outside them: a listener).
    pub fn connection_config(
        &self,
        name: &str,
        url: &UrlRef,
    ) -> Result<tokio_postgres::Config, super::UrlError> {
        let mut config = login_to(&url.pg_config()?, &self.inner.login);
        if let Some(password) = self.password_of(name)? {
            config.password(password.as_bytes());
        }
        Ok(config)
    }

    /// The node's password on cluster `name` from its password directory, if it has a file
    /// for it.
    fn password_of(&self, name: &str) -> Result<Option<Zeroizing<String>>, super::UrlError> {
        let Some(dir) = &self.inner.passwords else {
            return Ok(None);
        };
        // Cluster names are checked on registration; a name that is not a plain file name
        // never leads out of the directory.
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Ok(None);
        }
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                Ok(Some(Zeroizing::new(
                    text.trim_end_matches(['\n', '\r']).to_owned(),
                )))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(super::UrlError::Unreadable {
                reference: path.display().to_string(),
                reason: error.to_string(),
            }),
        }
    }
}

/// `target`'s hosts, ports, database and TLS mode with `login`'s role, password, options,
/// application name and connect timeout.
fn login_to(
    target: &tokio_postgres::Config,
    login: &tokio_postgres::Config,
) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    for host in target.get_hosts() {
        match host {
            Host::Tcp(name) => config.host(name),
            Host::Unix(path) => config.host_path(path),
        };
    }
    for address in target.get_hostaddrs() {
        config.hostaddr(*address);
    }
    for port in target.get_ports() {
        config.port(*port);
    }
    if let Some(database) = target.get_dbname() {
        config.dbname(database);
    }
    config.ssl_mode(target.get_ssl_mode());
    if let Some(user) = login.get_user() {
        config.user(user);
    }
    if let Some(password) = login.get_password() {
        config.password(password);
    }
    if let Some(options) = login.get_options() {
        config.options(options);
    }
    if let Some(name) = login.get_application_name() {
        config.application_name(name);
    }
    if let Some(timeout) = login.get_connect_timeout() {
        config.connect_timeout(*timeout);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_reaches_a_cluster_as_itself_never_with_the_registered_credentials() {
        let registered: tokio_postgres::Config =
            "postgres://admin:s3cret@db-2.internal:6543/tenantry?sslmode=require"
                .parse()
                .unwrap();
        let mut login: tokio_postgres::Config =
            "postgres://tenantry_dataplane:dp-pass@catalog.internal/catalog"
                .parse()
                .unwrap();
        login.options("-c statement_timeout=5000");
        let config = login_to(&registered, &login);
        assert_eq!(config.get_hosts(), &[Host::Tcp("db-2.internal".to_owned())]);
        assert_eq!(config.get_ports(), &[6543]);
        assert_eq!(config.get_dbname(), Some("tenantry"));
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(config.get_user(), Some("tenantry_dataplane"));
        assert_eq!(config.get_password(), Some(&b"dp-pass"[..]));
        assert_eq!(config.get_options(), Some("-c statement_timeout=5000"));

        // A node whose login has no password sends none: not the registered one.
        let no_password: tokio_postgres::Config =
            "postgres://tenantry_dataplane@catalog.internal/catalog"
                .parse()
                .unwrap();
        assert_eq!(login_to(&registered, &no_password).get_password(), None);
    }

    #[tokio::test]
    async fn a_cluster_password_comes_from_its_own_file_and_nowhere_else() {
        let dir = std::env::temp_dir().join(format!(
            "tenantry-fleet-passwords-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        std::fs::write(dir.join("eu-2"), "on-eu-2\n").unwrap();
        std::fs::write(dir.join("nested").join("x"), "outside").unwrap();
        let login: tokio_postgres::Config = "postgres://tenantry_dataplane:catalog-pass@db/catalog"
            .parse()
            .unwrap();
        let catalog = crate::db::pool(login.clone(), 1).unwrap();
        let fleet = Fleet::new(catalog, login, Some(dir.clone()), 4, 2, 1);
        let url = |name: &str| {
            let path = dir.join(format!("{name}.url"));
            std::fs::write(&path, "postgres://admin:admin-pass@db-2/tenantry").unwrap();
            UrlRef::File(path)
        };
        let password = |name: &str| {
            fleet
                .connection_config(name, &url(name))
                .unwrap()
                .get_password()
                .map(<[u8]>::to_vec)
        };
        // Its file, without the trailing newline.
        assert_eq!(password("eu-2"), Some(b"on-eu-2".to_vec()));
        // No file: the catalog login's password, never the registered one.
        assert_eq!(password("us-1"), Some(b"catalog-pass".to_vec()));
        // A name that is not a plain file name reads nothing.
        assert_eq!(password("nested/x"), Some(b"catalog-pass".to_vec()));
        assert_eq!(password("../eu-2"), Some(b"catalog-pass".to_vec()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
