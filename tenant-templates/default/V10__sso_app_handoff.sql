-- Version 10 of the default tenant template: an SSO sign-in an application started (a web
-- app's back end, a single-page or native app) returns to it with a one-time code, not with
-- tokens in a page (issue #19). Additive only.
--
-- The start names where to return (one of the tenant's allow-listed redirect URIs, setting
-- `sso_redirects`), the app's PKCE challenge (S256) and its own `state`, which the login
-- transaction keeps until the callback.
ALTER TABLE sso_login_transactions
    ADD COLUMN app_redirect_uri   text,
    ADD COLUMN app_code_challenge text,
    ADD COLUMN app_state          text;

-- The callback admits the user (provisioning, role mapping, as for any SSO sign-in) and leaves
-- a code here, found by its SHA-256: single use (taken by DELETE … RETURNING), 60 seconds,
-- exchanged only with the verifier of the challenge and the same redirect URI. The session is
-- opened at the exchange, so a code never exchanged leaves no session behind.
CREATE TABLE sso_handoff_codes (
    code_digest    bytea PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_id    uuid NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    redirect_uri   text NOT NULL,
    code_challenge text NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);
CREATE INDEX sso_handoff_codes_by_expiry ON sso_handoff_codes (expires_at);
