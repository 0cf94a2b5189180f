-- Version 2 of the default tenant template: identity. Users, their roles, passwords and their
-- history, one-time tokens (activation, invitation, email verification, password reset),
-- sign-in throttling and attempts, sessions and refresh tokens, MFA, and the tenant's JWT
-- signing keys. Additive only, like every version.

CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    -- Normalised (trimmed, lower-cased) by the application; unique within the tenant only.
    email               text NOT NULL UNIQUE,
    display_name        text NOT NULL DEFAULT '',
    status              text NOT NULL CHECK (status IN ('invited', 'pending', 'active', 'disabled')),
    email_verified_at   timestamptz,
    password_hash       text,
    password_changed_at timestamptz,
    -- TOTP secret sealed with the tenant's data key (version alongside), set at enrolment.
    totp_secret         bytea,
    totp_key_version    integer,
    totp_enabled_at     timestamptz,
    -- The last TOTP time step accepted: a code is good once.
    totp_last_step      bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_roles (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_name  text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_name)
);

CREATE TABLE password_history (
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (user_id, created_at)
);

-- Single-use tokens mailed to users; only their SHA-256 digests are stored.
CREATE TABLE user_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN
                   ('activation', 'invitation', 'email_verification', 'password_reset')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);

-- Failed sign-ins per email address, whether or not a user has it, so a lockout says
-- nothing about which addresses exist.
CREATE TABLE login_throttle (
    email            text PRIMARY KEY,
    failures         integer NOT NULL,
    first_failure_at timestamptz NOT NULL,
    locked_until     timestamptz
);

-- Every sign-in attempt and its outcome, for the audit log.
CREATE TABLE login_attempts (
    id         uuid PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    email      text NOT NULL,
    user_id    uuid,
    method     text NOT NULL,
    outcome    text NOT NULL,
    ip         inet,
    user_agent text
);
CREATE INDEX login_attempts_at ON login_attempts (at);

CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    -- The absolute end of the session, whatever its activity.
    expires_at     timestamptz NOT NULL,
    amr            text[] NOT NULL,
    ip             inet,
    user_agent     text,
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_live_by_user ON sessions (user_id, created_at) WHERE revoked_at IS NULL;

-- Opaque refresh tokens, stored as digests, one chain per session: each use marks the token
-- used and issues its successor.
CREATE TABLE refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- The second step of a sign-in with MFA: short-lived, single-use.
CREATE TABLE mfa_challenges (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    failures   integer NOT NULL DEFAULT 0,
    ip         inet,
    user_agent text
);

CREATE TABLE backup_codes (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- The tenant's JWT signing keys. The private key is sealed with the tenant's data key. One key
-- signs at a time; retired keys stay published until tokens they signed have expired.
CREATE TABLE signing_keys (
    kid              text PRIMARY KEY,
    algorithm        text NOT NULL,
    public_key       bytea NOT NULL,
    private_key      bytea NOT NULL,
    data_key_version integer NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    retired_at       timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;
