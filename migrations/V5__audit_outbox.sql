-- Audit events of changes that committed, written in the same transaction as the change (see
-- docs/audit.md, "Nothing acknowledged is lost"). A row lives only until its event is in
-- ClickHouse or in the writer's on-disk spool: the node that wrote it deletes it then. Rows a
-- node left behind when it died are shipped by any node once they are older than
-- `audit_outbox_recover_after_ms`, claimed with `claimed_at` so two nodes do not ship the same
-- row at once.
--
-- One table for all tenants rather than one per tenant schema: recovery then finds every
-- orphan with one indexed query instead of visiting thousands of schemas, and an insert per
-- event touches no shared row (no hot spot between concurrent writes of a tenant). Tenant roles
-- have no right on it; the data plane's login role writes it, inside the tenant's transaction.
CREATE TABLE control.audit_outbox (
    event_id   uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    -- The audit row as known at commit (shared::events::rows::AuditRow, JSON).
    event      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz
);
-- No index on created_at: the table holds only events in flight (about one flush interval's
-- worth), so recovery's scan is cheap, and every audited write saves an index insert.

-- The one way a tenant's transaction writes its audit event: a function that runs as its owner
-- (tenant roles have no right on the table), inserts only when the calling transaction has
-- written something (it then has a transaction id) and only once per event id, and says
-- whether it inserted. Measured against switching the role back to the login role for a plain
-- insert, it costs an audited write about 0.15 ms less (docs/benchmarks.md): a role switch is
-- dear, and PL/pgSQL plans its insert once per connection.
CREATE SCHEMA tenantry_outbox;
CREATE FUNCTION tenantry_outbox.write(event_id uuid, tenant_id uuid, event jsonb)
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
