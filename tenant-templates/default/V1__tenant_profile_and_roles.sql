-- Version 1 of the default tenant template. Runs inside the tenant's schema, as the tenant's
-- role, so every object is owned by that role and no grant is needed.
-- Rule for every later version: additive only (new tables, new nullable columns, new
-- indexes) until every tenant has it, so the data plane can serve a tenant one version behind.

CREATE TABLE tenant_profile (
    id           integer PRIMARY KEY CHECK (id = 1),
    display_name text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE roles (
    name        text PRIMARY KEY,
    description text NOT NULL,
    permissions text[] NOT NULL,
    built_in    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
