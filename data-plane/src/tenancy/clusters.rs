//! The clusters a node serves tenants on, and what it runs for each besides their requests.
//!
//! A tenant's requests reach its cluster through `shared::cluster::fleet` (pools opened at the
//! first request). `NOTIFY` and the outboxes are per database, so for every cluster that holds
//! tenants the node also runs:
//! - a change listener ([`super::listener`]): tenants' transactions there announce ended
//!   sessions, role, key and settings changes on that cluster;
//! - the audit outbox recovery (`crate::audit::recovery`);
//! - the mail worker, when SMTP is configured (`crate::mail::worker`).
//!
//! The catalog's cluster gets them at start (`DataPlane::new`). Every other cluster gets them
//! when the node first sees it in the registry: at start, when the control plane announces a
//! new cluster (`Change::Clusters`), and every [`LOOK_AGAIN`] in case an announcement was
//! missed. A cluster that is down delays only its own tasks, each of which retries on its own.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shared::cluster::UrlRef;
use tokio::sync::{watch, Notify};

use super::listener::{self, Caches};
use crate::state::DataPlane;

/// How often a node reads the registry even when no announcement came.
const LOOK_AGAIN: Duration = Duration::from_secs(30);

/// The clusters this node has started serving (all but the catalog's), and their listeners.
#[derive(Clone, Default)]
pub struct ClusterWatch {
    /// Per cluster: whether its change listener is connected.
    listening: Arc<Mutex<BTreeMap<String, watch::Receiver<bool>>>>,
    /// Wakes the watcher: the registry changed.
    wake: Arc<Notify>,
    /// Wakes whoever waits for a cluster to be started.
    started: Arc<Notify>,
}

impl ClusterWatch {
    /// The registry changed: look at it now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Each started cluster, by name, and whether its change listener is connected.
    pub fn listening(&self) -> Vec<(String, bool)> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, ready)| (name.clone(), *ready.borrow()))
            .collect()
    }

    fn listener_of(&self, cluster: &str) -> Option<watch::Receiver<bool>> {
        self.listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(cluster)
            .cloned()
    }

    /// Waits until `cluster` is started and its change listener is in place (at start, and in
    /// tests, after registering a cluster).
    pub async fn wait_until_listening(&self, cluster: &str) {
        let mut listening = loop {
            let started = self.started.notified();
            if let Some(listening) = self.listener_of(cluster) {
                break listening;
            }
            self.wake();
            started.await;
        };
        let _ = listening.wait_for(|ready| *ready).await;
    }
}

/// Starts the watcher: serves every registered cluster from now on.
pub fn spawn(state: &DataPlane, caches: Caches) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut started = HashSet::new();
        loop {
            let woken = state.clusters.wake.notified();
            if let Err(error) = look(&state, &caches, &mut started).await {
                tracing::warn!(%error, "cannot read the cluster registry; will look again");
            }
            // A period, not synchronisation: an announcement ends it early.
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(LOOK_AGAIN) => {}
            }
        }
    });
}

/// Reads the registry and starts serving each cluster not started yet.
async fn look(
    state: &DataPlane,
    caches: &Caches,
    started: &mut HashSet<String>,
) -> Result<(), String> {
    let registered = {
        let client = state
            .tenant_db
            .shared_pool()
            .get()
            .await
            .map_err(|error| error.to_string())?;
        shared::cluster::store::registered(&client)
            .await
            .map_err(|error| error.to_string())?
    };
    for cluster in registered {
        let Some(url) = cluster.url else {
            continue; // the catalog's: served since start
        };
        if started.contains(&cluster.name) {
            continue;
        }
        match start(state, caches, &cluster.name, &url) {
            Ok(()) => {
                started.insert(cluster.name);
            }
            Err(error) => {
                tracing::warn!(cluster = cluster.name, %error, "cannot serve a cluster yet");
            }
        }
    }
    state.clusters.started.notify_waiters();
    Ok(())
}

/// Starts what the node runs for cluster `name` besides requests.
fn start(state: &DataPlane, caches: &Caches, name: &str, url: &UrlRef) -> anyhow::Result<()> {
    let Some(fleet) = state.tenant_db.fleet() else {
        anyhow::bail!("this node has no pools to other clusters");
    };
    let pools = fleet.open(name, url)?;
    let config = fleet.connection_config(name, url)?;
    let listening = listener::spawn(config.clone(), caches.clone());
    state
        .clusters
        .listening
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name.to_owned(), listening);
    if state.config.audit_enabled {
        crate::audit::recovery::spawn(state, Some(name.into()), pools.shared().clone());
    }
    crate::mail::worker::spawn(
        &state.config,
        &config,
        &config,
        fleet.catalog().clone(),
        state.metrics.clone(),
    )?;
    tracing::info!(cluster = name, "serving the tenants of another cluster");
    Ok(())
}
