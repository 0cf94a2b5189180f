#!/usr/bin/env bash
# Sets up and runs the whole local stack: Postgres (two clusters, the second registered with
# `control-plane cluster add`) and ClickHouse on loopback (installed from
# Debian's packages when missing), a test SMTP server that keeps every mail in a Maildir
# (unless TENANTRY_SMTP_URL names a real one), release builds of both planes, the catalog, an
# operator token, control plane and data plane in the background, and the demo tenants `acme`
# (first cluster) and `globex` (second). Writes deploy/local/state/env for the CLI and curl.
# Safe to run again: it reuses what is there, restarts both planes on the fresh build and
# keeps the demo tenants.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_packages
ensure_postgres
ensure_second_postgres
ensure_clickhouse
if [ -n "${TENANTRY_SMTP_URL:-}" ]; then
    MAIL_NOTE="sent through the configured TENANTRY_SMTP_URL"
else
    ensure_smtp
    export TENANTRY_SMTP_URL=$TENANTRY_TEST_SMTP_URL
    MAIL_NOTE="$TENANTRY_SMTP_URL, stored in $TENANTRY_TEST_MAILDIR/new/"
fi

CONTROL_LISTEN=${TENANTRY_CONTROL_LISTEN:-127.0.0.1:8780}
DATA_LISTEN=${TENANTRY_DATA_LISTEN:-127.0.0.1:8781}
BASE_DOMAIN=${TENANTRY_BASE_DOMAIN:-localhost}

if [ -n "${TENANTRY_DATABASE_URL:-}" ]; then
    DATABASE_URL=$TENANTRY_DATABASE_URL
else
    DATABASE_URL=$(database_url "$ADMIN_DATABASE_URL" tenantry)
    if [ "$(psql "$ADMIN_DATABASE_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = 'tenantry'")" != 1 ]; then
        log "creating database tenantry"
        psql "$ADMIN_DATABASE_URL" -qc "CREATE DATABASE tenantry" >/dev/null
    fi
fi

KEK_FILE="$STATE_DIR/kek"
if [ ! -s "$KEK_FILE" ]; then
    log "generating the key-encryption key ($KEK_FILE)"
    (umask 077 && openssl rand -hex 32 >"$KEK_FILE")
fi

PEPPER_FILE="$STATE_DIR/password-pepper"
if [ ! -s "$PEPPER_FILE" ]; then
    log "generating the password pepper ($PEPPER_FILE)"
    (umask 077 && openssl rand -hex 32 >"$PEPPER_FILE")
fi

log "building release binaries (first build takes several minutes)"
cargo build --release --locked -p control-plane -p data-plane
CONTROL_PLANE="$REPO_ROOT/target/release/control-plane"
DATA_PLANE="$REPO_ROOT/target/release/data-plane"

export TENANTRY_DATABASE_URL=$DATABASE_URL TENANTRY_KEK_FILE=$KEK_FILE \
    TENANTRY_PASSWORD_PEPPER_FILE=$PEPPER_FILE TENANTRY_PUBLIC_SCHEME=http \
    TENANTRY_BASE_DOMAIN=$BASE_DOMAIN TENANTRY_CONTROL_LISTEN=$CONTROL_LISTEN \
    TENANTRY_DATA_LISTEN=$DATA_LISTEN TENANTRY_AUDIT_SPOOL_DIR="$STATE_DIR/spool"

log "migrating the catalog"
"$CONTROL_PLANE" migrate

# The second Postgres cluster, registered as `second` by a file holding its URL (the catalog
# keeps the file's path, never the URL; docs/scale-out.md).
SECOND_URL_FILE="$STATE_DIR/cluster-second.url"
(umask 077 && database_url "$SECOND_DATABASE_URL" tenantry >"$SECOND_URL_FILE")
if [ "$(psql "$SECOND_DATABASE_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = 'tenantry'")" != 1 ]; then
    psql "$SECOND_DATABASE_URL" -qc "CREATE DATABASE tenantry" >/dev/null
fi
if [ "$(psql "$DATABASE_URL" -tAc "SELECT 1 FROM control.postgres_clusters WHERE id = 'second'")" != 1 ]; then
    log "registering the second Postgres cluster"
    "$CONTROL_PLANE" cluster add second --url-file "$SECOND_URL_FILE" \
        --description "second local cluster (127.0.0.1:$SECOND_PG_PORT)" >/dev/null
fi

