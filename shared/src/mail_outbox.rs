//! The SQL contract of the mail outbox, for every writer of it: the data plane's
//! `mail::enqueue`, and the control plane when it queues a mail for a tenant (the first
//! admin's activation). Delivery itself lives in the data plane (`data-plane/src/mail/`).
//!
//! A mail is queued with both statements in one transaction: [`INSERT_OUTBOX`] in the tenant's
//! schema, as the tenant role; [`MARK_PENDING`] as a role with rights on
//! `control.mail_pending` (the data plane's login role, or the control plane's); then
//! [`crate::notify::Change::MailPending`] is published in the same transaction. Invariant:
//! the mark's new generation comes from the sequence `control.mail_pending_generation`, never
//! from the old value plus one, so a worker that read a generation before a mark was removed
//! and made again cannot remove the new mark (see docs/mail.md).

/// Parameters: `$1` id (uuid, e.g. v7), `$2` recipient, `$3` subject, `$4` plain-text body,
/// all text. Unqualified: runs with `search_path` set to the tenant's schema.
pub const INSERT_OUTBOX: &str =
    "INSERT INTO mail_outbox (id, to_address, subject, body_text) VALUES ($1, $2, $3, $4)";

/// Marks the tenant as having unsent mail. Parameter: `$1` tenant id (uuid). Holds the mark's
/// row lock until the transaction ends. The caller then wakes the mail workers with
/// [`crate::notify::Change::MailPending`].
pub const MARK_PENDING: &str = "INSERT INTO control.mail_pending (tenant_id) VALUES ($1)
     ON CONFLICT (tenant_id) DO UPDATE
         SET generation = nextval('control.mail_pending_generation'),
             marked_at = now(), due_at = now()";
