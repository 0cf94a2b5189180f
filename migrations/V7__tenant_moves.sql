-- Moving a tenant to another cluster (docs/scale-out.md, "Moving a tenant"). One row per
-- tenant that is being moved or was moved last: the step reached, so a move killed at any point
-- is finished (or cancelled) by running it again, and the catalog says which copy is the
-- tenant's until the switch.
CREATE TABLE control.tenant_moves (
    tenant_id   uuid PRIMARY KEY REFERENCES control.tenants (id),
    source      text NOT NULL REFERENCES control.postgres_clusters (id),
    target      text NOT NULL REFERENCES control.postgres_clusters (id),
    -- copying: the target is being prepared, the tenant is served from the source as usual;
    -- frozen: writes are refused, the source is fenced and copied;
    -- switched: the tenant is served from the target, the source waits for `drop_after`;
    -- done: the source is gone; cancelled: the tenant stayed on the source.
    step        text NOT NULL CHECK (step IN ('copying', 'frozen', 'switched', 'done', 'cancelled')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    frozen_at   timestamptz,
    switched_at timestamptz,
    drop_after  timestamptz,
    finished_at timestamptz,
    CHECK (source <> target)
);

-- While a move freezes its writes, data-plane nodes refuse the tenant's writes (503
-- `tenant_moving`) and keep serving its reads.
ALTER TABLE control.tenants ADD COLUMN moving boolean NOT NULL DEFAULT false;
