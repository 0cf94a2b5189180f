//! Listens for change notifications (tenants changed by the control plane; sessions ended,
//! signing keys rotated, roles and assignments changed, API keys revoked or rotated by any
//! node) and evicts the affected cache entries. On a lost
//! connection it evicts everything (news may have been missed) and reconnects with capped
//! exponential backoff.

use std::time::Duration;

use shared::notify::{Change, Listener, IDENTITY_CHANGED, SETTINGS_CHANGED, TENANT_CHANGED};
use tokio::sync::watch;

use super::data_keys::DataKeys;
use super::registry::TenantRegistry;
use crate::api_keys::cache::ApiKeyCache;
use crate::authz::cache::PermissionCache;
use crate::cors::CorsCache;
use crate::records::collections::CollectionCache;
use crate::sessions::SessionCache;
use crate::tokens::signing_keys::SigningKeys;

/// Every cache a notification can make stale.
#[derive(Clone)]
pub struct Caches {
    pub registry: TenantRegistry,
    pub data_keys: DataKeys,
    pub signing_keys: SigningKeys,
    pub sessions: SessionCache,
    pub cors: CorsCache,
    pub api_keys: ApiKeyCache,
    pub collections: CollectionCache,
    pub permissions: PermissionCache,
    /// Woken when a cluster is registered.
    pub clusters: super::clusters::ClusterWatch,
}

impl Caches {
    fn invalidate_all(&self) {
        self.registry.invalidate_all();
        self.data_keys.invalidate_all();
        self.signing_keys.invalidate_all();
        self.sessions.forget_all();
        self.cors.invalidate_all();
        self.api_keys.invalidate_all();
        self.collections.invalidate_all();
        self.permissions.invalidate_all();
    }

    /// Evicts what `change` made stale. Mail changes are the mail worker's, not ours.
    async fn apply(&self, change: Change) {
        match change {
            Change::Tenant { slug } => {
                tracing::debug!(tenant = slug, "tenant changed");
                if let Some(tenant_id) = self.registry.cached_id(&slug).await {
                    self.data_keys.invalidate(tenant_id).await;
                    self.signing_keys.invalidate(tenant_id).await;
                    self.cors.invalidate(tenant_id).await;
                }
                self.registry.invalidate(&slug).await;
            }
            Change::SessionEnded { tenant, session } => self.sessions.forget(tenant, session).await,
            Change::SigningKeys { tenant } => self.signing_keys.invalidate(tenant).await,
            Change::Permissions { tenant, user } => {
                self.permissions.invalidate_user(tenant, user).await;
            }
            Change::TenantPermissions { tenant } => self.permissions.invalidate_tenant(tenant),
            Change::ApiKey { tenant, prefix } => self.api_keys.invalidate(tenant, &prefix).await,
            Change::Collection { tenant, name } => self.collections.invalidate(&(tenant, name)),
            Change::Cors { tenant } => self.cors.invalidate(tenant).await,
            Change::Clusters => self.clusters.wake(),
            Change::MailPending { .. } => {}
        }
    }
}

/// Spawns the listener on the database `config` reaches (the catalog's, or another cluster
/// holding tenants: `super::clusters`). `ready` turns true each time a LISTEN is in place, so
/// a caller (the server at start, a test) can wait until changes will be heard.
pub fn spawn(config: tokio_postgres::Config, caches: Caches) -> watch::Receiver<bool> {
    let (ready_tx, ready_rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match listen(&config, &caches, &ready_tx).await {
                Ok(()) => tracing::warn!("notification connection closed; reconnecting"),
                Err(error) => tracing::warn!(%error, "notification listener failed; reconnecting"),
            }
            // News may have been missed since the connection was lost; while it stays lost
            // (its cluster is down) there is nothing more to forget.
            if ready_tx.send_replace(false) {
                caches.invalidate_all();
            }
            tokio::time::sleep(backoff).await; // reconnect backoff, not synchronisation
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    ready_rx
}

async fn listen(
    config: &tokio_postgres::Config,
    caches: &Caches,
    ready: &watch::Sender<bool>,
) -> Result<(), tokio_postgres::Error> {
    let mut listener = Listener::connect(
        config,
        &[TENANT_CHANGED, IDENTITY_CHANGED, SETTINGS_CHANGED],
    )
    .await?;
    // Anything cached before LISTEN took effect may be stale.
    caches.invalidate_all();
    let _ = ready.send(true);
    tracing::info!("listening for tenant changes");
    while let Some(notification) = listener.next().await {
        let notification = notification?;
        match Change::parse(notification.channel(), notification.payload()) {
            Ok(change) => caches.apply(change).await,
            Err(unknown) => tracing::warn!(%unknown, "ignored a notification"),
        }
    }
    Ok(())
}
