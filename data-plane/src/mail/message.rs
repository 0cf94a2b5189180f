//! A mail as callers hand it over: one recipient, a one-line subject, a plain-text body.
//! Checked when built, so whatever reaches an outbox can be turned into a valid message.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Address, Message};
use std::time::SystemTime;
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest subject accepted, in bytes (RFC 5322's line limit, before encoding).
const MAX_SUBJECT_BYTES: usize = 998;
/// Largest body accepted. Tenantry's mails are short notices; anything near this is a bug.
const MAX_BODY_BYTES: usize = 512 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMail {
    #[error("invalid recipient address: {0}")]
    Recipient(String),
    #[error("the subject must be one non-empty line of at most {MAX_SUBJECT_BYTES} bytes")]
    Subject,
    #[error("the body must be at most {MAX_BODY_BYTES} bytes")]
    Body,
}

/// A mail to one recipient, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    to: Address,
    subject: String,
    body_text: String,
}

impl OutgoingMail {
    /// `to` is a bare address (`user@example.com`); the subject one line without control
    /// characters; the body plain text (any Unicode; line breaks as `\n`).
    pub fn new(
        to: &str,
        subject: impl Into<String>,
        body_text: impl Into<String>,
    ) -> Result<Self, InvalidMail> {
        let to: Address = to.parse().map_err(|error: lettre::address::AddressError| {
            InvalidMail::Recipient(error.to_string())
        })?;
        let subject = subject.into();
        if subject.trim().is_empty()
            || subject.len() > MAX_SUBJECT_BYTES
            || subject.chars().any(char::is_control)
        {
            return Err(InvalidMail::Subject);
        }
        let body_text = body_text.into();
        if body_text.len() > MAX_BODY_BYTES {
            return Err(InvalidMail::Body);
        }
        Ok(Self {
            to,
            subject,
            body_text,
        })
    }

    pub fn to(&self) -> &Address {
        &self.to
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn body_text(&self) -> &str {
        &self.body_text
    }
}

/// A mail as stored in an outbox, turned into the message sent over SMTP. The `Message-ID`
/// derives from the outbox row's id and the `Date` is when the mail was enqueued, so a mail
/// sent twice (at-least-once delivery) carries the same id and date both times and receivers
/// can tell the copies from new mail.
pub(super) fn build_message(
    id: Uuid,
    created_at: OffsetDateTime,
    from: &Mailbox,
    to: &str,
    subject: &str,
    body_text: &str,
) -> Result<Message, String> {
    let to: Address = to
        .parse()
        .map_err(|error: lettre::address::AddressError| format!("invalid recipient: {error}"))?;
    Message::builder()
        .message_id(Some(format!("<{id}@{}>", from.email.domain())))
        .date(SystemTime::from(created_at))
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body_text.to_owned())
        .map_err(|error| format!("cannot build the message: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_mail_is_accepted() {
        let mail = OutgoingMail::new("ada@example.com", "Welcome, Zoë", "Hello\nthere").unwrap();
        assert_eq!(mail.to().to_string(), "ada@example.com");
        assert_eq!(mail.subject(), "Welcome, Zoë");
    }

    #[test]
    fn a_recipient_with_a_display_name_or_no_domain_is_refused() {
        for to in [
            "Ada <ada@example.com>",
            "ada",
            "ada@",
            "",
            "a b@example.com",
        ] {
            assert!(
                matches!(
                    OutgoingMail::new(to, "s", "b"),
                    Err(InvalidMail::Recipient(_))
                ),
                "{to:?}"
            );
        }
    }

    #[test]
    fn a_subject_that_could_inject_headers_is_refused() {
        for subject in [
            "",
            "  ",
            "Hi\r\nBcc: eve@example.com",
            "Hi\nthere",
            "tab\there",
        ] {
            assert_eq!(
                OutgoingMail::new("ada@example.com", subject, "b"),
                Err(InvalidMail::Subject),
                "{subject:?}"
            );
        }
        let long = "x".repeat(MAX_SUBJECT_BYTES + 1);
        assert_eq!(
            OutgoingMail::new("ada@example.com", long, "b"),
            Err(InvalidMail::Subject)
        );
    }

    #[test]
    fn an_oversized_body_is_refused() {
        let body = "x".repeat(MAX_BODY_BYTES + 1);
        assert_eq!(
            OutgoingMail::new("ada@example.com", "s", body),
            Err(InvalidMail::Body)
        );
    }

    #[test]
    fn the_message_id_derives_from_the_outbox_id() {
        let from: Mailbox = "Tenantry <no-reply@example.org>".parse().unwrap();
        let id = Uuid::now_v7();
        let created_at = time::macros::datetime!(2026-11-22 10:00 UTC);
        let message =
            build_message(id, created_at, &from, "ada@example.com", "Hi", "Body").unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains(&format!("Message-ID: <{id}@example.org>")),
            "{text}"
        );
        assert!(text.contains("To: ada@example.com"), "{text}");
        assert!(text.contains("Date: Sun, 22 Nov 2026 10:00:00"), "{text}");
    }
}
