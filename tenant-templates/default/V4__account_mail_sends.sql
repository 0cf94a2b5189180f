-- Version 4 of the default tenant template: account mails sent, per address and purpose
-- (issue #3, email flows). Additive only.
--
-- Registration, verification resends and password resets answer the same whether or not an
-- address has an account, so anyone can make them mail any address. Each account mail is
-- recorded here and a few per address, purpose and hour are sent; the rest are dropped
-- silently. A table of its own rather than a count of user_tokens: the "you already have an
-- account" notice creates no token, and it must be throttled too. Rows older than the window
-- are pruned when their address is mailed again.

CREATE TABLE account_mail_sends (
    email   text NOT NULL,
    purpose text NOT NULL,
    sent_at timestamptz NOT NULL
);
CREATE INDEX account_mail_sends_recent ON account_mail_sends (email, purpose, sent_at);
