//! Tenantry's foundation benchmark. Prints figures beside the floor they are compared with,
//! measured in the same run on the same machine:
//!
//! 1. Provisioning: median time per tenant through the control plane's own code path, beside
//!    the median time of applying the same role + schema + template SQL directly in one
//!    transaction. Then `templates migrate` of one new migration across all tenants.
//! 2. Tenant-routed reads: requests/s and p50/p99 of `GET /v1/tenant` (tenant resolution,
//!    cached registry, `SET LOCAL` role + search_path pipelined with a primary-key select)
//!    spread uniformly over every tenant, beside a bare actix-web handler running the same
//!    schema-qualified select on a plain pooled connection with no tenant context (the floor,
//!    one pool shared by its workers), the same handler on a pool per worker, and a second
//!    node whose pools go through the local PgBouncer in transaction mode.
//!
//! 3. Identity: password sign-ins per second (argon2id-bound), and requests/s of the same
//!    tenant-routed read with a bearer token (signature, claims and session liveness checked)
//!    beside the same read without one.
//!
//! 4. Records: requests/s of an authorised `GET` of one record (bearer token, cached
//!    permission check, tenant context, primary-key select) beside a bare handler selecting the
//!    same row schema-qualified on a plain pooled connection, and beside that handler on a pool
//!    per worker, with our tenant transaction, and with a session-level switch (a what-if).
//!
//! 5. Authorisation: a permission check on a warm cache in isolation (moka lookup of the
//!    user's effective permissions among 100 000 cached users, then pattern matching), in ns.
//!
//! 6. Telemetry: OTLP/JSON and NDJSON ingestion events/s end to end (counted in ClickHouse)
//!    beside RowBinary inserts of the same rows straight into ClickHouse.
//!
//! 7. Audit: the p50 of an audited write beside the same write on a node with auditing off,
//!    with one client and with `--connections`.
//!
//! 8. Sign-in flood (`signin-flood`, not in the default set): the node's peak resident memory
//!    and other tenants' read p99 while `--flood` clients send wrong-password sign-ins at one
//!    tenant, beside the same reads on the idle node (see `signin_flood.rs`).
//!
//! 9. Fleet (`fleet`, not in the default set): provisioning, roll-out, reads, backend memory
//!    and a large tenant's move over `--fleet-tenants` tenants on two clusters (`fleet.rs`).
//!
//! Run: `cargo run --release -p tenantry-bench --bin tenantry-bench` with the test Postgres
//! (see deploy/local/test.sh); `--sections` picks a subset. Results and commands are recorded
//! in docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod console;
mod fleet;
mod signin_flood;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use control_plane::provisioning::ProvisionOptions;
use control_plane::templates::{migrate_all, RolloutOptions};
use data_plane::tokens::access;
use data_plane::tokens::verified::VerifiedTokens;
use refinery::Migration;
use shared::template::Template;
use shared::tenant::quote_ident;
use shared::tenant_context::{TenantDb, TenantScope};
use tenantry_tests::client::NewKey;
use tenantry_tests::{Client, TestApp, TestOptions};
use tokio_postgres::types::Type;

#[derive(Parser)]
struct Args {
    /// Tenants provisioned through the control plane (the first `--timed` are timed).
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Tenants whose provisioning is timed, and floor schemas created.
    #[arg(long, default_value_t = 200)]
    timed: usize,
    /// Seconds per HTTP measurement round.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Rounds of (floor, ours), alternating.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Postgres pool size of both HTTP servers.
    #[arg(long, default_value_t = 16)]
    pool: usize,
    /// Which parts to run (reads needs provisioning's tenants).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "provisioning,rollout,reads,identity,records,authz,telemetry,audit"
    )]
    sections: Vec<Section>,
    /// Tenants with a signed-in user for the identity section.
    #[arg(long, default_value_t = 20)]
    identity_tenants: usize,
    /// Concurrent wrong-password sign-in clients of the signin-flood section.
    #[arg(long, default_value_t = 1000)]
    flood: usize,
    /// Other tenants' reads per second during the signin-flood section (open loop).
    #[arg(long, default_value_t = 200)]
    flood_read_rate: u32,
    /// Resident memory (MiB) at which the signin-flood section stops the run.
    #[arg(long, default_value_t = 12_288)]
    rss_limit_mib: u64,
    /// Whether the signin-flood clients wait `Retry-After` when refused.
    #[arg(long)]
    flood_honours_retry_after: bool,
    /// The data plane's `password_hash_concurrency` (default: the number of cores less one).
    #[arg(long)]
    hash_concurrency: Option<usize>,
    /// The data plane's `credential_refusal_hold_ms` (0: refusals answered at once).
    #[arg(long, default_value_t = data_plane::rate_limit::hold::DEFAULT_HOLD.as_millis() as u64)]
    refusal_hold_ms: u64,
    /// Tenants of the fleet section, placed alternately on two clusters.
    #[arg(long, default_value_t = 10_000)]
    fleet_tenants: usize,
    /// The data plane's `data_connection_max_uses` (0: connections are never closed).
    #[arg(long, default_value_t = 0)]
    connection_max_uses: usize,
    /// The data plane's `data_affinity_groups` (its default unless given).
    #[arg(long, default_value_t = data_plane::config::DEFAULT_AFFINITY_GROUPS)]
    affinity_groups: usize,
    /// Records of the tenant the fleet section moves.
    #[arg(long, default_value_t = 100_000)]
    move_records: usize,
    /// Move that tenant with no writer during the move (by default one writes as fast as it
    /// can until the fence stops it).
    #[arg(long)]
    move_without_writer: bool,
    /// Both planes' events go to the local two-shard ClickHouse cluster (`tenantry_events`,
    /// started by deploy/local/test.sh) instead of one server.
    #[arg(long)]
    clickhouse_cluster: bool,
    /// Audit events of the console section's tenant.
    #[arg(long, default_value_t = 100_000)]
    console_events: usize,
    /// Tenants in the catalog for the console section's operator tenant list.
    #[arg(long, default_value_t = 10_000)]
    console_tenants: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    Provisioning,
    Rollout,
    Reads,
    Identity,
    Records,
    Authz,
    Telemetry,
    Audit,
    SigninFlood,
    Fleet,
    Console,
}

/// The password of every bench tenant's owner.
const PASSWORD: &str = "bench passphrase long enough";

