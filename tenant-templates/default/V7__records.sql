-- Version 7 of the default tenant template: the records API (issue #4). Additive only.
--
-- Collections appear on a record's first write; their settings say which top-level fields are
-- sensitive (sealed with the tenant's data key, never stored in `data`) and whether callers
-- see every record (`shared`) or only their own (`owner`). Every record's size counts against
-- the tenant's storage quota through `storage_usage`, updated in the transaction of the write.

CREATE TABLE record_collections (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    sensitive_fields text[] NOT NULL DEFAULT '{}',
    access           text NOT NULL DEFAULT 'shared' CHECK (access IN ('shared', 'owner')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE records (
    id          uuid PRIMARY KEY,
    collection  text NOT NULL REFERENCES record_collections (name),
    -- The user who created it; NULL when an API key did. Not a foreign key: what happens to a
    -- deleted user's records is the tenant's erasure policy, not a cascade.
    owner_id    uuid,
    -- The record without its sensitive fields.
    data        jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    -- The sensitive fields as one JSON object sealed with AES-256-GCM under the tenant's data
    -- key of version `key_version`, bound to tenant, collection and record id.
    sealed      bytea,
    key_version integer,
    version     bigint NOT NULL CHECK (version > 0),
    -- Bytes of the whole record's JSON (sensitive fields included, in clear): what the storage
    -- quota counts.
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CHECK ((sealed IS NULL) = (key_version IS NULL))
);
-- Keyset pagination in each sort order (descending orders scan these backwards).
CREATE INDEX records_by_created ON records (collection, created_at, id);
CREATE INDEX records_by_updated ON records (collection, updated_at, id);
-- Equality filters on top-level fields (`data @> '{"status": "open"}'`).
CREATE INDEX records_data ON records USING gin (data jsonb_path_ops);

-- The tenant's stored record bytes: one row, updated with every write. The row lock makes
-- concurrent writes add up exactly and lets the quota check see the true total.
CREATE TABLE storage_usage (
    id           integer PRIMARY KEY CHECK (id = 1),
    record_bytes bigint NOT NULL CHECK (record_bytes >= 0)
);
INSERT INTO storage_usage (id, record_bytes) VALUES (1, 0);

-- Reading sensitive fields is its own permission family (`sensitive.<collection>:read`), so
-- `records:*` does not include it. The built-in admin gets it; the owner has `*:*` already.
-- (Cached permissions pick this up within the permission cache's TTL: a template roll-out
-- sends no NOTIFY.)
UPDATE roles SET permissions = array_append(permissions, 'sensitive:read'), updated_at = now()
WHERE name = 'admin' AND built_in AND NOT ('sensitive:read' = ANY (permissions));
