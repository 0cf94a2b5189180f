-- Version 6 of the default tenant template: API keys (issue #4). Additive only.
--
-- A key is `tnt_<prefix>_<secret>`. The prefix is public and unique within the tenant; it is
-- how a presented key is found. The secret is never stored: only its HMAC-SHA256 under a key
-- derived from the server's pepper (bound to the tenant and the prefix), so a dump of this
-- table cannot be used to authenticate nor to test guesses without the pepper.
--
-- Rotation keeps the key (id, prefix, scopes) and replaces the secret; the previous secret's
-- digest stays valid until `previous_valid_until`. Revocation sets `revoked_at`; rows are
-- kept for the audit trail. `last_used_at` and `use_count` are written by a background
-- flush, not per request.

CREATE TABLE api_keys (
    id                   uuid PRIMARY KEY,
    name                 text NOT NULL,
    prefix               text NOT NULL UNIQUE,
    secret_hash          bytea NOT NULL,
    previous_secret_hash bytea,
    previous_valid_until timestamptz,
    -- Permission patterns (`resource:action`), validated by the application.
    scopes               text[] NOT NULL,
    -- Normalised CIDR ranges; NULL: any source address.
    allowed_ips          text[],
    expires_at           timestamptz,
    -- The user whose permissions bound the key's; NULL once that user is deleted (and then
    -- the key can do nothing).
    created_by           uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL,
    rotated_at           timestamptz,
    revoked_at           timestamptz,
    last_used_at         timestamptz,
    use_count            bigint NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_created ON api_keys (created_at, id);