/// A tenant `slug` whose owner `email` is active and signed in, its rate limits lifted;
/// returns the tenant, the owner's client (for setting up, through the typed client) and
/// their access token (for the measured requests, which are built once beforehand so the
/// load generator adds nothing per request; the floor's requests are built the same way).
async fn signed_in_owner(
    app: &TestApp,
    slug: &str,
    email: &str,
) -> (shared::tenant::Tenant, Client, String) {
    let tenant = app.tenant_with_active_admin(slug, email, PASSWORD).await;
    app.raise_rate_limits(slug).await;
    let owner = app.signed_in(slug, email, PASSWORD).await;
    let access = owner.access_token().await.unwrap().unwrap();
    (tenant, owner, access.expose().to_owned())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let app = TestApp::spawn_with(TestOptions {
        data_pool_size: args.pool,
        connection_max_uses: args.connection_max_uses,
        affinity_groups: args.affinity_groups,
        control_pool_size: 8,
        data_workers: 2,
        // The benchmark measures throughput, not the limits: the credential limit per client
        // address is lifted here and each tenant's rate quota where it is created. The limit
        // check itself still runs on every request.
        rate_limit: data_plane::rate_limit::RateLimitSettings {
            auth_per_minute: 100_000_000,
            auth_burst: 1_000_000,
            refusal_hold: Duration::from_millis(args.refusal_hold_ms),
            ..data_plane::rate_limit::RateLimitSettings::default()
        },
        // The production batching interval (tests use a shorter one).
        event_flush_interval: Duration::from_millis(200),
        password_hashing: args.hash_concurrency.map_or_else(
            || TestOptions::default().password_hashing,
            data_plane::identity::hash_gate::HashLimits::with_concurrency,
        ),
        clickhouse_cluster: args.clickhouse_cluster.then(tenantry_tests::local_cluster),
        ..TestOptions::default()
    })
    .await;
    println!("# Tenantry foundation benchmark");
    println!(
        "database {} · {} tenants · {} timed · ClickHouse {}",
        app.database_url,
        args.tenants,
        args.timed,
        match &app.options.clickhouse_cluster {
            Some(cluster) => format!(
                "cluster {} ({} shards)",
                cluster.name,
                cluster.shard_urls.len()
            ),
            None => "one server".to_owned(),
        }
    );

    let run = |section| args.sections.contains(&section);
    if run(Section::Provisioning) || run(Section::Reads) {
        provisioning(&app, &args).await;
    }
    if run(Section::Rollout) {
        template_rollout(&app).await;
    }
    if run(Section::Reads) {
        let slugs: Vec<String> = (0..args.tenants)
            .map(|index| format!("bench-{index:05}"))
            .collect();
        settle(&app.database_url).await;
        reads(&app, &args, &slugs).await;
    }
    if run(Section::Identity) {
        identity(&app, &args).await;
    }
    if run(Section::Records) {
        records(&app, &args).await;
    }
    if run(Section::Authz) {
        permission_checks().await;
    }
    if run(Section::Telemetry) {
        telemetry(&app, &args).await;
    }
    if run(Section::Audit) {
        audit_overhead(&app, &args).await;
    }
    if run(Section::Fleet) {
        fleet::fleet(&app, &args).await;
    }
    if run(Section::Console) {
        console::console(&app, &args).await;
    }
    if run(Section::SigninFlood) {
        let flood = signin_flood::FloodArgs {
            clients: args.flood,
            read_rate: args.flood_read_rate,
            seconds: args.seconds,
            rss_limit_mib: args.rss_limit_mib,
            honour_retry_after: args.flood_honours_retry_after,
        };
        signin_flood::signin_flood(&app, &flood, PASSWORD).await;
    }
    drop_event_databases(&app).await;
}

/// Drops this run's ClickHouse database on every server. A telemetry run leaves millions of
/// rows there, and their background merges would take ClickHouse's CPU from the next run for
/// minutes. (The run's Postgres database and roles are small; `deploy/local/test.sh` removes
/// them with every other leftover.)
async fn drop_event_databases(app: &TestApp) {
    let events = &app.control.config.events;
    for storage in events.storage() {
        let dropped = storage
            .client
            .query(&format!(
                "DROP DATABASE IF EXISTS {}",
                events.clickhouse_database
            ))
            .execute()
            .await;
        if let Err(error) = dropped {
            eprintln!(
                "could not drop ClickHouse database {}: {error}",
                events.clickhouse_database
            );
        }
    }
}

/// An authorised record read against the floor, over `identity_tenants` tenants (one owner and
/// one record each).
async fn records(app: &TestApp, args: &Args) {
    println!("\n## Records over {} tenants", args.identity_tenants);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .unwrap();
    let mut ours = Vec::new();
    let mut targets = Vec::new();
    let mut scopes = HashMap::new();
    for index in 0..args.identity_tenants {
        let slug = format!("rec-{index:04}");
        let email = format!("owner@{slug}.example");
        let (tenant, owner, access) = signed_in_owner(app, &slug, &email).await;
        let created = owner
            .records("notes")
            .create(&serde_json::json!({"title": "bench", "body": "a record of modest size", "n": index}))
            .await
            .unwrap();
        let id = created.id.to_string();
        ours.push(
            http.get(format!(
                "{}/v1/collections/notes/records/{id}",
                app.data_url
            ))
            .header("X-Tenant", &slug)
            .bearer_auth(&access)
            .build()
            .unwrap(),
        );
        let schema = tenant.schema.as_str().to_owned();
        scopes.insert(schema.clone(), TenantScope::for_tenant(&tenant));
        targets.push((schema, id));
    }
    let (floor_url, floor_server) = start_floor_server(app, args.pool, scopes).await;
    let on_floor = |route: &str| -> Arc<Vec<reqwest::Request>> {
        Arc::new(
            targets
                .iter()
                .map(|(schema, id)| {
                    http.get(format!("{floor_url}/{route}/{schema}/{id}"))
                        .build()
                        .unwrap()
                })
                .collect(),
        )
    };
    let paths = [
        on_floor("floor-record"),
        on_floor("floor-worker-record"),
        on_floor("floor-tenant-record"),
        Arc::new(ours),
        on_floor("floor-session-record"),
    ];
    let names = [
        "floor: bare handler, schema-qualified select by id, one shared pool",
        "floor handler on a pool per HTTP worker",
        "per-worker floor + tenant transaction (BEGIN, SET LOCAL role and search_path, COMMIT)",
        "GET /v1/collections/notes/records/{id}: token, permission, tenant context, select",
        "what-if: per-worker floor + session-level SET ROLE and search_path, no transaction",
    ];
    let ratios = measure_paths(&http, &paths, &names, args).await;
    print_ratio("authorised record GET/floor", &ratios[3], "(goal >= 60%)");
    print_ratio("per-worker floor/floor", &ratios[1], "");
    let to_worker_floor = |path: usize| divide(&ratios[path], &ratios[1]);
    print_ratio(
        "authorised record GET/per-worker floor",
        &to_worker_floor(3),
        "",
    );
    print_ratio(
        "tenant transaction alone/per-worker floor",
        &to_worker_floor(2),
        "",
    );
    print_ratio(
        "what-if session-level switch/per-worker floor",
        &to_worker_floor(4),
        "",
    );
    floor_server.stop(false).await;
}

