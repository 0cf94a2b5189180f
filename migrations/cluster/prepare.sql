-- What every Postgres cluster that holds tenants needs besides their schemas, applied when a
-- cluster is added and by every `control-plane migrate` (idempotent; docs/scale-out.md). The
-- catalog's own cluster got the same objects from catalog migration V5, whose comments say why
-- they are as they are; on that cluster this changes nothing.
--
-- `:data_plane` stands for the data plane's login role, quoted.

DO $$ BEGIN
    CREATE ROLE :data_plane LOGIN NOINHERIT;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- The audit outbox: a tenant's transaction writes its audit event here, on the tenant's own
-- cluster, in the same commit as the change.
CREATE SCHEMA IF NOT EXISTS control;
CREATE TABLE IF NOT EXISTS control.audit_outbox (
    event_id   uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    event      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz
);
CREATE SCHEMA IF NOT EXISTS tenantry_outbox;
CREATE OR REPLACE FUNCTION tenantry_outbox.write(event_id uuid, tenant_id uuid, event jsonb)
    RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
AS $$
BEGIN
    IF txid_current_if_assigned() IS NULL THEN
        RETURN false;
    END IF;
    INSERT INTO control.audit_outbox (event_id, tenant_id, event)
        VALUES (write.event_id, write.tenant_id, write.event)
        ON CONFLICT ON CONSTRAINT audit_outbox_pkey DO NOTHING;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION tenantry_outbox.write(uuid, uuid, jsonb) FROM PUBLIC;
GRANT USAGE ON SCHEMA tenantry_outbox TO PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry_outbox.write(uuid, uuid, jsonb) TO PUBLIC;
GRANT USAGE ON SCHEMA control TO :data_plane;
GRANT SELECT, INSERT, UPDATE, DELETE ON control.audit_outbox TO :data_plane;

-- The mail outbox's marks: a tenant's transaction that queues a mail (an invitation, an
-- activation) marks the tenant here, on its own cluster, in the same commit (catalog migration
-- V2 has the catalog's, with a foreign key to its tenants, which other clusters do not hold).
CREATE SEQUENCE IF NOT EXISTS control.mail_pending_generation;
CREATE TABLE IF NOT EXISTS control.mail_pending (
    tenant_id  uuid PRIMARY KEY,
    generation bigint NOT NULL DEFAULT nextval('control.mail_pending_generation'),
    marked_at  timestamptz NOT NULL DEFAULT now(),
    due_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS mail_pending_due ON control.mail_pending (due_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON control.mail_pending TO :data_plane;
GRANT USAGE ON SEQUENCE control.mail_pending_generation TO :data_plane;
