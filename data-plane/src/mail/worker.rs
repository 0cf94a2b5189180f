//! The mail worker of a data-plane node: two background tasks, started only when SMTP is
//! configured.
//!
//! - A listener `LISTEN`s on `tenantry_mail` on its own connection and wakes the sender; on a
//!   lost connection it reconnects with capped backoff and wakes the sender once connected,
//!   since notifications may have been missed meanwhile.
//! - The sender runs delivery rounds (see [`Delivery`]) when woken, and otherwise when the
//!   next pending mark falls due, at the latest every `poll_interval`.
//!
//! The sender has a pool of its own with one connection, so a slow SMTP server never holds a
//! connection that requests need; several nodes share the work safely (`SKIP LOCKED` claims).

use std::sync::Arc;
use std::time::Duration;

use shared::notify::{Change, Listener, MAIL_PENDING};
use shared::tenant_context::TenantDb;
use tokio::sync::Notify;

use super::service::{Delivery, Round};
use super::transport::{SmtpSender, TransportError};
use crate::config::Config;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Database(#[from] shared::db::DbSetupError),
}

/// Starts the mail worker of one cluster's tenants if the node's mail settings name an SMTP
/// server; returns whether it did. `database` is how the worker reaches that cluster (the data
/// plane's login role), `listen_database` where its `LISTEN` goes (the same, or Postgres
/// directly past a pooler); `catalog` says who the marked tenants are. Must run inside a
/// Tokio runtime.
pub(crate) fn spawn(
    config: &Config,
    database: &tokio_postgres::Config,
    listen_database: &tokio_postgres::Config,
    catalog: deadpool_postgres::Pool,
    metrics: Metrics,
) -> Result<bool, WorkerError> {
    let settings = &config.mail;
    let Some(smtp) = &settings.smtp else {
        tracing::info!("mail delivery off on this node: smtp_url is not set");
        return Ok(false);
    };
    let pool = shared::db::pool(database.clone(), 1)?;
    let delivery = Delivery {
        db: TenantDb::new(pool).with_statement_timeout(config.statement_timeout()),
        catalog,
        sender: SmtpSender::new(smtp, settings)?,
        settings: Arc::new(settings.clone()),
        metrics,
    };
    tracing::info!(smtp = %smtp, from = %settings.from, "mail delivery on");
    let wake = Arc::new(Notify::new());
    tokio::spawn(listen_forever(listen_database.clone(), wake.clone()));
    tokio::spawn(deliver_forever(delivery, wake));
    Ok(true)
}

async fn deliver_forever(delivery: Delivery, wake: Arc<Notify>) {
    loop {
        let wait = match delivery.run_round().await {
            Ok(Round::MoreDue) => Duration::ZERO,
            Ok(Round::Done) => match delivery.next_wait().await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::warn!(%error, "cannot tell when mail is next due");
                    delivery.settings.poll_interval
                }
            },
            Err(error) => {
                tracing::warn!(%error, "mail delivery round failed");
                delivery.settings.poll_interval
            }
        };
        if wait.is_zero() {
            tokio::task::yield_now().await;
            continue;
        }
        // A timer for the next due mail, not synchronisation: a notification ends it early.
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn listen_forever(config: tokio_postgres::Config, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen(&config, &wake).await {
            Ok(()) => tracing::warn!("mail notification connection closed; reconnecting"),
            Err(error) => tracing::warn!(%error, "mail notification listener failed; reconnecting"),
        }
        tokio::time::sleep(backoff).await; // reconnect backoff, not synchronisation
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen(
    config: &tokio_postgres::Config,
    wake: &Notify,
) -> Result<(), tokio_postgres::Error> {
    let mut listener = Listener::connect(config, &[MAIL_PENDING]).await?;
    // Mail enqueued while nobody listened is found by the round this starts.
    wake.notify_one();
    tracing::debug!("listening for mail notifications");
    while let Some(notification) = listener.next().await {
        let notification = notification?;
        match Change::parse(notification.channel(), notification.payload()) {
            Ok(Change::MailPending { tenant }) => tracing::debug!(%tenant, "mail enqueued"),
            // Woken anyway: a round costs little, and a mark is what decides.
            Ok(other) => tracing::warn!(?other, "unexpected notification on the mail channel"),
            Err(unknown) => tracing::warn!(%unknown, "ignored a notification"),
        }
        wake.notify_one();
    }
    Ok(())
}