/// Warms up `paths` (the first is the floor), then measures them in `args.rounds` rounds,
/// printing a table row per path and round; returns each path's req/s ratio to the floor per
/// round.
async fn measure_paths(
    http: &reqwest::Client,
    paths: &[Arc<Vec<reqwest::Request>>],
    names: &[&str],
    args: &Args,
) -> Vec<Vec<f64>> {
    // Every target once or more through each path (registry and permission caches, backends'
    // catalog caches) before anything is counted.
    for path in paths {
        load(http, path.clone(), args.connections, 2).await;
    }
    println!("| round | path | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|");
    let mut ratios = vec![Vec::new(); paths.len()];
    for round in 1..=args.rounds {
        let mut measured = compare_all(http, paths, args.connections, args.seconds).await;
        for (name, measured) in names.iter().zip(measured.iter_mut()) {
            println!(
                "| {round} | {name} | {:.0} | {:.2} | {:.2} | {} |",
                measured.rps(),
                measured.percentile(0.50),
                measured.percentile(0.99),
                measured.errors
            );
        }
        let floor = measured[0].rps();
        for (ratios, measured) in ratios.iter_mut().zip(&measured) {
            ratios.push(measured.rps() / floor);
        }
    }
    ratios
}

/// Per-round quotients of two paths' ratios to the same floor: their ratio to each other.
fn divide(numerators: &[f64], denominators: &[f64]) -> Vec<f64> {
    numerators
        .iter()
        .zip(denominators)
        .map(|(numerator, denominator)| numerator / denominator)
        .collect()
}

/// Prints per-round req/s ratios and their mean.
fn print_ratio(what: &str, ratios: &[f64], goal: &str) {
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    println!(
        "ratio {what} req/s per round: {ratios:.2?}; mean {:.0}% {goal}",
        mean * 100.0
    );
}

/// The guard's check on a warm cache: one moka lookup keyed by (tenant, user), then matching
/// the required permission against the admin role's patterns and a conditional grant.
async fn permission_checks() {
    use data_plane::authz::cache::{EffectivePermissions, PermissionCache};
    const USERS: u32 = 100_000;
    const CHECKS: u32 = 1_000_000;
    println!("\n## Authorisation: warm permission checks");
    let admin = control_plane::roles::BUILT_IN_ROLES
        .iter()
        .find(|role| role.name == "admin")
        .unwrap();
    let office = serde_json::json!({"ip_ranges": ["10.0.0.0/8"], "time_window": {"start": "08:00", "end": "18:00"}});
    let cache = PermissionCache::new(Duration::from_secs(3600), u64::from(USERS) * 2);
    let tenant = uuid::Uuid::new_v4();
    let users: Vec<uuid::Uuid> = (0..USERS).map(|_| uuid::Uuid::new_v4()).collect();
    for user in &users {
        let grants = admin
            .permissions
            .iter()
            .map(|pattern| (None, (*pattern).to_owned()))
            .chain([(Some(office.clone()), "billing:manage".to_owned())]);
        cache
            .get_or_load(tenant, *user, async {
                Ok::<_, ()>(EffectivePermissions::from_grants(grants))
            })
            .await
            .unwrap();
    }
    let ip = Some("192.0.2.7".parse().unwrap());
    let now = time::OffsetDateTime::now_utc();
    for (label, permission, expected) in [
        (
            "allowed (records.notes:read, 8th pattern)",
            "records.notes:read",
            true,
        ),
        (
            "refused (every pattern and the condition tried)",
            "billing:read",
            false,
        ),
    ] {
        let started = Instant::now();
        for index in 0..CHECKS {
            let user = users[index as usize % users.len()];
            let permissions = cache.get(tenant, user).await.unwrap();
            assert_eq!(permissions.allows(permission, ip, now), expected);
        }
        let per_check = started.elapsed() / CHECKS;
        println!(
            "permission check, warm cache of {USERS} users, {label}: {} ns (goal < 1000 ns)",
            per_check.as_nanos()
        );
    }
    // One user checked over and over (the entry stays in the CPU's caches).
    let started = Instant::now();
    for _ in 0..CHECKS {
        let permissions = cache.get(tenant, users[0]).await.unwrap();
        assert!(permissions.allows("records.notes:read", ip, now));
    }
    println!(
        "permission check, one user's entry hot, allowed: {} ns (goal < 1000 ns)",
        (started.elapsed() / CHECKS).as_nanos()
    );
    // The two halves: the moka lookup alone, and the matching alone on one held entry.
    let started = Instant::now();
    for index in 0..CHECKS {
        let user = users[index as usize % users.len()];
        std::hint::black_box(cache.get(tenant, user).await);
    }
    let lookup = started.elapsed() / CHECKS;
    let held = cache.get(tenant, users[0]).await.unwrap();
    let started = Instant::now();
    for _ in 0..CHECKS {
        std::hint::black_box(held.allows(std::hint::black_box("billing:read"), ip, now));
    }
    let matching = started.elapsed() / CHECKS;
    println!(
        "of which: moka lookup {} ns, matching (refused case) {} ns",
        lookup.as_nanos(),
        matching.as_nanos()
    );
}

