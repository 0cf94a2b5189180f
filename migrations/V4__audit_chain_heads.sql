-- The newest audit event of each (tenant, writer stream) chain known to be stored in
-- ClickHouse: `control-plane audit verify` checks those events are still there, unchanged,
-- so cutting the end off a chain is noticed. Written by the writers after each insert.
CREATE TABLE control.audit_chain_heads (
    tenant_id  uuid NOT NULL,
    stream_id  text NOT NULL,
    seq        bigint NOT NULL CHECK (seq > 0),
    mac        text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, stream_id)
);

-- Per-tenant retention of audit events and telemetry, in days; the control plane's retention
-- job deletes what is older.
ALTER TABLE control.tenants
    ADD COLUMN audit_retention_days integer NOT NULL DEFAULT 365
        CHECK (audit_retention_days BETWEEN 1 AND 3650),
    ADD COLUMN telemetry_retention_days integer NOT NULL DEFAULT 30
        CHECK (telemetry_retention_days BETWEEN 1 AND 3650);

-- How far the retention job has deleted each audit chain (the highest sequence number it
-- removed): `audit verify` accepts a stream that starts right after it, and nothing else.
CREATE TABLE control.audit_chain_pruned (
    tenant_id  uuid NOT NULL,
    stream_id  text NOT NULL,
    seq        bigint NOT NULL CHECK (seq > 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, stream_id)
);
