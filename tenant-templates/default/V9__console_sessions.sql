-- Version 9 of the default tenant template: the tenant console's browser sessions (issue #19).
-- Additive only.
--
-- A browser signed in to the console holds an opaque cookie; its digest names one of the
-- tenant's sessions (the same rows the API's tokens name), so ending the session — sign-out,
-- revocation from another device, an admin disabling the user — ends the cookie too.

CREATE TABLE console_cookies (
    digest      bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_cookies_by_session ON console_cookies (session_id);

-- An SSO sign-in started from the console lands signed in to it (`return_to`, a console path)
-- and must finish in the browser that started it: the digest of the secret that browser was
-- given in a cookie at the start (no login CSRF: nobody can finish their sign-in in another's
-- browser).
ALTER TABLE sso_login_transactions ADD COLUMN browser_digest bytea;

-- A sign-in an admin starts from the SSO set-up to test a provider (it may be disabled yet):
-- it signs nobody in; what the provider sent and what the mapping made of it wait here,
-- for an hour at most, for the admin's result page.
ALTER TABLE sso_login_transactions ADD COLUMN is_test boolean NOT NULL DEFAULT false;

CREATE TABLE sso_test_results (
    id          uuid PRIMARY KEY,
    provider_id uuid NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    result      jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);