async fn provisioning(app: &TestApp, args: &Args) {
    println!("\n## Provisioning");
    let mut ours = Vec::new();
    for index in 0..args.tenants {
        let slug = format!("bench-{index:05}");
        let started = Instant::now();
        app.create_tenant_with(&slug, ProvisionOptions::default())
            .await
            .unwrap();
        if index < args.timed {
            ours.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }

    // The floor: role + schema + the same template SQL, as one transaction per tenant.
    let template_sql = floor_template_sql();
    let db = app.superuser().await;
    let mut floor = Vec::new();
    for index in 0..args.timed {
        let role = format!("{}_floor_{index}", app.role_prefix.as_str());
        let sql = floor_provisioning(&role, &format!("floor_{index}"), &template_sql);
        let started = Instant::now();
        db.batch_execute(&sql).await.unwrap();
        floor.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let (ours, floor) = (median(&mut ours), median(&mut floor));
    println!("| path | median ms/tenant |\n|---|---|");
    println!("| control plane (catalog row, role+schema, refinery, data key, seed, activate) | {ours:.1} |");
    println!("| floor: role+schema+template SQL in one transaction | {floor:.1} |");
    println!("ratio ours/floor: {:.2}x (goal <= 1.5x)", ours / floor);
}

async fn template_rollout(app: &TestApp) {
    println!("\n## templates migrate");
    let extended = Template::default_template().with_extra(vec![Migration::unapplied(
        "V100__bench_notes",
        "CREATE TABLE bench_notes (id bigint PRIMARY KEY, body text NOT NULL)",
    )
    .unwrap()]);
    let control = app.control.with_template(extended);
    for concurrency in [4] {
        let started = Instant::now();
        let report = migrate_all(
            &control,
            RolloutOptions {
                concurrency,
                canary: None,
            },
            |_| {},
        )
        .await
        .unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "one new migration over {} tenants, concurrency {concurrency}: {elapsed:.1} s ({:.1} ms/tenant), {} failed",
            report.behind,
            elapsed * 1000.0 / report.behind.max(1) as f64,
            report.failed.len()
        );
    }
}

/// The default template's SQL as a new tenant gets it: its baseline, then every later
/// migration in order (without refinery's history). What the provisioning floor runs.
fn floor_template_sql() -> String {
    let template = Template::default_template();
    let baseline = template.baseline();
    let after = baseline.map_or(0, |baseline| baseline.version);
    baseline
        .map(|baseline| baseline.sql)
        .into_iter()
        .chain(
            template
                .migrations()
                .iter()
                .filter(|migration| migration.version() > after)
                .filter_map(|migration| migration.sql()),
        )
        .collect::<Vec<_>>()
        .join(";\n")
}

/// The provisioning floor for one tenant: role, schema and `template_sql` in one transaction.
fn floor_provisioning(role: &str, schema: &str, template_sql: &str) -> String {
    let (role, schema) = (quote_ident(role), quote_ident(schema));
    format!(
        "BEGIN; CREATE ROLE {role} NOLOGIN NOINHERIT; CREATE SCHEMA {schema} AUTHORIZATION {role};
         SET LOCAL ROLE {role}; SET LOCAL search_path TO {schema}; {template_sql}; COMMIT"
    )
}

/// Bulk DDL leaves the catalogs with stale statistics and autovacuum work; analyse them so
/// the read benchmark measures steady state (FIELD-NOTES: 1.3-2.5x noise otherwise). On the
/// server `url` reaches.
async fn settle(url: &str) {
    let db = TestApp::connect_to(url).await;
    for statement in [
        "VACUUM ANALYZE pg_catalog.pg_class",
        "VACUUM ANALYZE pg_catalog.pg_attribute",
        "ANALYZE",
    ] {
        db.batch_execute(statement).await.unwrap();
    }
}

struct Round {
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_us: Vec<u32>,
}

impl Round {
    fn absorb(&mut self, other: Round) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.seconds += other.seconds;
        self.latencies_us.extend(other.latencies_us);
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    fn percentile(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let index = ((self.latencies_us.len() as f64 * p) as usize)
            .min(self.latencies_us.len().saturating_sub(1));
        f64::from(self.latencies_us.get(index).copied().unwrap_or_default()) / 1000.0
    }
}

/// Measures `baseline` and `candidate` for `seconds` each in alternating one-second slices,
/// so a slow patch of the machine (other tenants of the host, a checkpoint) hits both alike.
async fn compare(
    http: &reqwest::Client,
    baseline: &Arc<Vec<reqwest::Request>>,
    candidate: &Arc<Vec<reqwest::Request>>,
    connections: usize,
    seconds: u64,
) -> (Round, Round) {
    let mut rounds = (
        load(http, baseline.clone(), connections, 1).await,
        load(http, candidate.clone(), connections, 1).await,
    );
    for _ in 1..seconds {
        rounds
            .0
            .absorb(load(http, baseline.clone(), connections, 1).await);
        rounds
            .1
            .absorb(load(http, candidate.clone(), connections, 1).await);
    }
    rounds
}

/// Like [`compare`] for any number of paths, in one-second slices taken in turn.
async fn compare_all(
    http: &reqwest::Client,
    paths: &[Arc<Vec<reqwest::Request>>],
    connections: usize,
    seconds: u64,
) -> Vec<Round> {
    let mut rounds = Vec::new();
    for path in paths {
        rounds.push(load(http, path.clone(), connections, 1).await);
    }
    for _ in 1..seconds {
        for (round, path) in rounds.iter_mut().zip(paths) {
            round.absorb(load(http, path.clone(), connections, 1).await);
        }
    }
    rounds
}

/// Drives `urls` (one per request, cycled) with `connections` clients for `seconds`.
async fn load(
    http: &reqwest::Client,
    requests: Arc<Vec<reqwest::Request>>,
    connections: usize,
    seconds: u64,
) -> Round {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|worker| {
            let http = http.clone();
            let requests = requests.clone();
            tokio::spawn(async move {
                let (mut done, mut errors, mut latencies) =
                    (0usize, 0usize, Vec::with_capacity(100_000));
                let mut next = worker * 7919;
                while Instant::now() < deadline {
                    let request = requests[next % requests.len()].try_clone().unwrap();
                    next += 1;
                    let sent = Instant::now();
                    match http.execute(request).await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            done += 1;
                        }
                        _ => errors += 1,
                    }
                    latencies.push(sent.elapsed().as_micros() as u32);
                }
                (done, errors, latencies)
            })
        })
        .collect();
    let mut round = Round {
        requests: 0,
        errors: 0,
        seconds: 0.0,
        latencies_us: Vec::new(),
    };
    for task in tasks {
        let (done, errors, latencies) = task.await.unwrap();
        round.requests += done;
        round.errors += errors;
        round.latencies_us.extend(latencies);
    }
    round.seconds = started.elapsed().as_secs_f64();
    round
}

/// HTTP workers of the floor server, as of the data plane in this benchmark.
const FLOOR_WORKERS: usize = 2;

