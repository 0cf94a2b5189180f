# Shared by up.sh, test.sh and down.sh: find or install and start the services Tenantry needs
# on loopback. Sourced, not run. Everything this starts keeps its data, logs and pid files under
# deploy/local/state/ (git-ignored).
#
# Postgres: TENANTRY_DATABASE_URL when set; else the server answering on 127.0.0.1:5432; else a
# private cluster (initdb) on 127.0.0.1:15432. A second Postgres cluster, always private, on
# 127.0.0.1:15433 (tenants placed on another cluster). ClickHouse: a private server on 127.0.0.1:18123
# (HTTP) / 19000 (native), whatever else runs on the machine. Mail: a test SMTP server
# (aiosmtpd, from PyPI into a venv) on 127.0.0.1:18025 that stores every mail in a Maildir.

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_DIR="$REPO_ROOT/deploy/local/state"
PRIVATE_PG_PORT=15432
SECOND_PG_PORT=15433
PGBOUNCER_PORT=16432
CLICKHOUSE_HTTP_PORT=18123
CLICKHOUSE_TCP_PORT=19000
CLICKHOUSE_INTERSERVER_PORT=19009
CLICKHOUSE_HTTPS_PORT=18443
# The second ClickHouse: with the first, the two shards of cluster tenantry_events.
CLICKHOUSE2_HTTP_PORT=18124
CLICKHOUSE2_TCP_PORT=19001
CLICKHOUSE2_INTERSERVER_PORT=19010
CLICKHOUSE_CLUSTER=tenantry_events
SMTP_PORT=18025
AIOSMTPD_VERSION=1.4.6
OIDC_PORT=18090
SAML_IDP_PORT=18092
SAMLIFY_IDP_PORT=18094
PYSAML2_VERSION=7.5.4
OTEL_PYTHON_VERSION=1.45.2
SCHEMATHESIS_VERSION=4.32.0
PLAYWRIGHT_VERSION=1.65.3
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
SCIM2_TESTER_VERSION=0.5.2

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

# Installs the Debian packages among "$@" that are not installed yet.
apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]} (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" >"$STATE_DIR/apt.log" 2>&1 || {
        # A stale package index is the usual cause on a fresh machine.
        as_root apt-get update >>"$STATE_DIR/apt.log" 2>&1
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${missing[@]}" >>"$STATE_DIR/apt.log" 2>&1
    } || die "apt-get install ${missing[*]} failed; see $STATE_DIR/apt.log"
}

# What the build and the services need from Debian. The service packages' own init scripts are
# not used: we start private instances.
ensure_packages() {
    mkdir -p "$STATE_DIR"
    # pkg-config … libclang-dev: samael's XML-DSig checks (libxmlsec1 through bindgen);
    # xmlsec1: the test SAML IdP (pysaml2) signs with it; nodejs/npm: the test OIDC provider.
    local wanted=(ca-certificates curl openssl clickhouse-server clickhouse-client oathtool
        pkg-config libssl-dev libxml2-dev libxmlsec1-dev libxmlsec1-openssl libclang-dev xmlsec1)
    command -v npm >/dev/null || wanted+=(nodejs npm)
    command -v psql >/dev/null && command -v pg_isready >/dev/null || wanted+=(postgresql-client)
    apt_install "${wanted[@]}"
}

pg_answers() { pg_isready -q -d "$1" -t 3 >/dev/null 2>&1; }

pg_bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    [ -n "$found" ] && [ -x "$found/$1" ] && { echo "$found/$1"; return; }
    command -v "$1" || die "no $1 found"
}

# Sets ADMIN_DATABASE_URL: a superuser connection to a server on loopback.
ensure_postgres() {
    if [ -n "${TENANTRY_DATABASE_URL:-}" ]; then
        pg_answers "$TENANTRY_DATABASE_URL" || die "TENANTRY_DATABASE_URL does not answer"
        # The same server, its maintenance database.
        ADMIN_DATABASE_URL="${TENANTRY_ADMIN_DATABASE_URL:-${TENANTRY_DATABASE_URL%/*}/postgres}"
    elif pg_answers "postgres://postgres@127.0.0.1:5432/postgres"; then
        ADMIN_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    else
        start_private_postgres
        ADMIN_DATABASE_URL="postgres://postgres@127.0.0.1:$PRIVATE_PG_PORT/postgres"
    fi
    export ADMIN_DATABASE_URL
}

