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
