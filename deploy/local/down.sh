#!/usr/bin/env bash
# Stops what up.sh and test.sh started: both planes, the private ClickHouse servers, the test
# SMTP server, the test identity providers, PgBouncer, the second Postgres cluster and, when
# one was started, the private first one. Data stays in deploy/local/state/ for the next
# up.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_pidfile "$STATE_DIR/data-plane.pid" "data plane"
stop_pidfile "$STATE_DIR/control-plane.pid" "control plane"
stop_pidfile "$STATE_DIR/clickhouse/clickhouse.pid" "ClickHouse"
stop_pidfile "$STATE_DIR/clickhouse-2/clickhouse.pid" "the second ClickHouse"
stop_pidfile "$STATE_DIR/mail/aiosmtpd.pid" "test SMTP server"
stop_pidfile "$STATE_DIR/idp/oidc-provider.pid" "test OIDC provider"
stop_pidfile "$STATE_DIR/saml-idp/saml-idp.pid" "test SAML IdP"
stop_pidfile "$STATE_DIR/idp/samlify-idp.pid" "samlify SAML IdP"
stop_pidfile "$(pgbouncer_dir)/pgbouncer.pid" "PgBouncer"
for data in "$STATE_DIR/postgres" "$(second_postgres_dir)"; do
    if [ -f "$data/postmaster.pid" ]; then
        log "stopping the private Postgres in $data"
        run=()
        [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
        "${run[@]}" "$(pg_bin pg_ctl)" -D "$data" -m fast -w stop >/dev/null
    fi
done
log "stopped"