start_private_postgres() {
    start_postgres_cluster "$PRIVATE_PG_PORT" "$STATE_DIR/postgres"
}

# A second cluster, always private, where tenants are placed besides the first (docs/
# scale-out.md): the tests and the demo register it with `control-plane cluster add`. Sets
# SECOND_DATABASE_URL, a superuser connection to it.
ensure_second_postgres() {
    start_postgres_cluster "$SECOND_PG_PORT" "$(second_postgres_dir)"
    SECOND_DATABASE_URL="postgres://postgres@127.0.0.1:$SECOND_PG_PORT/postgres"
    export SECOND_DATABASE_URL
}

# TLS on the second cluster, for the tests of TLS to Postgres: a throw-away CA made here with
# openssl (ca.crt), another one nothing is signed by (other-ca.crt), and a server certificate
# for `localhost` only, signed by the first, in the cluster's data directory; `ssl = on` by
# ALTER SYSTEM and a reload. Plain connections keep working (pg_hba's `host` lines match both).
# The CA lives beside the cluster's data, one per machine like the cluster, so checkouts
# sharing the cluster share it (see make_test_certificates). Exports TENANTRY_TEST_POSTGRES_CA
# and TENANTRY_TEST_POSTGRES_OTHER_CA.
ensure_second_postgres_tls() {
    local dir data url="$SECOND_DATABASE_URL"
    data=$(second_postgres_dir)
    dir="$data-tls"
    export TENANTRY_TEST_POSTGRES_CA="$dir/ca.crt"
    export TENANTRY_TEST_POSTGRES_OTHER_CA="$dir/other-ca.crt"
    make_test_certificates "$dir" "the second Postgres"
    if ! cmp -s "$dir/server.crt" "$data/tls-server.crt" 2>/dev/null; then
        # The key must belong to the user the server runs as, and be private to it.
        local owner=()
        if [ "$(id -u)" -eq 0 ]; then owner=(-o postgres -g postgres); fi
        install -m 0600 "${owner[@]}" "$dir/server.key" "$data/tls-server.key"
        install -m 0644 "${owner[@]}" "$dir/server.crt" "$data/tls-server.crt"
        psql "$url" -qc "ALTER SYSTEM SET ssl_cert_file = '$data/tls-server.crt'" \
            -c "ALTER SYSTEM SET ssl_key_file = '$data/tls-server.key'" \
            -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null \
            || die "cannot turn TLS on in the second Postgres"
    fi
    wait_until "TLS on the second Postgres" 10 \
        bash -c "[ \"\$(psql '$url' -tAc 'SHOW ssl')\" = on ]" \
        || die "the second Postgres did not turn TLS on; see $data/server.log"
}