/// The bare server the data plane is compared with. Its routes:
/// - `/floor/{schema}` and `/floor-record/{schema}/{id}`: the floor, a bare handler running
///   the same select schema-qualified on a plain pooled connection (one pool shared by the
///   workers, as a bare actix-web app has it);
/// - `/floor-worker/…` and `/floor-worker-record/…`: the same handlers on a pool per HTTP
///   worker, as the data plane has it (see `TenantDb`), so what our code adds is told apart
///   from what the pool layout saves;
/// - `/floor-tenant-record/{schema}/{id}`: the per-worker floor through the data plane's
///   tenant transaction, for `scopes` (by schema name);
/// - `/floor-session-record/{schema}/{id}`: a what-if, see [`floor_session_record`].
///
/// Returns its URL and handle: stop it at the end of the section, which closes its
/// connections (Postgres's `max_connections` is 100 on the test machines).
async fn start_floor_server(
    app: &TestApp,
    pool_size: usize,
    scopes: HashMap<String, TenantScope>,
) -> (String, actix_web::dev::ServerHandle) {
    let new_pool = |size| {
        shared::db::pool(
            shared::db::pg_config(&app.database_url, None).unwrap(),
            size,
        )
        .unwrap()
    };
    let shared_pool = web::Data::new(new_pool(pool_size));
    let per_worker = pool_size.div_ceil(FLOOR_WORKERS);
    let worker_pools: Vec<_> = (0..FLOOR_WORKERS).map(|_| new_pool(per_worker)).collect();
    let session_pools: Vec<_> = (0..FLOOR_WORKERS).map(|_| new_pool(per_worker)).collect();
    let switches: HashMap<String, SessionSwitch> = scopes
        .iter()
        .map(|(schema, scope)| {
            let switch = format!(
                "SET ROLE {}; SET search_path TO {}",
                scope.role().quoted(),
                quote_ident(schema)
            );
            (schema.clone(), SessionSwitch(switch))
        })
        .collect();
    let switches = web::Data::new(switches);
    let scopes = web::Data::new(scopes);
    let started_workers = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let worker = started_workers.fetch_add(1, Ordering::Relaxed) % FLOOR_WORKERS;
        let worker_pool = worker_pools[worker].clone();
        App::new()
            .app_data(shared_pool.clone())
            .app_data(web::Data::new(WorkerPool(worker_pool.clone())))
            .app_data(web::Data::new(TenantDb::new(worker_pool)))
            .app_data(web::Data::new(SessionPool(session_pools[worker].clone())))
            .app_data(scopes.clone())
            .app_data(switches.clone())
            .route("/floor/{schema}", web::get().to(floor_read))
            .route("/floor-worker/{schema}", web::get().to(floor_worker_read))
            .route("/floor-record/{schema}/{id}", web::get().to(floor_record))
            .route(
                "/floor-worker-record/{schema}/{id}",
                web::get().to(floor_worker_record),
            )
            .route(
                "/floor-tenant-record/{schema}/{id}",
                web::get().to(floor_tenant_record),
            )
            .route(
                "/floor-session-record/{schema}/{id}",
                web::get().to(floor_session_record),
            )
    })
    .listen(listener)
    .unwrap()
    .workers(FLOOR_WORKERS)
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, handle)
}

/// This worker's own pool on the floor server.
struct WorkerPool(deadpool_postgres::Pool);

/// The floor of a tenant-routed read: the tenant's profile row, schema-qualified, as JSON.
async fn floor_read(
    pool: web::Data<deadpool_postgres::Pool>,
    schema: web::Path<String>,
) -> HttpResponse {
    select_profile(&pool, &schema).await
}

/// [`floor_read`] on this worker's pool.
async fn floor_worker_read(pool: web::Data<WorkerPool>, schema: web::Path<String>) -> HttpResponse {
    select_profile(&pool.0, &schema).await
}

async fn select_profile(pool: &deadpool_postgres::Pool, schema: &str) -> HttpResponse {
    let client = pool.get().await.unwrap();
    let sql = format!(
        "SELECT display_name FROM {}.tenant_profile WHERE id = $1",
        quote_ident(schema)
    );
    let rows = client
        .query_typed(&sql, &[(&1i32, Type::INT4)])
        .await
        .unwrap();
    HttpResponse::Ok().json(serde_json::json!({ "display_name": rows[0].get::<_, String>(0) }))
}

/// The floor of a record read: the row by primary key, schema-qualified, as JSON.
async fn floor_record(
    pool: web::Data<deadpool_postgres::Pool>,
    path: web::Path<(String, uuid::Uuid)>,
) -> HttpResponse {
    let (schema, id) = path.into_inner();
    select_record(&pool, &schema, id).await
}

/// [`floor_record`] on this worker's pool.
async fn floor_worker_record(
    pool: web::Data<WorkerPool>,
    path: web::Path<(String, uuid::Uuid)>,
) -> HttpResponse {
    let (schema, id) = path.into_inner();
    select_record(&pool.0, &schema, id).await
}

async fn select_record(
    pool: &deadpool_postgres::Pool,
    schema: &str,
    id: uuid::Uuid,
) -> HttpResponse {
    let client = pool.get().await.unwrap();
    let sql = format!(
        "SELECT data, version, created_at, updated_at FROM {}.records WHERE id = $1",
        quote_ident(schema)
    );
    let rows = client
        .query_typed(&sql, &[(&id, Type::UUID)])
        .await
        .unwrap();
    record_json(id, &rows[0])
}

/// [`floor_worker_record`] through the data plane's tenant transaction (`BEGIN; SET LOCAL
/// ROLE …; SET LOCAL search_path …`, the select unqualified, `COMMIT`, pipelined): what the
/// tenant switch alone costs, without the data plane's middleware, authentication or
/// authorisation.
async fn floor_tenant_record(
    tenant_db: web::Data<TenantDb>,
    scopes: web::Data<HashMap<String, TenantScope>>,
    path: web::Path<(String, uuid::Uuid)>,
) -> HttpResponse {
    let (schema, id) = path.into_inner();
    let rows = tenant_db
        .query_once(
            &scopes[&schema],
            "SELECT data, version, created_at, updated_at FROM records WHERE id = $1",
            &[(&id, Type::UUID)],
        )
        .await
        .unwrap();
    record_json(id, &rows[0])
}

