-- The control plane's catalog. Everything lives in schema `control`; tenant data never does.

CREATE TABLE control.plans (
    name                text PRIMARY KEY,
    max_users           bigint  NOT NULL CHECK (max_users >= 0),
    max_storage_bytes   bigint  NOT NULL CHECK (max_storage_bytes >= 0),
    max_api_keys        bigint  NOT NULL CHECK (max_api_keys >= 0),
    requests_per_second integer NOT NULL CHECK (requests_per_second >= 0),
    burst               integer NOT NULL CHECK (burst >= 0),
    events_per_day      bigint  NOT NULL CHECK (events_per_day >= 0)
);

INSERT INTO control.plans
    (name, max_users, max_storage_bytes, max_api_keys, requests_per_second, burst, events_per_day)
VALUES
    ('free',        5,       104857600,     2,   10,   20,      100000),
    ('standard',    100,     10737418240,   20,  100,  200,     10000000),
    ('enterprise',  10000,   1099511627776, 200, 1000, 2000,    1000000000);

-- Placement targets: the Postgres clusters tenants live on. One for now: the catalog's own.
CREATE TABLE control.postgres_clusters (
    id          text PRIMARY KEY,
    description text NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX postgres_clusters_one_default ON control.postgres_clusters (is_default)
    WHERE is_default;
INSERT INTO control.postgres_clusters (id, description, is_default)
VALUES ('primary', 'the cluster that holds the catalog', true);

CREATE TABLE control.tenants (
    id               uuid PRIMARY KEY,
    slug             text NOT NULL,
    name             text NOT NULL,
    status           text NOT NULL CHECK (status IN
                         ('provisioning', 'failed', 'active', 'suspended', 'deleting', 'deleted')),
    plan             text NOT NULL REFERENCES control.plans (name),
    schema_name      text NOT NULL,
    role_name        text NOT NULL,
    cluster_id       text NOT NULL REFERENCES control.postgres_clusters (id),
    template         text NOT NULL DEFAULT 'default',
    template_version integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);
-- A slug names one live tenant; deleted tenants keep their row as a tombstone.
CREATE UNIQUE INDEX tenants_live_slug ON control.tenants (slug) WHERE status <> 'deleted';

CREATE TABLE control.tenant_domains (
    domain     text PRIMARY KEY CHECK (domain = lower(domain)),
    tenant_id  uuid NOT NULL REFERENCES control.tenants (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_domains_tenant ON control.tenant_domains (tenant_id);

-- Per-tenant overrides of the plan's limits; NULL means "the plan's default".
CREATE TABLE control.tenant_quotas (
    tenant_id           uuid PRIMARY KEY REFERENCES control.tenants (id) ON DELETE CASCADE,
    max_users           bigint  CHECK (max_users >= 0),
    max_storage_bytes   bigint  CHECK (max_storage_bytes >= 0),
    max_api_keys        bigint  CHECK (max_api_keys >= 0),
    requests_per_second integer CHECK (requests_per_second >= 0),
    burst               integer CHECK (burst >= 0),
    events_per_day      bigint  CHECK (events_per_day >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Tenant data keys, wrapped by the key-encryption key named in kek_id. Versions let a
-- rotation add a key while older ones still decrypt.
CREATE TABLE control.tenant_data_keys (
    tenant_id   uuid NOT NULL REFERENCES control.tenants (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version > 0),
    kek_id      text NOT NULL,
    nonce       bytea NOT NULL,
    wrapped_key bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);

-- The versions of each tenant template this control plane knows.
CREATE TABLE control.template_versions (
    template      text NOT NULL,
    version       integer NOT NULL,
    name          text NOT NULL,
    checksum      text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template, version)
);

-- One provisioning job per tenant: the last step finished, so a re-run resumes after it.
CREATE TABLE control.provisioning_jobs (
    tenant_id    uuid PRIMARY KEY REFERENCES control.tenants (id) ON DELETE CASCADE,
    last_step    text NOT NULL,
    state        text NOT NULL CHECK (state IN ('running', 'failed', 'done')),
    attempts     integer NOT NULL DEFAULT 1,
    last_error   text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The outcome of the last template roll-out for each tenant.
CREATE TABLE control.tenant_template_status (
    tenant_id      uuid PRIMARY KEY REFERENCES control.tenants (id) ON DELETE CASCADE,
    target_version integer NOT NULL,
    state          text NOT NULL CHECK (state IN ('ok', 'failed')),
    error          text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE control.operator_tokens (
    id           uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