# PgBouncer (Debian's package) in transaction mode on loopback, in front of the Postgres that
# ADMIN_DATABASE_URL names, for the tests that run the data plane through a pooler: every
# database of that server, and every role, each looked up by auth_query as `postgres` (the
# local server trusts loopback, so PgBouncer does too). Four server connections per database
# and role (a test's data plane has up to eight clients on it, the benchmark's 16: two
# backends per core keep two cores busy); idle ones close after 1 s, so a finished test's do
# not add up (the local server allows 100 connections) and its database can be dropped. PgBouncer refuses to run as root: as root it runs as
# `postgres`, its files under that user's home. Exports
# TENANTRY_TEST_PGBOUNCER.
ensure_pgbouncer() {
    export TENANTRY_TEST_PGBOUNCER="127.0.0.1:$PGBOUNCER_PORT"
    local probe="postgres://postgres@127.0.0.1:$PGBOUNCER_PORT/postgres"
    pg_answers "$probe" && return 0
    apt_install pgbouncer
    local dir run=() server host port
    dir=$(pgbouncer_dir)
    [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
    mkdir -p "$dir"
    server=${ADMIN_DATABASE_URL#*@}
    server=${server%%/*}
    host=${server%:*}
    port=${server##*:}
    [ "$port" = "$server" ] && port=5432
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$port auth_user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
pool_mode = transaction
default_pool_size = 4
max_client_conn = 2000
server_idle_timeout = 1
auth_type = trust
auth_file = $dir/userlist.txt
auth_user = postgres
auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename = \$1
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    echo '"postgres" ""' >"$dir/userlist.txt"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
    log "starting PgBouncer (transaction mode) on 127.0.0.1:$PGBOUNCER_PORT"
    "${run[@]}" pgbouncer -d "$dir/pgbouncer.ini" >/dev/null \
        || die "PgBouncer did not start; see $dir/pgbouncer.log"
    wait_until "PgBouncer" 10 pg_answers "$probe" \
        || die "PgBouncer did not answer; see $dir/pgbouncer.log"
}

pgbouncer_dir() {
    if [ "$(id -u)" -eq 0 ]; then echo /var/lib/postgresql/tenantry-pgbouncer
    else echo "$STATE_DIR/pgbouncer"
    fi
}

# A throw-away CA made with openssl (ca.crt), another one nothing is signed by (other-ca.crt),
# and a certificate for `localhost` only signed by the first (server.crt, server.key), in $1;
# made once, kept while the CA still verifies the certificate. $2 names the server, for logs.
make_test_certificates() {
    local dir=$1 server=$2 name
    mkdir -p "$dir"
    for name in ca other-ca; do
        [ -f "$dir/$name.crt" ] && continue
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
            -subj "/CN=tenantry-test-$name" -keyout "$dir/$name.key" -out "$dir/$name.crt" \
            >/dev/null 2>&1 || die "openssl could not make the test CA $name"
    done
    openssl verify -CAfile "$dir/ca.crt" "$dir/server.crt" >/dev/null 2>&1 && return 0
    log "making a TLS certificate for $server (localhost, test CA)"
    printf 'subjectAltName=DNS:localhost\n' >"$dir/server.ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1 \
        && openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 3650 -extfile "$dir/server.ext" -out "$dir/server.crt" \
            >/dev/null 2>&1 \
        || die "openssl could not make a certificate for $server"
}

# Where the second cluster keeps its data: under state/ for a user, but as root the cluster
# runs as `postgres`, which may not enter a checkout in a private directory (CI's clone, a
# mktemp -d), so it lives under that user's home: one per machine, like its port.
second_postgres_dir() {
    if [ "$(id -u)" -eq 0 ]; then echo /var/lib/postgresql/tenantry-second
    else echo "$STATE_DIR/postgres-2"
    fi
}

# Starts (creating it first if need be) a Postgres cluster of Debian's packages with its data
# in $2, listening on 127.0.0.1:$1 only, trusting loopback.
start_postgres_cluster() {
    local port=$1 data=$2
    local url="postgres://postgres@127.0.0.1:$port/postgres"
    pg_answers "$url" && return 0
    apt_install postgresql
    # initdb refuses to run as root: the cluster belongs to the `postgres` system user.
    local run=()
    if [ "$(id -u)" -eq 0 ]; then run=(runuser -u postgres --); fi
    if [ ! -f "$data/PG_VERSION" ]; then
        log "creating a private Postgres cluster in $data"
        mkdir -p "$data"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
        chmod 700 "$data"
        "${run[@]}" "$(pg_bin initdb)" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    log "starting a private Postgres on 127.0.0.1:$port"
    "${run[@]}" "$(pg_bin pg_ctl)" -D "$data" -l "$data/server.log" -w start \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=300" \
        >/dev/null || die "Postgres on port $port did not start; see $data/server.log"
}

clickhouse_answers() {
    curl -sf "http://127.0.0.1:${1:-$CLICKHOUSE_HTTP_PORT}/ping" >/dev/null 2>&1
}

clickhouse_https_answers() {
    curl -sf --cacert "$TENANTRY_TEST_CLICKHOUSE_CA" \
        "https://localhost:$CLICKHOUSE_HTTPS_PORT/ping" >/dev/null 2>&1
}

# A private ClickHouse from the packaged config with our ports, paths and loopback only. It
# also serves HTTPS on CLICKHOUSE_HTTPS_PORT with a certificate for `localhost` from a
# throw-away CA (make_test_certificates), for the tests of TLS to ClickHouse; a running one
# that does not (started by an older script) is restarted. Exports TENANTRY_CLICKHOUSE_URL,
# TENANTRY_TEST_CLICKHOUSE_HTTPS_URL, TENANTRY_TEST_CLICKHOUSE_CA and
# TENANTRY_TEST_CLICKHOUSE_OTHER_CA.
ensure_clickhouse() {
    export TENANTRY_CLICKHOUSE_URL="http://127.0.0.1:$CLICKHOUSE_HTTP_PORT"
    local dir
    dir=$(clickhouse_dir "$CLICKHOUSE_HTTP_PORT" "$STATE_DIR/clickhouse")
    export TENANTRY_TEST_CLICKHOUSE_HTTPS_URL="https://localhost:$CLICKHOUSE_HTTPS_PORT"
    export TENANTRY_TEST_CLICKHOUSE_CA="$dir/tls/ca.crt"
    export TENANTRY_TEST_CLICKHOUSE_OTHER_CA="$dir/tls/other-ca.crt"
    make_test_certificates "$dir/tls" "ClickHouse"
    write_clickhouse_cluster "$dir"
    if clickhouse_answers "$CLICKHOUSE_HTTP_PORT"; then
        clickhouse_https_answers && return 0
        log "restarting the private ClickHouse to serve HTTPS as well"
        stop_pidfile "$dir/clickhouse.pid" "ClickHouse"
    fi
    start_private_clickhouse "$dir" "$CLICKHOUSE_HTTP_PORT" "$CLICKHOUSE_TCP_PORT" \
        "$CLICKHOUSE_INTERSERVER_PORT" "$CLICKHOUSE_HTTPS_PORT"
    wait_until "ClickHouse over HTTPS" 10 clickhouse_https_answers \
        || die "ClickHouse did not answer over HTTPS; see $dir/log/"
}

# A second private ClickHouse, plain HTTP only: with the first, the two shards of cluster
# $CLICKHOUSE_CLUSTER (docs/scale-out.md, "ClickHouse as a cluster"). Exports
# TENANTRY_TEST_CLICKHOUSE_CLUSTER and TENANTRY_TEST_CLICKHOUSE_SHARD_URLS.
ensure_clickhouse_second_shard() {
    local dir
    dir=$(clickhouse_dir "$CLICKHOUSE2_HTTP_PORT" "$STATE_DIR/clickhouse-2")
    export TENANTRY_TEST_CLICKHOUSE_CLUSTER=$CLICKHOUSE_CLUSTER
    export TENANTRY_TEST_CLICKHOUSE_SHARD_URLS="http://127.0.0.1:$CLICKHOUSE_HTTP_PORT,http://127.0.0.1:$CLICKHOUSE2_HTTP_PORT"
    write_clickhouse_cluster "$dir"
    clickhouse_answers "$CLICKHOUSE2_HTTP_PORT" && return 0
    start_private_clickhouse "$dir" "$CLICKHOUSE2_HTTP_PORT" "$CLICKHOUSE2_TCP_PORT" \
        "$CLICKHOUSE2_INTERSERVER_PORT" ""
}

# The directory of the ClickHouse serving HTTP on port $1 (beside its --config-file), which
# may belong to another checkout of the repository sharing this machine; else $2. Its
# certificates and cluster file are the ones that count.
clickhouse_dir() {
    local cmdline config
    for cmdline in /proc/[0-9]*/cmdline; do
        config=$(tr '\0' '\n' 2>/dev/null <"$cmdline" | sed -n 's/^--config-file=//p') || continue
        [ -n "$config" ] && grep -q "<http_port>$1</http_port>" "$config" 2>/dev/null \
            && { dirname "$config"; return 0; }
    done
    echo "$2"
}

# Both local servers as the shards of cluster $CLICKHOUSE_CLUSTER, in $1/config.d (merged
# into the server's remote_servers, re-read while it runs).
write_clickhouse_cluster() {
    mkdir -p "$1/config.d"
    cat >"$1/config.d/tenantry-cluster.xml" <<EOF
<yandex>
    <remote_servers>
        <$CLICKHOUSE_CLUSTER>
            <shard><replica><host>127.0.0.1</host><port>$CLICKHOUSE_TCP_PORT</port></replica></shard>
            <shard><replica><host>127.0.0.1</host><port>$CLICKHOUSE2_TCP_PORT</port></replica></shard>
        </$CLICKHOUSE_CLUSTER>
    </remote_servers>
</yandex>
EOF
}

# Starts a private ClickHouse in $1 on loopback ports $2 (HTTP), $3 (native), $4
# (interserver) and, unless empty, $5 (HTTPS, with the certificate in $1/tls), from the
# packaged config; waits until it answers.
start_private_clickhouse() {
    local dir=$1 http=$2 tcp=$3 interserver=$4 https=$5 https_line='s#^$##'
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
    # The packaged config has HTTPS commented out; its dhparam file does not exist (ECDHE
    # needs none).
    [ -n "$https" ] \
        && https_line="s#^ *<https_port>8443</https_port>#    --><https_port>$https</https_port><!--#"
    sed -e "s#<http_port>8123</http_port>#<http_port>$http</http_port>#" \
        -e "s#<tcp_port>9000</tcp_port>#<tcp_port>$tcp</tcp_port>#" \
        -e "s#<interserver_http_port>9009</interserver_http_port>#<interserver_http_port>$interserver</interserver_http_port>#" \
        -e "s#<listen_host>::1</listen_host>##" \
        -e "$https_line" \
        -e "s#/etc/clickhouse-server/server.crt#$dir/tls/server.crt#" \
        -e "s#/etc/clickhouse-server/server.key#$dir/tls/server.key#" \
        -e "s#<dhParamsFile>.*</dhParamsFile>##" \
        -e "s#/var/lib/clickhouse/tmp/#$dir/tmp/#" \
        -e "s#/var/lib/clickhouse/user_files/#$dir/user_files/#" \
        -e "s#/var/lib/clickhouse/format_schemas/#$dir/format_schemas/#" \
        -e "s#<path>/var/lib/clickhouse/</path>#<path>$dir/data/</path>#" \
        -e "s#/var/log/clickhouse-server/#$dir/log/#g" \
        -e "s#<level>warning</level>#<level>warning</level><size>100M</size><count>2</count>#" \
        /etc/clickhouse-server/config.xml >"$dir/config.xml"
    cp /etc/clickhouse-server/users.xml "$dir/users.xml"
    log "starting a private ClickHouse on 127.0.0.1:$http"
    # The server reads users.xml and config.d beside its config file; it detaches with
    # --daemon.
    clickhouse-server --config-file="$dir/config.xml" --pid-file="$dir/clickhouse.pid" --daemon \
        >"$dir/log/start.log" 2>&1 || die "ClickHouse did not start; see $dir/log/"
    wait_until "ClickHouse on $http" 60 clickhouse_answers "$http" \
        || die "ClickHouse did not answer; see $dir/log/"
}

# Whether an SMTP server greets on 127.0.0.1:$SMTP_PORT.
smtp_answers() {
    timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SMTP_PORT && read -r -t 2 greeting <&3 \
        && [[ \$greeting == 220* ]] && printf 'QUIT\r\n' >&3" 2>/dev/null
}

# The Maildir of the aiosmtpd serving 127.0.0.1:$SMTP_PORT, read from its command line (it may
# belong to another checkout of the repository).
running_smtp_maildir() {
    local cmdline args
    for cmdline in /proc/[0-9]*/cmdline; do
        args=$(tr '\0' '\n' 2>/dev/null <"$cmdline") || continue
        grep -qx 'aiosmtpd' <<<"$args" && grep -qx "127.0.0.1:$SMTP_PORT" <<<"$args" \
            && grep -qx 'aiosmtpd.handlers.Mailbox' <<<"$args" || continue
        tail -n1 <<<"$args"
        return 0
    done
    return 1
}

# A test SMTP server: aiosmtpd (pinned, from PyPI, in a venv under state/mail/) on
# 127.0.0.1:$SMTP_PORT, storing every mail it accepts in a Maildir. Started in the background
# unless an SMTP server already answers there. Exports TENANTRY_TEST_SMTP_URL and
# TENANTRY_TEST_MAILDIR (when both are set already, uses them as they are).
ensure_smtp() {
    if [ -n "${TENANTRY_TEST_SMTP_URL:-}" ] && [ -n "${TENANTRY_TEST_MAILDIR:-}" ]; then
        return 0
    fi
    export TENANTRY_TEST_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT"
    local dir="$STATE_DIR/mail"
    if smtp_answers; then
        TENANTRY_TEST_MAILDIR=$(running_smtp_maildir) || die "an SMTP server that is not our \
aiosmtpd answers on 127.0.0.1:$SMTP_PORT; stop it, or set TENANTRY_TEST_SMTP_URL and \
TENANTRY_TEST_MAILDIR"
        export TENANTRY_TEST_MAILDIR
        return 0
    fi
    export TENANTRY_TEST_MAILDIR="$dir/maildir"
    local venv="$dir/venv"
    mkdir -p "$dir"
    if ! "$venv/bin/python" -c "import aiosmtpd" 2>/dev/null; then
        python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv
        log "installing aiosmtpd $AIOSMTPD_VERSION (pip, into $venv)"
        rm -rf "$venv"
        python3 -m venv "$venv" >"$dir/pip.log" 2>&1 \
            && "$venv/bin/pip" install --quiet "aiosmtpd==$AIOSMTPD_VERSION" >>"$dir/pip.log" 2>&1 \
            || die "cannot install aiosmtpd; see $dir/pip.log"
    fi
    log "starting a test SMTP server on 127.0.0.1:$SMTP_PORT (mail lands in $TENANTRY_TEST_MAILDIR)"
    setsid "$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
        -c aiosmtpd.handlers.Mailbox "$TENANTRY_TEST_MAILDIR" >"$dir/aiosmtpd.log" 2>&1 </dev/null &
    echo $! >"$dir/aiosmtpd.pid"
    wait_until "SMTP server" 30 smtp_answers || die "aiosmtpd did not start; see $dir/aiosmtpd.log"
}

http_answers() { curl -sf -o /dev/null "$1" 2>/dev/null; }

# Runs "$@" detached (new session, no terminal) with output to $LOG, and records its pid in
# $PIDFILE. Usage: start_detached LOG PIDFILE COMMAND...
start_detached() {
    local log=$1 pidfile=$2
    shift 2
    setsid "$@" >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
}

# The OIDC provider of the SSO tests: npm `oidc-provider` (pinned by deploy/local/idp/
# package-lock.json, installed with `npm ci` under state/idp/) running
# deploy/local/idp/oidc-provider.mjs on 127.0.0.1:$OIDC_PORT. Exports TENANTRY_TEST_OIDC_ISSUER.
ensure_oidc_provider() {
    export TENANTRY_TEST_OIDC_ISSUER="http://127.0.0.1:$OIDC_PORT"
    local source="$REPO_ROOT/deploy/local/idp" dir="$STATE_DIR/idp"
    mkdir -p "$dir"
    # The script runs from the state directory, where node resolves its packages. A changed
    # lock file means a new install; a changed script means a restart.
    if ! cmp -s "$source/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules" ]; then
        command -v npm >/dev/null || apt_install nodejs npm
        log "installing oidc-provider (npm ci, into $dir)"
        cp "$source/package.json" "$source/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund >"$dir/npm.log" 2>&1) \
            || die "npm ci failed; see $dir/npm.log"
    fi
    if ! cmp -s "$source/oidc-provider.mjs" "$dir/oidc-provider.mjs"; then
        stop_pidfile "$dir/oidc-provider.pid" "the test OIDC provider"
        cp "$source/oidc-provider.mjs" "$dir/"
    fi
    http_answers "$TENANTRY_TEST_OIDC_ISSUER/.well-known/openid-configuration" && return 0
    log "starting the test OIDC provider on $TENANTRY_TEST_OIDC_ISSUER"
    (cd "$dir" && start_detached "$dir/oidc-provider.log" "$dir/oidc-provider.pid" \
        env OIDC_PORT="$OIDC_PORT" node oidc-provider.mjs)
    wait_until "OIDC provider" 30 http_answers \
        "$TENANTRY_TEST_OIDC_ISSUER/.well-known/openid-configuration" \
        || die "the OIDC provider did not start; see $dir/oidc-provider.log"
}

# The SAML IdP of the SSO tests: pysaml2 (pinned, from PyPI, in a venv under state/saml-idp/)
# running deploy/local/idp/saml_idp.py on 127.0.0.1:$SAML_IDP_PORT, signing with Debian's
# xmlsec1 and a key pair made here with openssl (plus a second, untrusted one for forged
# responses). Exports TENANTRY_TEST_SAML_IDP_URL.
ensure_saml_idp() {
    export TENANTRY_TEST_SAML_IDP_URL="http://127.0.0.1:$SAML_IDP_PORT"
    local source="$REPO_ROOT/deploy/local/idp/saml_idp.py" dir="$STATE_DIR/saml-idp"
    local venv="$dir/venv"
    mkdir -p "$dir"
    command -v xmlsec1 >/dev/null || apt_install xmlsec1
    if ! "$venv/bin/python" -c "import saml2" 2>/dev/null; then
        python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv
        log "installing pysaml2 $PYSAML2_VERSION (pip, into $venv)"
        rm -rf "$venv"
        python3 -m venv "$venv" >"$dir/pip.log" 2>&1 \
            && "$venv/bin/pip" install --quiet "pysaml2==$PYSAML2_VERSION" >>"$dir/pip.log" 2>&1 \
            || die "cannot install pysaml2; see $dir/pip.log"
    fi
    local name
    for name in idp foreign; do
        signing_pair "$dir/$name" "tenantry-test-$name"
    done
    if ! cmp -s "$source" "$dir/saml_idp.py"; then
        stop_pidfile "$dir/saml-idp.pid" "the test SAML IdP"
        cp "$source" "$dir/saml_idp.py"
    fi
    http_answers "$TENANTRY_TEST_SAML_IDP_URL/metadata" && return 0
    log "starting the test SAML IdP on $TENANTRY_TEST_SAML_IDP_URL"
    start_detached "$dir/saml-idp.log" "$dir/saml-idp.pid" env SAML_IDP_PORT="$SAML_IDP_PORT" \
        SAML_IDP_STATE="$dir" "$venv/bin/python" "$dir/saml_idp.py"
    wait_until "SAML IdP" 30 http_answers "$TENANTRY_TEST_SAML_IDP_URL/metadata" \
        || die "the SAML IdP did not start; see $dir/saml-idp.log"
}

# signing_pair STEM CN: a test IdP's signing key and its ten-year self-signed certificate
# (RSA-2048; STEM.key, STEM.crt), made once.
signing_pair() {
    [ -f "$1.crt" ] && return 0
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.crt" >/dev/null 2>&1 \
        || die "openssl could not make the test IdP key $1.key"
}

# The second SAML IdP of the SSO tests: npm samlify (pinned in deploy/local/idp/package-lock.json,
# installed with the OIDC provider) running deploy/local/idp/samlify-idp.mjs on
# 127.0.0.1:$SAMLIFY_IDP_PORT, with key pairs made here with openssl. Exports
# TENANTRY_TEST_SAMLIFY_IDP_URL. Needs ensure_oidc_provider first (the npm install).
ensure_samlify_idp() {
    export TENANTRY_TEST_SAMLIFY_IDP_URL="http://127.0.0.1:$SAMLIFY_IDP_PORT"
    local source="$REPO_ROOT/deploy/local/idp/samlify-idp.mjs" dir="$STATE_DIR/idp"
    local name
    for name in idp foreign; do
        signing_pair "$dir/samlify-$name" "tenantry-samlify-$name"
    done
    if ! cmp -s "$source" "$dir/samlify-idp.mjs"; then
        stop_pidfile "$dir/samlify-idp.pid" "the samlify SAML IdP"
        cp "$source" "$dir/"
    fi
    http_answers "$TENANTRY_TEST_SAMLIFY_IDP_URL/metadata" && return 0
    log "starting the samlify SAML IdP on $TENANTRY_TEST_SAMLIFY_IDP_URL"
    (cd "$dir" && start_detached "$dir/samlify-idp.log" "$dir/samlify-idp.pid" \
        env SAMLIFY_IDP_PORT="$SAMLIFY_IDP_PORT" SAMLIFY_IDP_STATE="$dir" node samlify-idp.mjs)
    wait_until "samlify IdP" 30 http_answers "$TENANTRY_TEST_SAMLIFY_IDP_URL/metadata" \
        || die "the samlify IdP did not start; see $dir/samlify-idp.log"
}

# wait_until NAME SECONDS COMMAND...: polls COMMAND (a readiness probe, not a sleep-for-sync).
wait_until() {
    local name=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        [ $SECONDS -ge $deadline ] && { echo "$name not ready after ${seconds}s" >&2; return 1; }
        sleep 0.2
    done
}

# Stops the process in pid file $1 (if it is still running) and removes the file.
stop_pidfile() {
    local file=$1 name=$2
    [ -f "$file" ] || return 0
    local pid
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping $name (pid $pid)"
        kill "$pid"
        wait_until "$name to stop" 30 bash -c "! kill -0 $pid 2>/dev/null" || kill -9 "$pid"
    fi
    rm -f "$file"
}

# URL of database $2 on the server of admin URL $1.
database_url() {
    local admin=$1 database=$2
    echo "${admin%/*}/$database"
}

# Contract fuzzing of both planes' OpenAPI documents (tests/api/contract.rs, schemathesis), and
# the Python client generated from the data plane's document (tests/api/python_client.rs,
# openapi-python-client; the generated code needs httpx and attrs, which the generator itself
# depends on, so the same venv runs it), and scim2-tester, the SCIM 2.0 compliance checker
# (tests/api/scim/compliance.rs, with its httpx2 engine). All pinned, from PyPI, in one venv
# under state/api-tools/. Exports TENANTRY_TEST_SCHEMATHESIS,
# TENANTRY_TEST_OPENAPI_PYTHON_CLIENT and TENANTRY_TEST_API_PYTHON.
ensure_api_tools() {
    local dir="$STATE_DIR/api-tools"
    local venv="$dir/venv"
    mkdir -p "$dir"
    # The installed versions from the packages' metadata: one Python start, neither tool loaded.
    local installed
    installed=$("$venv/bin/python" -c 'from importlib.metadata import version
print(version("schemathesis"), version("openapi-python-client"), version("scim2-tester"))' \
        2>/dev/null) || true
    local wanted="$SCHEMATHESIS_VERSION $OPENAPI_PYTHON_CLIENT_VERSION $SCIM2_TESTER_VERSION"
    if [ "$installed" != "$wanted" ]; then
        python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv
        log "installing schemathesis $SCHEMATHESIS_VERSION, openapi-python-client \
$OPENAPI_PYTHON_CLIENT_VERSION and scim2-tester $SCIM2_TESTER_VERSION (pip, into $venv)"
        rm -rf "$venv"
        python3 -m venv "$venv" >"$dir/pip.log" 2>&1 \
            && "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" \
                "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION" \
                "scim2-tester[httpx2]==$SCIM2_TESTER_VERSION" >>"$dir/pip.log" 2>&1 \
            || die "cannot install the API tools; see $dir/pip.log"
    fi
    export TENANTRY_TEST_SCHEMATHESIS="$venv/bin/schemathesis"
    export TENANTRY_TEST_OPENAPI_PYTHON_CLIENT="$venv/bin/openapi-python-client"
    export TENANTRY_TEST_API_PYTHON="$venv/bin/python"
}

# The console's browser tests: Debian's Chromium (apt) driven by Playwright for Python
# (pinned, from PyPI, in a venv under state/browser/). Nothing downloads a browser: the tests
# launch /usr/bin/chromium. Exports TENANTRY_TEST_BROWSER_PYTHON and TENANTRY_TEST_CHROMIUM.
ensure_browser() {
    local dir="$STATE_DIR/browser"
    local venv="$dir/venv"
    mkdir -p "$dir"
    apt_install chromium
    local installed
    installed=$("$venv/bin/python" -c 'from importlib.metadata import version
print(version("playwright"))' 2>/dev/null) || true
    if [ "$installed" != "$PLAYWRIGHT_VERSION" ]; then
        python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv
        log "installing Playwright $PLAYWRIGHT_VERSION for Python (pip, into $venv)"
        rm -rf "$venv"
        python3 -m venv "$venv" >"$dir/pip.log" 2>&1 \
            && "$venv/bin/pip" install --quiet "playwright==$PLAYWRIGHT_VERSION" >>"$dir/pip.log" 2>&1 \
            || die "cannot install Playwright; see $dir/pip.log"
    fi
    export TENANTRY_TEST_BROWSER_PYTHON="$venv/bin/python"
    export TENANTRY_TEST_CHROMIUM=/usr/bin/chromium
}

# The OpenTelemetry Python SDK with its OTLP/HTTP exporter (pinned, from PyPI, in a venv
# under state/otel/): the tests send telemetry with it as an unmodified agent would.
# Exports TENANTRY_TEST_OTEL_PYTHON.
ensure_otel_python() {
    local dir="$STATE_DIR/otel"
    local venv="$dir/venv"
    mkdir -p "$dir"
    if ! "$venv/bin/python" -c "import opentelemetry.exporter.otlp.proto.http" 2>/dev/null; then
        python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3 python3-venv
        log "installing the OpenTelemetry Python SDK $OTEL_PYTHON_VERSION (pip, into $venv)"
        rm -rf "$venv"
        python3 -m venv "$venv" >"$dir/pip.log" 2>&1 \
            && "$venv/bin/pip" install --quiet "opentelemetry-sdk==$OTEL_PYTHON_VERSION" \
                "opentelemetry-exporter-otlp-proto-http==$OTEL_PYTHON_VERSION" >>"$dir/pip.log" 2>&1 \
            || die "cannot install the OpenTelemetry SDK; see $dir/pip.log"
    fi
    export TENANTRY_TEST_OTEL_PYTHON="$venv/bin/python"
}