# The operator token is kept (mode 600) so a second run can reuse it; a new one is minted when
# it is missing or no longer valid.
TOKEN_FILE="$STATE_DIR/operator-token"
token_is_live() {
    [ -s "$TOKEN_FILE" ] || return 1
    [ "$(psql "$DATABASE_URL" -tA -v token="$(cat "$TOKEN_FILE")" <<'SQL'
SELECT count(*) FROM control.operator_tokens
WHERE token_hash = sha256(convert_to(:'token', 'UTF8')) AND revoked_at IS NULL;
SQL
)" = 1 ]
}
if ! token_is_live; then
    log "creating an operator token"
    (umask 077 && "$CONTROL_PLANE" operator token create "local-$(date +%Y%m%d-%H%M%S)" --raw \
        >"$TOKEN_FILE")
fi
OPERATOR_TOKEN=$(cat "$TOKEN_FILE")

# An operator account for the operator console; its password is kept (mode 600) like the
# token. Made once: a second run finds it.
OPERATOR_EMAIL=ops@localhost.example
OPERATOR_PASSWORD_FILE="$STATE_DIR/operator-password"
if [ ! -s "$OPERATOR_PASSWORD_FILE" ]; then
    log "creating the operator account $OPERATOR_EMAIL"
    operator_password=$(openssl rand -base64 18)
    printf '%s\n' "$operator_password" \
        | "$CONTROL_PLANE" operator account add --email "$OPERATOR_EMAIL" >/dev/null \
        && (umask 077 && printf '%s\n' "$operator_password" >"$OPERATOR_PASSWORD_FILE") \
        || log "the operator account $OPERATOR_EMAIL exists, but its password is not in $OPERATOR_PASSWORD_FILE"
fi

stop_pidfile "$STATE_DIR/control-plane.pid" "control plane"
stop_pidfile "$STATE_DIR/data-plane.pid" "data plane"
log "starting the control plane on $CONTROL_LISTEN and the data plane on $DATA_LISTEN"
setsid "$CONTROL_PLANE" serve >"$STATE_DIR/control-plane.log" 2>&1 </dev/null &
echo $! >"$STATE_DIR/control-plane.pid"
setsid "$DATA_PLANE" serve >"$STATE_DIR/data-plane.log" 2>&1 </dev/null &
echo $! >"$STATE_DIR/data-plane.pid"

CONTROL_URL="http://$CONTROL_LISTEN"
DATA_URL="http://$DATA_LISTEN"
wait_until "control plane" 30 curl -sf -o /dev/null -H "Authorization: Bearer $OPERATOR_TOKEN" \
    "$CONTROL_URL/v1/tenants" || die "control plane did not start; see $STATE_DIR/control-plane.log"
wait_until "data plane" 30 curl -sf -o /dev/null "$DATA_URL/readyz" \
    || die "data plane not ready; see $STATE_DIR/data-plane.log"

# The demo tenant and its admin: created once, finished if an earlier run was interrupted.
# The admin's password is written only once activation succeeded; while it is missing, a new
# activation token is issued (the admin is still invited) and used.
DEMO_EMAIL=admin@acme.example
DEMO_PASSWORD_FILE="$STATE_DIR/demo-admin-password"
json_field() { sed -n "s/^  \"$1\": \"\([A-Za-z0-9_-]*\)\",\{0,1\}\$/\1/p"; }
demo_status=$("$CONTROL_PLANE" tenant show acme --json 2>/dev/null | json_field status || true)
activation_token=
case "$demo_status" in
    "") log "provisioning the demo tenant acme with admin $DEMO_EMAIL"
        activation_token=$("$CONTROL_PLANE" tenant create acme --name "Acme Corporation" \
            --plan standard --admin-email "$DEMO_EMAIL" --cluster primary --json \
            | json_field activation_token) ;;
    provisioning|failed) log "finishing the demo tenant's provisioning"
        "$CONTROL_PLANE" tenant retry acme ;;
    suspended) log "the demo tenant acme is suspended; resume it with: control-plane tenant resume acme" ;;
    *) log "demo tenant acme is $demo_status" ;;
esac
if [ ! -s "$DEMO_PASSWORD_FILE" ] && [ -z "$activation_token" ]; then
    activation_token=$("$CONTROL_PLANE" tenant activation-token acme --email "$DEMO_EMAIL" \
        --json 2>/dev/null | json_field activation_token || true)
    [ -n "$activation_token" ] \
        || log "the demo admin is already active, but its password is not in $DEMO_PASSWORD_FILE"
