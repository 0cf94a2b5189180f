#!/usr/bin/env bash
# Sets up the same services as up.sh (Postgres, ClickHouse and a test SMTP server on loopback,
# installed when missing) and a PgBouncer, removes what earlier test runs left behind, then
# runs the whole check: rustfmt, clippy with warnings denied, every test of the workspace, and
# a slice of them again behind PgBouncer. Extra arguments go to `cargo test`, e.g.
# `deploy/local/test.sh -- lifecycle`. CI runs exactly this (.ci/run).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_packages
ensure_postgres
ensure_pgbouncer
ensure_second_postgres
ensure_second_postgres_tls
ensure_clickhouse
ensure_clickhouse_second_shard
ensure_smtp
ensure_oidc_provider
ensure_saml_idp
ensure_samlify_idp
ensure_otel_python
ensure_api_tools
ensure_browser
export TENANTRY_TEST_DATABASE_URL=$ADMIN_DATABASE_URL
export TENANTRY_TEST_SECOND_DATABASE_URL=$SECOND_DATABASE_URL

# Test databases are `tenantry_test_*` and test roles `tt_*` (roles are cluster-wide). A
# database still in use (a concurrent run) refuses DROP, and a role that still owns objects
# refuses DROP ROLE, so only leftovers go.
log "removing leftovers of earlier test runs"
# One psql session per kind (a session per object took minutes after a few hundred runs);
# a statement that fails (the object is in use or still owns something) leaves it for later.
# Both clusters: a run places some tenants on the second one, in a database of the same name.
for url in "$ADMIN_DATABASE_URL" "$SECOND_DATABASE_URL"; do
    psql "$url" -tAc \
        "SELECT format('DROP DATABASE %I;', datname) FROM pg_database
         WHERE datname LIKE 'tenantry\_test\_%'" |
        psql "$url" -q >/dev/null 2>&1 || true
    # A run's roles are `tt_<suffix>_*` and its database `tenantry_test_<suffix>`: a role goes
    # only once its run's database is gone, so a run still going on keeps its roles.
    psql "$url" -tAc \
        "SELECT format('DROP ROLE %I;', rolname) FROM pg_roles r WHERE rolname LIKE 'tt\_%' AND NOT EXISTS (
             SELECT 1 FROM pg_database d
             WHERE d.datname = 'tenantry_test_' || split_part(substr(r.rolname, 4), '_', 1))" |
        psql "$url" -q >/dev/null 2>&1 || true
done
# Each test run has its own ClickHouse database, named like its Postgres database, on every
# ClickHouse server (the cluster tests put one on each shard); it goes once that one is gone
# (a few at a time: one HTTP request per DROP).
for clickhouse in $(echo "$TENANTRY_CLICKHOUSE_URL,${TENANTRY_TEST_CLICKHOUSE_SHARD_URLS:-}" |
    tr ',' '\n' | sort -u); do
    comm -23 \
        <(curl -sf "$clickhouse/" --data-binary \
            "SELECT name FROM system.databases WHERE name LIKE 'tenantry\\_test\\_%'" | sort) \
        <(psql "$ADMIN_DATABASE_URL" -tAc \
            "SELECT datname FROM pg_database WHERE datname LIKE 'tenantry\_test\_%'" | sort) |
        xargs -r -P 4 -I{} curl -sf "$clickhouse/" \
            --data-binary "DROP DATABASE IF EXISTS {}" >/dev/null 2>&1 || true
done
find "${TMPDIR:-/tmp}/tenantry-tests" -type f -mmin +60 -delete 2>/dev/null || true
find "${TMPDIR:-/tmp}/tenantry-tests" -mindepth 1 -type d -empty -mmin +60 -delete 2>/dev/null || true
# Tests tell their mail apart by unique recipients; old mail only slows the Maildir scan.
find "$TENANTRY_TEST_MAILDIR" -type f -mmin +60 -delete 2>/dev/null || true

log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test --workspace"
cargo test --workspace --locked "$@"

# The same tests again with every data plane's pools behind PgBouncer in transaction mode
# (docs/scale-out.md): the ones that exercise tenant transactions, caches kept by NOTIFY, mail
# and the audit outbox. Two check what PgBouncer replaces (the node's own backends) and stay
# out. Only for a whole run: extra arguments chose other tests.
if [ $# -eq 0 ]; then
    log "cargo test: a slice again, the data plane behind PgBouncer"
    TENANTRY_TEST_DATA_PLANE_VIA_PGBOUNCER=1 cargo test -p tenantry-tests --test api --locked -- \
        isolation:: records:: records_security:: lifecycle:: identity:: tokens:: api_keys:: \
        rbac:: limits:: mail:: audit:: \
        --skip isolation::a_connection_is_closed_once_it_has_served_its_uses \
        --skip isolation::with_affinity_groups_a_tenant_meets_its_groups_backends_and_borrows_only_when_they_are_busy
fi
