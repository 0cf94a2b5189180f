//! Change notifications from the control plane to data-plane nodes, over Postgres
//! `NOTIFY`/`LISTEN`.
//!
//! Notifications are sent inside the transaction that makes the change, so a node never hears
//! of a change that was rolled back, and hears of a committed one within milliseconds. A node
//! that loses its listening connection must drop everything it cached, because it may have
//! missed notifications meanwhile.

use deadpool_postgres::GenericClient;

/// Tenant status, name, plan, domains or quotas changed. Payload: the tenant's slug.
pub const TENANT_CHANGED: &str = "tenantry_tenant_changed";

/// A tenant's mail outbox has new mail; data-plane mail workers wake up. Payload: the
/// tenant's id. Sent by whoever enqueues mail, inside the enqueuing transaction.
pub const MAIL_PENDING: &str = "tenantry_mail";

/// Publishes that the tenant `slug` changed, when the surrounding transaction commits.
pub async fn tenant_changed(
    client: &impl GenericClient,
    slug: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&TENANT_CHANGED, &slug])
        .await?;
    Ok(())
}

/// Identity state that nodes cache changed. Payloads: `session:<tenant id>:<session id>` (a
/// session ended), `keys:<tenant id>` (signing keys rotated), `authz:<tenant id>:<user id>`
/// (a user's roles or status changed), `authz:<tenant id>` (a role changed),
/// `api_key:<tenant id>:<key prefix>` (an API key revoked or rotated).
pub const IDENTITY_CHANGED: &str = "tenantry_identity_changed";

/// Tenant settings that nodes cache changed. Payload: `cors:<tenant id>` (the tenant's CORS
/// allowed origins).
pub const SETTINGS_CHANGED: &str = "tenantry_settings_changed";

/// A dedicated connection `LISTEN`ing on some channels. Both the data plane's cache listener and
/// its mail worker use one; each decides itself what a lost connection means.
pub struct Listener {
    _client: tokio_postgres::Client,
    messages: tokio::sync::mpsc::UnboundedReceiver<
        Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>,
    >,
    driver: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Connects and listens on `channels` (our own constant names, never client input).
    pub async fn connect(
        config: &tokio_postgres::Config,
        channels: &[&str],
    ) -> Result<Self, tokio_postgres::Error> {
        use futures_util::StreamExt as _;
        let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
        let (message_tx, messages) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = stream.next().await {
                if message_tx.send(message).is_err() {
                    break;
                }
            }
        });
        let listen: String = channels
            .iter()
            .map(|channel| format!("LISTEN {channel};"))
            .collect();
        client.batch_execute(&listen).await?;
        Ok(Self {
            _client: client,
            messages,
            driver,
        })
    }

    /// The next notification; `None` once the connection has closed. Notices are logged.
    pub async fn next(
        &mut self,
    ) -> Option<Result<tokio_postgres::Notification, tokio_postgres::Error>> {
        loop {
            match self.messages.recv().await? {
                Ok(tokio_postgres::AsyncMessage::Notification(notification)) => {
                    return Some(Ok(notification))
                }
                Ok(tokio_postgres::AsyncMessage::Notice(notice)) => {
                    tracing::debug!(%notice, "postgres notice");
                }
                Ok(_) => {}
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
