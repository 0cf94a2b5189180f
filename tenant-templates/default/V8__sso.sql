-- Version 8 of the default tenant template: single sign-on (issue #6). Additive only.
--
-- A tenant's identity providers, the email domains bound to them, the short-lived login
-- transactions of sign-ins under way, the SAML assertion ids already used (replay guard) and
-- the link between an IdP's subject and a Tenantry user.

CREATE TABLE sso_providers (
    id            uuid PRIMARY KEY,
    -- The URL name: /v1/auth/sso/{name}/start.
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9-]{1,39}$'),
    kind          text NOT NULL CHECK (kind IN ('oidc', 'oauth2', 'saml')),
    display_name  text NOT NULL DEFAULT '',
    -- Everything but the client secret (validated by the application, see shared::sso).
    settings      jsonb NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
    -- The OIDC/OAuth2 client secret sealed with the tenant's data key of version
    -- `secret_key_version`, bound to tenant and provider id.
    client_secret      bytea,
    secret_key_version integer,
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Email domains whose users sign in through a provider; with `require_sso` their password
-- sign-in is refused.
CREATE TABLE sso_domains (
    domain      text PRIMARY KEY CHECK (domain = lower(domain)),
    provider_id uuid NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    require_sso boolean NOT NULL DEFAULT false
);
CREATE INDEX sso_domains_provider ON sso_domains (provider_id);

-- One sign-in under way: found by the SHA-256 of its `state` (OIDC/OAuth2) or of its
-- AuthnRequest id (SAML), single use, minutes long.
CREATE TABLE sso_login_transactions (
    state_digest  bytea PRIMARY KEY,
    provider_id   uuid NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    nonce         text,
    pkce_verifier text,
    -- Where the client asked to land after the sign-in (validated: a path on the tenant).
    return_to     text,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    consumed_at   timestamptz
);
CREATE INDEX sso_login_transactions_expiry ON sso_login_transactions (expires_at);

-- SAML assertion ids accepted once, kept until the assertion could no longer be valid.
CREATE TABLE sso_consumed_assertions (
    provider_id  uuid NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    assertion_id text NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (provider_id, assertion_id)
);

-- Which user an IdP's subject is.
CREATE TABLE sso_identities (
    provider_id uuid NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    subject     text NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    groups      text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider_id, subject)
);
CREATE INDEX sso_identities_user ON sso_identities (user_id);

-- The provider a session was opened through (its name), for the `idp` claim.
ALTER TABLE sessions ADD COLUMN idp text;
