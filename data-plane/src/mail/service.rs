//! The rules of mail delivery: how a mail enters a tenant's outbox, and how one tenant's due
//! mail is sent, retried, and its pending mark cleared.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::PoolError;
use shared::catalog::CatalogError;
use shared::tenant::TenantStatus;
use shared::tenant_context::{TenantDb, TenantDbError, TenantScope, TenantTransaction};
use uuid::Uuid;

use super::message::{build_message, OutgoingMail};
use super::settings::MailSettings;
use super::store::{self, PendingTenant};
use super::transport::SmtpSender;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("the transaction works for tenant {transaction}, not for tenant {requested}")]
    WrongTenant { requested: Uuid, transaction: Uuid },
    #[error(transparent)]
    Db(#[from] TenantDbError),
}

impl From<EnqueueError> for shared::error::ApiError {
    fn from(error: EnqueueError) -> Self {
        match error {
            EnqueueError::Db(error) => error.into(),
            EnqueueError::WrongTenant { .. } => Self::internal(&error),
        }
    }
}

/// Puts `message` into the outbox of `tenant_id` inside the caller's tenant transaction, and
/// marks the tenant as having mail to send, so the mail is sent if and only if the
/// transaction commits; workers are woken by a notification delivered on commit. Returns the
/// mail's id (its row in `mail_outbox`).
///
/// Costs two round trips (the first carries the tenant switch when it opens the
/// transaction). Call it late in the transaction: the tenant's pending mark stays
/// row-locked until commit, so concurrent enqueues for one tenant queue behind each other.
#[tracing::instrument(skip_all, fields(tenant = %tenant_id))]
pub async fn enqueue(
    transaction: &mut TenantTransaction,
    tenant_id: Uuid,
    message: &OutgoingMail,
) -> Result<Uuid, EnqueueError> {
    if transaction.tenant_id() != tenant_id {
        return Err(EnqueueError::WrongTenant {
            requested: tenant_id,
            transaction: transaction.tenant_id(),
        });
    }
    let id = Uuid::now_v7();
    store::insert_outbox(transaction, id, message).await?;
    store::mark_pending(transaction, tenant_id).await?;
    Ok(id)
}

