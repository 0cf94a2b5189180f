-- Version 3 of the default tenant template: the tenant's mail outbox (issue #3).
-- Additive only. (Version 2, the identity tables, is developed in parallel; refinery accepts
-- the gap while no tenant has version 3 yet.)
--
-- Mail is written here inside the transaction of the change that causes it, so it commits or
-- rolls back with that change; data-plane workers send it over SMTP and record the outcome.
-- body_text is erased once a mail is sent: mails carry live links (password reset,
-- invitations) that must not outlive their delivery in the database or its backups.

CREATE TABLE mail_outbox (
    id              uuid PRIMARY KEY,
    to_address      text NOT NULL,
    subject         text NOT NULL,
    body_text       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text
);

-- Unsent mail in the order it falls due: what workers claim, and what they check is left.
CREATE INDEX mail_outbox_unsent ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;
