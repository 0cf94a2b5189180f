-- The cluster registry (docs/scale-out.md): where each cluster's URL is, and whether it takes
-- new tenants. A URL is never stored: only the name of the environment variable or the path of
-- the file that holds it, which each plane reads in its own environment. Both NULL: the
-- catalog's own cluster, reached through the planes' `database_url`.
ALTER TABLE control.postgres_clusters
    ADD COLUMN url_env  text,
    ADD COLUMN url_file text,
    ADD COLUMN drained  boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT postgres_clusters_one_url CHECK (url_env IS NULL OR url_file IS NULL);