/// What-if, not our path: the tenant switch as session-level `SET ROLE` and `SET search_path`
/// pipelined with the select, without `BEGIN`/`COMMIT` (two messages instead of three, three
/// statements instead of five). The state stays on the connection, so a design using it must
/// switch on every checkout; see docs/benchmarks.md.
async fn floor_session_record(
    pool: web::Data<SessionPool>,
    switches: web::Data<HashMap<String, SessionSwitch>>,
    path: web::Path<(String, uuid::Uuid)>,
) -> HttpResponse {
    let (schema, id) = path.into_inner();
    let client = pool.0.get().await.unwrap();
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 1] = [(&id, Type::UUID)];
    let (switched, rows) = tokio::join!(
        client.batch_execute(&switches[&schema].0),
        client.query_typed(
            "SELECT data, version, created_at, updated_at FROM records WHERE id = $1",
            &params,
        )
    );
    switched.unwrap();
    record_json(id, &rows.unwrap()[0])
}

/// `SET ROLE …; SET search_path …` for one tenant.
struct SessionSwitch(String);

/// The what-if path's own connections: the state it leaves on them would break the others.
struct SessionPool(deadpool_postgres::Pool);

fn record_json(id: uuid::Uuid, row: &tokio_postgres::Row) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "id": id,
        "data": row.get::<_, serde_json::Value>(0),
        "version": row.get::<_, i64>(1),
        "created_at": row.get::<_, time::OffsetDateTime>(2).unix_timestamp(),
        "updated_at": row.get::<_, time::OffsetDateTime>(3).unix_timestamp(),
    }))
}

async fn reads(app: &TestApp, args: &Args, slugs: &[String]) {
    println!("\n## Tenant-routed reads over {} tenants", slugs.len());
    for slug in slugs {
        app.raise_rate_limits(slug).await;
    }
    let (floor_url, floor_server) = start_floor_server(app, args.pool, HashMap::new()).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .unwrap();
    let ours: Arc<Vec<reqwest::Request>> = Arc::new(
        slugs
            .iter()
            .map(|slug| {
                http.get(format!("{}/v1/tenant", app.data_url))
                    .header("X-Tenant", slug)
                    .build()
                    .unwrap()
            })
            .collect(),
    );
    let on_floor = |route: &str| -> Arc<Vec<reqwest::Request>> {
        Arc::new(
            slugs
                .iter()
                .map(|slug| {
                    let schema = format!("tenant_{}", slug.replace('-', "_"));
                    http.get(format!("{floor_url}/{route}/{schema}"))
                        .build()
                        .unwrap()
                })
                .collect(),
        )
    };
    // A second node like the first, its pools behind the local PgBouncer in transaction mode
    // (deploy/local/lib.sh: four server connections per database and role).
    let (_pooled_node, pooled_url) = app
        .spawn_data_node(&TestOptions {
            via_pgbouncer: true,
            ..app.options.clone()
        })
        .await;
    let behind_pgbouncer: Arc<Vec<reqwest::Request>> = Arc::new(
        ours.iter()
            .map(|request| {
                let mut request = request.try_clone().unwrap();
                *request.url_mut() = format!("{pooled_url}/v1/tenant").parse().unwrap();
                request
            })
            .collect(),
    );
    let paths = [
        on_floor("floor"),
        ours,
        on_floor("floor-worker"),
        behind_pgbouncer,
    ];
    let names = [
        "floor (bare handler, plain pooled query, one shared pool)",
        "data plane GET /v1/tenant",
        "floor handler on a pool per HTTP worker",
        "data plane GET /v1/tenant, its pools behind PgBouncer (transaction mode)",
    ];
    let ratios = measure_paths(&http, &paths, &names, args).await;
    print_ratio("ours/floor", &ratios[1], "(goal >= 70%)");
    print_ratio("per-worker floor/floor", &ratios[2], "");
    print_ratio("ours/per-worker floor", &divide(&ratios[1], &ratios[2]), "");
    print_ratio("ours behind PgBouncer/floor", &ratios[3], "");
    print_ratio(
        "ours behind PgBouncer/ours direct",
        &divide(&ratios[3], &ratios[1]),
        "",
    );
    floor_server.stop(false).await;
}