fi
if [ -n "$activation_token" ]; then
    log "activating the demo admin $DEMO_EMAIL"
    demo_password=$(openssl rand -base64 18)
    curl -sf -o /dev/null -H 'X-Tenant: acme' -H 'Content-Type: application/json' \
        -d "{\"token\": \"$activation_token\", \"password\": \"$demo_password\"}" \
        "$DATA_URL/v1/auth/activate" || die "activating the demo admin failed"
    (umask 077 && printf '%s\n' "$demo_password" >"$DEMO_PASSWORD_FILE")
fi

# A second demo tenant on the second cluster: the same data plane serves both.
globex_status=$("$CONTROL_PLANE" tenant show globex --json 2>/dev/null | json_field status || true)
case "$globex_status" in
    "") log "provisioning the demo tenant globex on the second cluster"
        "$CONTROL_PLANE" tenant create globex --name "Globex" --cluster second >/dev/null ;;
    provisioning|failed) log "finishing the demo tenant globex's provisioning"
        "$CONTROL_PLANE" tenant retry globex >/dev/null ;;
    *) log "demo tenant globex is $globex_status" ;;
esac
curl -sf -o /dev/null -H 'X-Tenant: globex' "$DATA_URL/v1/tenant" \
    || die "the data plane does not serve globex on the second cluster; see $STATE_DIR/data-plane.log"

cat >"$STATE_DIR/env" <<ENV
# Written by deploy/local/up.sh. Use with: set -a; . deploy/local/state/env; set +a
export TENANTRY_DATABASE_URL='$DATABASE_URL'
export TENANTRY_KEK_FILE='$KEK_FILE'
export TENANTRY_PASSWORD_PEPPER_FILE='$PEPPER_FILE'
export TENANTRY_PUBLIC_SCHEME=http
export TENANTRY_DEMO_ADMIN_EMAIL='$DEMO_EMAIL'
export TENANTRY_DEMO_ADMIN_PASSWORD='$(cat "$DEMO_PASSWORD_FILE" 2>/dev/null)'
export TENANTRY_BASE_DOMAIN='$BASE_DOMAIN'
export TENANTRY_CONTROL_LISTEN='$CONTROL_LISTEN'
export TENANTRY_DATA_LISTEN='$DATA_LISTEN'
export TENANTRY_CLICKHOUSE_URL='$TENANTRY_CLICKHOUSE_URL'
export TENANTRY_AUDIT_SPOOL_DIR='$STATE_DIR/spool'
export TENANTRY_SMTP_URL='$TENANTRY_SMTP_URL'
export TENANTRY_CONTROL_URL='$CONTROL_URL'
export TENANTRY_DATA_URL='$DATA_URL'
export TENANTRY_OPERATOR_TOKEN='$OPERATOR_TOKEN'
export PATH="$REPO_ROOT/target/release:\$PATH"
ENV
chmod 600 "$STATE_DIR/env"

cat <<DONE

Tenantry is running.
  control plane  $CONTROL_URL   (log: deploy/local/state/control-plane.log)
  data plane     $DATA_URL   (log: deploy/local/state/data-plane.log)
  Postgres       ${DATABASE_URL}
  ClickHouse     $TENANTRY_CLICKHOUSE_URL
  Mail           $MAIL_NOTE

Try:
  set -a; . deploy/local/state/env; set +a
  control-plane tenant list
  control-plane tenant show acme
  control-plane cluster list                 # acme on primary, globex on second
  curl -H 'X-Tenant: globex' \$TENANTRY_DATA_URL/v1/tenant
  curl -H "Authorization: Bearer \$TENANTRY_OPERATOR_TOKEN" \$TENANTRY_CONTROL_URL/v1/tenants
  curl -H 'X-Tenant: acme' \$TENANTRY_DATA_URL/v1/tenant
  curl -H 'Host: acme.$BASE_DOMAIN' \$TENANTRY_DATA_URL/v1/tenant
  curl -H 'X-Tenant: acme' -H 'Content-Type: application/json' \
       -d "{\"email\": \"\$TENANTRY_DEMO_ADMIN_EMAIL\", \"password\": \"\$TENANTRY_DEMO_ADMIN_PASSWORD\"}" \
       \$TENANTRY_DATA_URL/v1/auth/login

Demo admin: $DEMO_EMAIL / $(cat "$DEMO_PASSWORD_FILE" 2>/dev/null)
Tenant console: http://acme.$BASE_DOMAIN:${DATA_URL##*:}/console (sign in as the demo admin)
Operator console: $CONTROL_URL/console ($OPERATOR_EMAIL / $(cat "$OPERATOR_PASSWORD_FILE" 2>/dev/null))

Stop it with deploy/local/down.sh.
DONE
