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
/// session ended), `keys:<tenant id>` (signing keys rotated).
pub const IDENTITY_CHANGED: &str = "tenantry_identity_changed";
