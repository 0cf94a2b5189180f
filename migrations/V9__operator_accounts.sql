-- Operator accounts (issue #19): people who sign in to the operator console with an email
-- address and a password. The bearer tokens (`operator_tokens`) stay for automation.
CREATE TABLE control.operator_accounts (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (email = lower(email)),
    -- argon2id, PHC string.
    password_hash text NOT NULL,
    -- The TOTP secret sealed with the KEK (`Kek::seal`, context `operator-totp:<id>`), pending
    -- until a code confirms it (`totp_enabled`); the last step accepted (no code twice).
    totp_secret   bytea,
    totp_enabled  boolean NOT NULL DEFAULT false,
    totp_last_step bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

-- A browser signed in to the operator console: the digest of its cookie's secret.
CREATE TABLE control.operator_console_sessions (
    digest       bytea PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES control.operator_accounts (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX operator_console_sessions_by_account ON control.operator_console_sessions (account_id);
