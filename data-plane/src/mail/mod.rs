//! Mail delivery through a transactional outbox: nothing a mail server outage can lose.
//!
//! Code that causes a mail (registration, password reset, an invitation) calls [`enqueue`]
//! inside its own tenant transaction. The mail lands in that tenant's `mail_outbox` table and
//! the tenant is marked in `control.mail_pending`, both in the caller's transaction, so the
//! mail exists exactly when the change that caused it committed. A background
//! worker (`worker::spawn`) on every data-plane node with SMTP configured wakes on the
//! `tenantry_mail` notification (and polls, for retries), claims due mails with
//! `FOR UPDATE SKIP LOCKED` and sends them with lettre.
//!
//! Invariants:
//! - A mail is in an outbox only if the transaction that caused it committed.
//! - A tenant with unsent mail stays marked in `control.mail_pending`: enqueue bumps the mark's
//!   generation, and a worker removes a mark only when the outbox has nothing unsent and the
//!   generation is the one it read before draining.
//! - One mail is sent by one worker at a time (the row lock of its claim), and is marked sent
//!   in the transaction that holds that lock. Delivery is at-least-once: a crash between the
//!   SMTP server's acceptance and that commit sends the mail again later, with the same
//!   `Message-ID` (see docs/mail.md).
//! - SMTP credentials never reach a log line or an error stored in the database.

mod message;
mod service;
mod settings;
mod store;
mod transport;
pub(crate) mod worker;

pub use message::{InvalidMail, OutgoingMail};
pub use service::{enqueue, EnqueueError};
pub use settings::{MailSettings, SmtpSecurity, SmtpUrl, SmtpUrlError, DEFAULT_FROM};