#[derive(Debug, thiserror::Error)]
pub(super) enum DeliveryError {
    #[error("no database connection for mail delivery: {0}")]
    Pool(#[from] PoolError),
    #[error("database error in mail delivery: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("database error in mail delivery: {0}")]
    TenantDb(#[from] TenantDbError),
    #[error("cannot read the catalog: {0}")]
    Catalog(#[from] CatalogError),
}

/// Marks looked at per round; a full page means more may be due at once.
const DUE_TENANTS_PER_ROUND: i64 = 100;
/// Mails one tenant may send per round before the next tenant's turn.
const MAILS_PER_TENANT_ROUND: usize = 50;
/// Shortest wait before a mark is looked at again when its due mail is held by another
/// worker: that worker clears or reschedules the mark itself when done.
const RECHECK_HELD_MAIL: Duration = Duration::from_secs(1);

/// What one node needs to deliver the mail of one cluster's tenants.
#[derive(Clone)]
pub(super) struct Delivery {
    /// The worker's own pool to the cluster (its tenants' outboxes and the marks beside them),
    /// so sending never takes a connection from requests.
    pub db: TenantDb,
    /// The catalog, which says who the marked tenants are.
    pub catalog: deadpool_postgres::Pool,
    pub sender: SmtpSender,
    pub settings: Arc<MailSettings>,
    pub metrics: Metrics,
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Round {
    /// Every due mark was looked at.
    Done,
    /// More marks may be due: run another round at once.
    MoreDue,
}

impl Delivery {
    /// Looks at every due pending mark once: drains active tenants, drops the marks of
    /// deleted ones. Errors of one tenant are logged and do not stop the others.
    pub async fn run_round(&self) -> Result<Round, DeliveryError> {
        let marks = {
            let client = self.db.pool().get().await?;
            store::due_marks(&client, DUE_TENANTS_PER_ROUND).await?
        };
        let mut more_due = marks.len() as i64 >= DUE_TENANTS_PER_ROUND;
        let mut tenants = {
            let ids: Vec<Uuid> = marks.iter().map(|mark| mark.tenant_id).collect();
            let catalog = self.catalog.get().await?;
            store::tenants_by_id(&catalog, &ids).await?
        };
        for mark in marks {
            let Some(at) = tenants
                .iter()
                .position(|tenant| tenant.id == mark.tenant_id)
            else {
                // Not in this deployment's catalog: left as is, looked at again later.
                tracing::warn!(tenant = %mark.tenant_id, "a pending-mail mark names no tenant");
                self.postpone(mark.tenant_id, mark.generation).await?;
                continue;
            };
            let pending = PendingTenant {
                tenant: tenants.swap_remove(at),
                generation: mark.generation,
            };
            let tenant = &pending.tenant;
            match tenant.status {
                TenantStatus::Active => match self.drain(&pending).await {
                    Ok(Round::MoreDue) => more_due = true,
                    Ok(Round::Done) => {}
                    Err(error) => {
                        tracing::warn!(tenant = %tenant.slug, %error, "mail delivery failed");
                        // Look again after a pause rather than at once, in case it persists.
                        if let Err(error) = self.postpone(tenant.id, pending.generation).await {
                            tracing::warn!(tenant = %tenant.slug, %error,
                                "cannot postpone the tenant's pending-mail mark");
                        }
                    }
                },
                // The outbox goes with the schema; so does the mark.
                TenantStatus::Deleting | TenantStatus::Deleted => {
                    let client = self.db.pool().get().await?;
                    store::drop_mark(&client, tenant.id).await?;
                    tracing::info!(tenant = %tenant.slug, status = tenant.status.as_str(),
                        "dropped the pending-mail mark of a tenant that is gone");
                }
                // Their mail waits until they are active again; looked at after a pause.
                TenantStatus::Provisioning | TenantStatus::Failed | TenantStatus::Suspended => {
                    self.postpone(tenant.id, pending.generation).await?;
                }
            }
        }
        Ok(if more_due {
            Round::MoreDue
        } else {
            Round::Done
        })
    }

    async fn postpone(&self, tenant_id: Uuid, generation: i64) -> Result<(), DeliveryError> {
        let client = self.db.pool().get().await?;
        store::reschedule_mark(&client, tenant_id, generation, self.settings.poll_interval).await?;
        Ok(())
    }

    /// How long until a mark may next be due, at most the poll interval.
    pub async fn next_wait(&self) -> Result<Duration, DeliveryError> {
        let client = self.db.pool().get().await?;
        let seconds = store::seconds_until_next_due(&client).await?;
        Ok(seconds.map_or(self.settings.poll_interval, |seconds| {
            self.seconds_to_duration(seconds)
                .min(self.settings.poll_interval)
        }))
    }

    fn seconds_to_duration(&self, seconds: f64) -> Duration {
        // Negative (overdue) and NaN become zero; anything too large for a Duration, the cap.
        Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(self.settings.retry_cap)
    }

    /// Sends the tenant's due mail, one claimed row per transaction, then clears its mark if
    /// nothing is left unsent or schedules when to look again.
    #[tracing::instrument(skip_all, fields(tenant = %pending.tenant.slug))]
    async fn drain(&self, pending: &PendingTenant) -> Result<Round, DeliveryError> {
        let scope = TenantScope::for_tenant(&pending.tenant);
        let mut handled = 0;
        let mut failed = false;
        while handled < MAILS_PER_TENANT_ROUND {
            let mut transaction = self.db.begin(&scope).await?;
            let Some(mail) = store::claim_next(&mut transaction).await? else {
                transaction.commit().await?;
                break;
            };
            handled += 1;
            let sent = match build_message(
                mail.id,
                mail.created_at,
                &self.settings.from,
                &mail.to_address,
                &mail.subject,
                &mail.body_text,
            ) {
                Ok(message) => self.sender.send(message).await,
                Err(error) => Err(error),
            };
            match sent {
                Ok(()) => {
                    // A failure here (after the server accepted the mail) leaves the row
                    // unsent: it goes out again later, with the same Message-ID.
                    store::mark_sent_and_commit(transaction, mail.id).await?;
                    self.metrics.mail_sent.inc();
                    tracing::info!(mail = %mail.id, "mail sent");
                }
                Err(error) => {
                    let attempts = u32::try_from(mail.attempts).unwrap_or(0).saturating_add(1);
                    let retry_in = self.settings.retry_delay(attempts);
                    store::mark_failed_and_commit(transaction, mail.id, &error, retry_in).await?;
                    self.metrics.mail_send_failures.inc();
                    tracing::warn!(mail = %mail.id, attempts, retry_in_seconds = retry_in.as_secs_f64(),
                        %error, "mail not sent; will retry");
                    // Most failures are the server's (down, refusing): leave the rest of this
                    // tenant's mail for later instead of failing it all now.
                    failed = true;
                    break;
                }
            }
        }
        if handled >= MAILS_PER_TENANT_ROUND && !failed {
            return Ok(Round::MoreDue);
        }

        let (unsent, seconds_until_due) = store::unsent_summary(&self.db, &scope).await?;
        let client = self.db.pool().get().await?;
        if unsent == 0 {
            if store::clear_mark(&client, pending.tenant.id, pending.generation).await? {
                tracing::debug!("outbox empty; pending mark cleared");
            }
            return Ok(Round::Done);
        }
        let mut wait = seconds_until_due
            .map_or(self.settings.poll_interval, |seconds| {
                self.seconds_to_duration(seconds)
            })
            .max(RECHECK_HELD_MAIL);
        if failed {
            // After a failure, give the server at least the first retry delay.
            wait = wait.max(self.settings.retry_delay(1));
        }
        store::reschedule_mark(&client, pending.tenant.id, pending.generation, wait).await?;
        Ok(Round::Done)
    }
}
