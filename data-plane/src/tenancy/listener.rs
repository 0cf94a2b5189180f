//! Listens for the control plane's tenant-change notifications and evicts the affected
//! registry entries. On a lost connection it evicts everything (news may have been missed)
//! and reconnects with capped exponential backoff.

use std::time::Duration;

use futures_util::StreamExt;
use shared::notify::TENANT_CHANGED;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;

use super::registry::TenantRegistry;

/// Spawns the listener. `ready` turns true each time a LISTEN is in place, so a caller (the
/// server at start, a test) can wait until changes will be heard.
pub fn spawn(config: tokio_postgres::Config, registry: TenantRegistry) -> watch::Receiver<bool> {
    let (ready_tx, ready_rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match listen(&config, &registry, &ready_tx).await {
                Ok(()) => tracing::warn!("notification connection closed; reconnecting"),
                Err(error) => tracing::warn!(%error, "notification listener failed; reconnecting"),
            }
            let _ = ready_tx.send(false);
            registry.invalidate_all();
            tokio::time::sleep(backoff).await; // reconnect backoff, not synchronisation
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    ready_rx
}

async fn listen(
    config: &tokio_postgres::Config,
    registry: &TenantRegistry,
    ready: &watch::Sender<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (message_tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            if message_tx.send(message).is_err() {
                break;
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {TENANT_CHANGED}"))
        .await?;
    // Anything cached before LISTEN took effect may be stale.
    registry.invalidate_all();
    let _ = ready.send(true);
    tracing::info!("listening for tenant changes");
    while let Some(message) = messages.recv().await {
        match message? {
            AsyncMessage::Notification(notification) => {
                tracing::debug!(tenant = notification.payload(), "tenant changed");
                registry.invalidate(notification.payload()).await;
            }
            AsyncMessage::Notice(notice) => tracing::debug!(%notice, "postgres notice"),
            _ => {}
        }
    }
    driver.abort();
    drop(client);
    Ok(())
}