async fn identity(app: &TestApp, args: &Args) {
    println!("\n## Identity over {} tenants", args.identity_tenants);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .unwrap();
    let mut accounts = Vec::new();
    let mut tenants = Vec::new();
    for index in 0..args.identity_tenants {
        let slug = format!("auth-{index:04}");
        let email = format!("user@{slug}.example");
        tenants.push(app.tenant_with_active_admin(&slug, &email, PASSWORD).await);
        app.raise_rate_limits(&slug).await;
        accounts.push((slug, email));
    }
    let logins: Vec<reqwest::Request> = accounts
        .iter()
        .map(|(slug, email)| {
            http.post(format!("{}/v1/auth/login", app.data_url))
                .header("X-Tenant", slug)
                .json(&serde_json::json!({"email": email, "password": PASSWORD}))
                .build()
                .unwrap()
        })
        .collect();

    // Sign-ins: argon2id m=19 MiB, t=2, p=1 per attempt, on the blocking pool.
    let mut signed_in = load(&http, Arc::new(logins), args.connections, args.seconds).await;
    println!(
        "password sign-ins (argon2id m=19456 KiB, t=2, p=1): {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {} errors",
        signed_in.rps(),
        signed_in.percentile(0.50),
        signed_in.percentile(0.99),
        signed_in.errors
    );

    // A fresh session per tenant (the sign-ins above ended older ones: session limit).
    let mut with_token = Vec::new();
    let mut without_token = Vec::new();
    let mut access_tokens = Vec::new();
    for (slug, email) in &accounts {
        let user = app.signed_in(slug, email, PASSWORD).await;
        let access = user.access_token().await.unwrap().unwrap();
        let access = access.expose();
        access_tokens.push(access.to_owned());
        let read = || {
            http.get(format!("{}/v1/tenant", app.data_url))
                .header("X-Tenant", slug)
        };
        with_token.push(read().bearer_auth(access).build().unwrap());
        without_token.push(read().build().unwrap());
    }
    let (with_token, without_token) = (Arc::new(with_token), Arc::new(without_token));

    // Warm-up: registry, signing keys and session-liveness caches, backend catalog caches.
    load(&http, with_token.clone(), args.connections, 2).await;
    load(&http, without_token.clone(), args.connections, 2).await;
    println!("| round | path | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for round in 1..=args.rounds {
        let (mut plain, mut authed) = compare(
            &http,
            &without_token,
            &with_token,
            args.connections,
            args.seconds,
        )
        .await;
        for (name, measured) in [
            ("GET /v1/tenant, no token", &mut plain),
            (
                "GET /v1/tenant, bearer token verified + session checked",
                &mut authed,
            ),
        ] {
            println!(
                "| {round} | {name} | {:.0} | {:.2} | {:.2} | {} |",
                measured.rps(),
                measured.percentile(0.50),
                measured.percentile(0.99),
                measured.errors
            );
        }
        ratios.push(authed.rps() / plain.rps());
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    println!(
        "ratio authenticated/unauthenticated req/s per round: {ratios:.2?}; mean {:.0}% (goal >= 80%)",
        mean * 100.0
    );

    // The token check alone, in process: the full check (Ed25519 signature and claims) and
    // the per-node cache of accepted tokens (SHA-256 of the token, one moka lookup).
    const CHECKS: u32 = 20_000;
    let (tenant, token) = (&tenants[0], &access_tokens[0]);
    let keys = app
        .data
        .signing_keys
        .for_tenant(
            &app.data.tenant_db,
            &app.data.data_keys,
            &TenantScope::for_tenant(tenant),
        )
        .await
        .unwrap();
    let issuer = access::issuer(
        &app.data.config.public_scheme,
        tenant.slug.as_str(),
        &app.data.config.base_domain,
    );
    let now = app.data.clock.now();
    let started = Instant::now();
    for _ in 0..CHECKS {
        access::verify(&keys, token, tenant.id, &issuer, now).unwrap();
    }
    let full = started.elapsed() / CHECKS;
    let cache = VerifiedTokens::new(Duration::from_secs(900), 1_000);
    cache
        .verify(&keys, token, tenant.id, &issuer, now)
        .await
        .unwrap();
    let started = Instant::now();
    for _ in 0..CHECKS {
        cache
            .verify(&keys, token, tenant.id, &issuer, now)
            .await
            .unwrap();
    }
    let cached = started.elapsed() / CHECKS;
    println!(
        "access-token check in process: full (Ed25519 + claims) {:.1} us, cached {:.2} us",
        full.as_secs_f64() * 1e6,
        cached.as_secs_f64() * 1e6
    );
}

/// Telemetry ingestion end to end (HTTP → queue → batches → ClickHouse, counted in
/// ClickHouse) for OTLP/JSON and NDJSON, beside inserting the same rows straight into
/// ClickHouse over HTTP in RowBinary.
async fn telemetry(app: &TestApp, args: &Args) {
    use shared::events::rows::LogRow;
    const BATCH: usize = 1000;
    println!("\n## Telemetry ingestion");
    let slug = "tel-bench";
    let email = "owner@tel-bench.example";
    let (tenant, owner, _) = signed_in_owner(app, slug, email).await;
    app.operator_api()
        .tenants()
        .set_quotas(
            slug,
            &serde_json::json!({"events_per_day": 1_000_000_000_i64}),
        )
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .unwrap();
    let key = owner
        .api_keys()
        .create(&NewKey::new("bench", &["telemetry:write"]))
        .await
        .unwrap();
    let key = key.key.expose().to_owned();
    let tenant_id = tenant.id.to_string();
    let now_nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;

    let otlp_body = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bench"}}]},
        "scopeLogs": [{"logRecords": (0..BATCH).map(|index| serde_json::json!({
            "timeUnixNano": (now_nanos + index as u64).to_string(),
            "severityNumber": 9,
            "body": {"stringValue": format!("request {index} served")},
            "attributes": [{"key": "http.status", "value": {"intValue": "200"}}]
        })).collect::<Vec<_>>()}]
    }]})
    .to_string();
    let ndjson_body: String = (0..BATCH)
        .map(|index| {
            format!(
                "{{\"type\":\"log\",\"time\":\"2026-11-23T12:00:00Z\",\"service\":\"bench\",\
                 \"body\":\"request {index} served\",\"attributes\":{{\"http.status\":200}}}}\n"
            )
        })
        .collect();
    let count_logs = || async {
        app.clickhouse()
            .query("SELECT count() FROM telemetry_logs WHERE tenant_id = ?")
            .bind(&tenant_id)
            .fetch_one::<u64>()
            .await
            .unwrap()
    };
    // Ceiling: the best raw insert of the same rows this machine does: RowBinary `INSERT`s of
    // 100,000 rows each, straight into ClickHouse, from 1, 2 and 4 parallel streams (the best
    // of them), for `--seconds` each. On a cluster they go into the `Distributed` table with
    // the planes' own client settings (synchronous), like the ingestion's; one tenant's rows
    // all land on its one shard, as the bench tenant's do. Measured before the ingestion runs (an idle server),
    // between them and after them. The rows carry a tenant id of their own: every batch
    // repeats the same event ids, and the table's merges collapse them, which would make the
    // bench tenant's count shrink under the ingestion runs' feet.
    const CEILING_BATCH: u64 = 100_000;
    const CEILING_STREAMS: [usize; 3] = [1, 2, 4];
    let ceiling_tenant = uuid::Uuid::new_v4().to_string();
    let rows: Vec<LogRow> = (0..CEILING_BATCH)
        .map(|index| LogRow {
            tenant_id: ceiling_tenant.clone(),
            time: (now_nanos / 1_000_000_000) as u32,
            time_unix_nano: now_nanos + index,
            event_id: uuid::Uuid::now_v7().to_string(),
            service: "bench".to_owned(),
            severity: "info".to_owned(),
            body: format!("request {index} served"),
            trace_id: String::new(),
            span_id: String::new(),
            attributes: "{\"http.status\":200}".to_owned(),
        })
        .collect();
    let client = app.clickhouse();
    let rows = Arc::new(rows);
    // The best rate over the stream counts, and the count that gave it.
    let ceiling = || async {
        let mut best = (0.0, 0);
        for streams in CEILING_STREAMS {
            let started = Instant::now();
            let seconds = Duration::from_secs(args.seconds);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..streams {
                let (client, rows) = (client.clone(), rows.clone());
                tasks.spawn(async move {
                    let mut inserted = 0u64;
                    while started.elapsed() < seconds {
                        let mut insert = client.insert::<LogRow>("telemetry_logs").await.unwrap();
                        for row in rows.iter() {
                            insert.write(row).await.unwrap();
                        }
                        insert.end().await.unwrap();
                        inserted += CEILING_BATCH;
                    }
                    inserted
                });
            }
            let inserted: u64 = tasks.join_all().await.into_iter().sum();
            let rate = inserted as f64 / started.elapsed().as_secs_f64();
            if rate > best.0 {
                best = (rate, streams);
            }
        }
        best
    };
    // The server's own pace wanders (merges of what was just written, a cold start), so the
    // ceiling is sampled before each ingestion run and after the last, and the highest sample
    // is the reference: the ratios are the least flattering ones.
    let mut ceilings = vec![ceiling().await];
    println!(
        "| path | events | seconds | events/s | cores used by this process (node and load) / by \
         the rest of the machine (ClickHouse) | events per CPU-second of this process |\n\
         |---|---|---|---|---|---|"
    );
    let mut rates = Vec::new();
    for (name, path, content_type, body) in [
        (
            "OTLP/JSON `/v1/logs`",
            "/v1/logs",
            "application/json",
            &otlp_body,
        ),
        (
            "NDJSON `/v1/telemetry/events`",
            "/v1/telemetry/events",
            "application/x-ndjson",
            &ndjson_body,
        ),
    ] {
        if !rates.is_empty() {
            ceilings.push(ceiling().await);
        }
        let before = count_logs().await;
        let requests: Vec<reqwest::Request> = (0..1)
            .map(|_| {
                http.post(format!("{}{path}", app.data_url))
                    .header("X-Tenant", slug)
                    .header("X-API-Key", &key)
                    .header("Content-Type", content_type)
                    .body(body.clone())
                    .build()
                    .unwrap()
            })
            .collect();
        let started = Instant::now();
        let cpu_before = CpuSeconds::now();
        let round = load(&http, Arc::new(requests), 4, args.seconds).await;
        let sent = round.requests as u64 * BATCH as u64;
        loop {
            let stored = count_logs().await - before;
            if stored >= sent {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "only {stored} of {sent} events reached ClickHouse in 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = CpuSeconds::now().since(cpu_before);
        let rate = sent as f64 / seconds;
        rates.push(rate);
        println!(
            "| {name} | {sent} | {seconds:.1} | {rate:.0} | {:.2} / {:.2} | {:.0} |",
            cpu.process / seconds,
            (cpu.machine - cpu.process) / seconds,
            sent as f64 / cpu.process
        );
    }
    ceilings.push(ceiling().await);
    let ceiling_rate = ceilings.iter().map(|(rate, _)| *rate).fold(0.0, f64::max);
    println!(
        "| ceiling: RowBinary INSERTs of {CEILING_BATCH} rows straight into ClickHouse, best of {CEILING_STREAMS:?} parallel streams, best of {} samples ({}) | — | {} each | {ceiling_rate:.0} |",
        ceilings.len(),
        ceilings
            .iter()
            .map(|(rate, streams)| format!("{rate:.0} with {streams}"))
            .collect::<Vec<_>>()
            .join(", "),
        args.seconds
    );
    println!(
        "OTLP/JSON {:.0}% and NDJSON {:.0}% of the ceiling (goal >= 70%); per data-plane core: \
         the last column (events per CPU-second of this process, which holds the node and the \
         load generator)",
        rates[0] / ceiling_rate * 100.0,
        rates[1] / ceiling_rate * 100.0,
    );
}

/// CPU time used so far by this process (the node and the load generator) and by the whole
/// machine, from `/proc` (Linux; zero elsewhere).
#[derive(Debug, Clone, Copy)]
struct CpuSeconds {
    process: f64,
    machine: f64,
}

impl CpuSeconds {
    /// Clock ticks per second in `/proc` (`USER_HZ`, 100 on Linux).
    const TICKS: f64 = 100.0;

    fn now() -> Self {
        let ticks = |fields: &[&str]| -> f64 {
            fields
                .iter()
                .filter_map(|field| field.parse::<f64>().ok())
                .sum::<f64>()
                / Self::TICKS
        };
        // After "pid (name) ": state, then utime and stime as the 12th and 13th fields.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let own: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let process = own.get(11..13).map_or(0.0, ticks);
        // "cpu user nice system idle iowait irq softirq steal …": busy is all but idle and
        // iowait.
        let all = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let total: Vec<&str> = all
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let machine = total.get(1..4).map_or(0.0, ticks) + total.get(6..9).map_or(0.0, ticks);
        Self { process, machine }
    }

    fn since(self, before: Self) -> Self {
        Self {
            process: self.process - before.process,
            machine: self.machine - before.machine,
        }
    }
}

/// The p50 of an audited write beside the same write on a node with auditing off.
async fn audit_overhead(app: &TestApp, args: &Args) {
    println!("\n## Audit overhead");
    let slug = "audit-bench";
    let email = "owner@audit-bench.example";
    let (_, _, access) = signed_in_owner(app, slug, email).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .unwrap();
    // Audit overhead: the same audited write (record creation) on two nodes alike but for
    // auditing, started here with the production batching interval, in alternating one-second
    // slices.
    let node = |audit_enabled| TestOptions {
        audit_enabled,
        data_pool_size: args.pool,
        event_flush_interval: Duration::from_millis(200),
        ..TestOptions::default()
    };
    let (_audited, audited_url) = app.spawn_data_node(&node(true)).await;
    let (_quiet, quiet_url) = app.spawn_data_node(&node(false)).await;
    let write = |url: &str| {
        http.post(format!("{url}/v1/collections/notes/records"))
            .header("X-Tenant", slug)
            .bearer_auth(&access)
            .json(&serde_json::json!({"title": "bench", "n": 1}))
            .build()
            .unwrap()
    };
    let audited = Arc::new(vec![write(&audited_url)]);
    let quiet = Arc::new(vec![write(&quiet_url)]);
    load(&http, audited.clone(), args.connections, 1).await;
    load(&http, quiet.clone(), args.connections, 1).await;
    // Two loads: one client at a time (the latency a request gains, with the machine's other
    // core free for the writer and ClickHouse), and `--connections` at once (every core busy:
    // what the writer, and on this one machine ClickHouse too, take from request throughput).
    println!(
        "| round | connections | path | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|"
    );
    for connections in [1, args.connections] {
        for round in 1..=args.rounds {
            let (mut off, mut on) =
                compare(&http, &quiet, &audited, connections, args.seconds).await;
            for (name, measured) in [
                ("POST record, auditing off", &mut off),
                ("POST record, audited", &mut on),
            ] {
                println!(
                    "| {round} | {connections} | {name} | {:.0} | {:.2} | {:.2} | {} |",
                    measured.rps(),
                    measured.percentile(0.50),
                    measured.percentile(0.99),
                    measured.errors
                );
            }
            println!(
                "round {round}, {connections} connection(s): audited p50 is {:+.1}% of auditing off (goal < 5%)",
                (on.percentile(0.50) / off.percentile(0.50) - 1.0) * 100.0
            );
        }
    }
}
