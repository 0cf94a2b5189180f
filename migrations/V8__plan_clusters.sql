-- A plan may pin its tenants to a cluster (docs/scale-out.md, "Placement"): new tenants of the
-- plan are placed there unless the operator names another, and rebalancing leaves them there.
ALTER TABLE control.plans
    ADD COLUMN cluster_id text REFERENCES control.postgres_clusters (id);
