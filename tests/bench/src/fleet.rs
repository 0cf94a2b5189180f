//! The fleet section (`--sections fleet`, not in the default set): issue #17's measurements
//! over `--fleet-tenants` tenants (10,000) placed alternately on two Postgres clusters.
//!
//! 1. Provisioning through the control plane: the median ms/tenant of the last 1,000 beside
//!    the first 1,000 (flat?), and beside the raw-SQL floor (role + schema + template in one
//!    transaction) measured after them, at the same catalog size, on both clusters.
//! 2. `templates migrate` of one new migration over every tenant (4 at a time per cluster).
//! 3. Tenant-routed reads spread over every tenant, beside a bare handler selecting the same
//!    row schema-qualified on a pool per worker to the tenant's cluster (the floor).
//! 4. Memory: the private memory (`RssAnon`) of the Postgres backends a fresh node opened to
//!    serve reads over the first 1,000 tenants, beside another fresh node's over all of them.
//! 5. A move of a tenant holding `--move-records` records: total time and write freeze.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use control_plane::moves::service::{move_tenant, MoveOptions};
use control_plane::provisioning::ProvisionOptions;
use control_plane::templates::{migrate_all, RolloutOptions};
use control_plane::tenants::service::{self, CreateTenant};
use refinery::Migration;
use shared::template::Template;
use shared::tenant::{quote_ident, TenantSlug};
use tenantry_tests::{TestApp, TestOptions};
use tokio_postgres::types::Type;

use super::{
    floor_provisioning, floor_template_sql, measure_paths, median, print_ratio, settle, Args,
};

const CLUSTERS: [&str; 2] = ["primary", "second"];

fn slug(index: usize) -> String {
    format!("fleet-{index:05}")
}

/// Tenant `index`'s cluster: alternately the catalog's and the second.
fn cluster_of(index: usize) -> &'static str {
    CLUSTERS[index % 2]
}

pub async fn fleet(app: &TestApp, args: &Args) {
    let tenants = args.fleet_tenants;
    println!("\n## Fleet: {tenants} tenants over two clusters");
    app.register_second_cluster("second").await;
    let second_url = app.second_cluster_url().await;
    let urls = [app.database_url.clone(), second_url];

    provisioning(app, tenants, &urls).await;
    rollout(app, tenants).await;
    for url in &urls {
        settle(url).await;
    }
    let slugs: Vec<String> = (0..tenants).map(slug).collect();
    reads_and_memory(app, args, &slugs, &urls).await;
    backend_growth(&urls[0], tenants).await;
    move_large_tenant(app, args).await;
}

/// One backend's memory as it touches more and more tenant schemas (the catalog's cluster's
/// half of the tenants): what each schema costs a backend's catalog caches, which Postgres
/// never evicts. From `/proc` (`RssAnon`) and `pg_backend_memory_contexts`.
async fn backend_growth(url: &str, tenants: usize) {
    println!("\n### One backend's memory by tenant schemas touched");
    println!(
        "| schemas touched | RssAnon MiB | CacheMemoryContext and children MiB |\n|---|---|---|"
    );
    let db = TestApp::connect_to(url).await;
    let pid: i32 = db
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let measure = || async {
        let anon_kib = process_kib(pid, "RssAnon:").unwrap_or(0);
        let cache: i64 = db
            .query_one(
                "SELECT coalesce(sum(total_bytes), 0)::bigint FROM pg_backend_memory_contexts
                 WHERE name = 'CacheMemoryContext' OR parent = 'CacheMemoryContext'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (anon_kib as f64 / 1024.0, cache as f64 / (1024.0 * 1024.0))
    };
    let (anon, cache) = measure().await;
    println!("| 0 | {anon:.1} | {cache:.1} |");
    // The catalog's cluster holds the even-numbered tenants.
    let on_catalog: Vec<usize> = (0..tenants).step_by(2).collect();
    let mut touched = 0;
    for checkpoint in [100, 1000, 2500, on_catalog.len()] {
        let checkpoint = checkpoint.min(on_catalog.len());
        if checkpoint <= touched {
            continue;
        }
        while touched < checkpoint {
            let schema = format!("tenant_{}", slug(on_catalog[touched]).replace('-', "_"));
            db.simple_query(&format!(
                "SELECT display_name FROM {}.tenant_profile WHERE id = 1",
                quote_ident(&schema)
            ))
            .await
            .unwrap();
            touched += 1;
        }
        let (anon, cache) = measure().await;
        println!("| {touched} | {anon:.1} | {cache:.1} |");
    }
}

async fn provisioning(app: &TestApp, tenants: usize, urls: &[String; 2]) {
    let started = Instant::now();
    let mut times = Vec::with_capacity(tenants);
    for index in 0..tenants {
        let request = CreateTenant {
            slug: TenantSlug::parse(&slug(index)).unwrap(),
            name: None,
            // Its limits (1,000 requests/s) leave the reads unthrottled without a quota
            // change per tenant.
            plan: Some("enterprise".to_owned()),
            admin_email: None,
            cluster: Some(cluster_of(index).to_owned()),
        };
        let one = Instant::now();
        service::create(&app.control, request, ProvisionOptions::default())
            .await
            .unwrap();
        times.push(one.elapsed().as_secs_f64() * 1000.0);
        if (index + 1) % 1000 == 0 {
            eprintln!(
                "provisioned {} tenants in {:.0} s",
                index + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let window = 1000.min(tenants);
    let first = median(&mut times[..window].to_vec());
    let last = median(&mut times[tenants - window..].to_vec());

    // The floor at the same catalog size: 100 raw-SQL provisionings on each cluster.
    let template_sql = floor_template_sql();
    let mut floor = Vec::new();
    for (cluster, url) in urls.iter().enumerate() {
        let db = TestApp::connect_to(url).await;
        for index in 0..100 {
            let role = format!("{}_ffloor_{cluster}_{index}", app.role_prefix.as_str());
            let sql =
                floor_provisioning(&role, &format!("ffloor_{cluster}_{index}"), &template_sql);
            let one = Instant::now();
            db.batch_execute(&sql).await.unwrap();
            floor.push(one.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let floor = median(&mut floor);
    println!(
        "### Provisioning ({:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    println!("| tenants | median ms/tenant |\n|---|---|");
    println!("| first {window} | {first:.1} |");
    println!("| last {window} | {last:.1} |");
    println!("| floor: role+schema+template SQL in one transaction, after them, 100 per cluster | {floor:.1} |");
    println!("ratio last/first: {:.2}x (goal <= 1.2x)", last / first);
    println!("ratio last/floor: {:.2}x (goal <= 1.5x)", last / floor);
}

async fn rollout(app: &TestApp, tenants: usize) {
    let extended = Template::default_template().with_extra(vec![Migration::unapplied(
        "V100__fleet_notes",
        "CREATE TABLE fleet_notes (id bigint PRIMARY KEY, body text NOT NULL)",
    )
    .unwrap()]);
    let control = app.control.with_template(extended);
    let started = Instant::now();
    let report = migrate_all(
        &control,
        RolloutOptions {
            concurrency: 4,
            canary: None,
        },
        |_| {},
    )
    .await
    .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    println!("\n### templates migrate");
    println!(
        "one new migration over {} tenants ({tenants} provisioned), 4 at a time on each cluster: {elapsed:.1} s ({:.2} ms/tenant), {} failed (goal < 60 s)",
        report.behind,
        elapsed * 1000.0 / report.behind.max(1) as f64,
        report.failed.len()
    );
}

async fn reads_and_memory(app: &TestApp, args: &Args, slugs: &[String], urls: &[String; 2]) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .unwrap();
    let options = TestOptions {
        data_pool_size: args.pool,
        connection_max_uses: args.connection_max_uses,
        affinity_groups: args.affinity_groups,
        data_workers: 2,
        rate_limit: data_plane::rate_limit::RateLimitSettings {
            auth_per_minute: 100_000_000,
            auth_burst: 1_000_000,
            ..data_plane::rate_limit::RateLimitSettings::default()
        },
        ..TestOptions::default()
    };
    let requests_to = |url: &str, slugs: &[String]| -> Arc<Vec<reqwest::Request>> {
        Arc::new(
            slugs
                .iter()
                .map(|slug| {
                    http.get(format!("{url}/v1/tenant"))
                        .header("X-Tenant", slug)
                        .build()
                        .unwrap()
                })
                .collect(),
        )
    };

    // Memory: a fresh node over the first 1,000 tenants, then another over all of them.
    println!(
        "\n### Postgres backend memory serving reads (connections closed after {} uses, 0: never; {} affinity groups)",
        args.connection_max_uses, args.affinity_groups
    );
    println!("| tenants read | node's backends | RssAnon total MiB | RssAnon per backend MiB | Rss total MiB |\n|---|---|---|---|---|");
    let few = &slugs[..1000.min(slugs.len())];
    let mut nodes = Vec::new();
    for tenants in [few, slugs] {
        let since = now_on(&urls[0]).await;
        let (node, url) = app.spawn_data_node(&options).await;
        node.clusters.wait_until_listening("second").await;
        let requests = requests_to(&url, tenants);
        let round = super::load(&http, requests, args.connections, args.seconds).await;
        let memory = backend_memory(urls, &since).await;
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.0} | ({:.0} req/s, {} errors)",
            tenants.len(),
            memory.backends,
            memory.anon_kib as f64 / 1024.0,
            memory.anon_kib as f64 / 1024.0 / memory.backends.max(1) as f64,
            memory.rss_kib as f64 / 1024.0,
            round.rps(),
            round.errors
        );
        nodes.push(url);
    }

    // Throughput and latency over every tenant against the floor.
    println!(
        "\n### Tenant-routed reads over {} tenants on two clusters",
        slugs.len()
    );
    let (floor_url, floor_server) = start_fleet_floor(urls, args.pool).await;
    let floor: Arc<Vec<reqwest::Request>> = Arc::new(
        slugs
            .iter()
            .enumerate()
            .map(|(index, slug)| {
                let schema = format!("tenant_{}", slug.replace('-', "_"));
                http.get(format!("{floor_url}/{}/{schema}", index % 2))
                    .build()
                    .unwrap()
            })
            .collect(),
    );
    let ours = requests_to(&nodes[1], slugs);
    let ratios = measure_paths(
        &http,
        &[floor, ours],
        &[
            "floor (bare handler, pool per worker to the tenant's cluster)",
            "data plane GET /v1/tenant",
        ],
        args,
    )
    .await;
    print_ratio("ours/floor", &ratios[1], "(goal >= 70%)");
    floor_server.stop(false).await;
}

/// `now()` on the server `url` reaches, as text (backends started after it are a new node's).
async fn now_on(url: &str) -> String {
    let db = TestApp::connect_to(url).await;
    let row = db.query_one("SELECT now()::text", &[]).await.unwrap();
    row.get(0)
}

struct BackendMemory {
    backends: usize,
    anon_kib: u64,
    rss_kib: u64,
}

/// The memory of the data plane's backends (application `tenantry`) started after `since`
/// on both clusters, from `/proc` (the servers run on this machine).
async fn backend_memory(urls: &[String; 2], since: &str) -> BackendMemory {
    let mut memory = BackendMemory {
        backends: 0,
        anon_kib: 0,
        rss_kib: 0,
    };
    for url in urls {
        let db = TestApp::connect_to(url).await;
        let rows = db
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE application_name = 'tenantry' AND backend_type = 'client backend'
                   AND usename LIKE '%_dataplane' AND backend_start > $1::text::timestamptz",
                &[&since],
            )
            .await
            .unwrap();
        for row in rows {
            let pid: i32 = row.get(0);
            // A backend that exited since is not counted.
            let (Some(anon), Some(rss)) =
                (process_kib(pid, "RssAnon:"), process_kib(pid, "VmRSS:"))
            else {
                continue;
            };
            memory.backends += 1;
            memory.anon_kib += anon;
            memory.rss_kib += rss;
        }
    }
    memory
}

/// Field `name` (in kB) of process `pid`'s `/proc` status, when the process is there.
fn process_kib(pid: i32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Pools per worker to one cluster each, for the floor.
#[derive(Clone)]
struct FloorPools(Arc<[deadpool_postgres::Pool; 2]>);

async fn start_fleet_floor(
    urls: &[String; 2],
    pool_size: usize,
) -> (String, actix_web::dev::ServerHandle) {
    const WORKERS: usize = 2;
    let per_worker = pool_size.div_ceil(WORKERS);
    let pools: Vec<FloorPools> = (0..WORKERS)
        .map(|_| {
            let pool = |url: &String| {
                shared::db::pool(shared::db::pg_config(url, None).unwrap(), per_worker).unwrap()
            };
            FloorPools(Arc::new([pool(&urls[0]), pool(&urls[1])]))
        })
        .collect();
    let started = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let worker = started.fetch_add(1, Ordering::Relaxed) % WORKERS;
        App::new()
            .app_data(web::Data::new(pools[worker].clone()))
            .route("/{cluster}/{schema}", web::get().to(floor_read))
    })
    .listen(listener)
    .unwrap()
    .workers(WORKERS)
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (url, handle)
}

async fn floor_read(
    pools: web::Data<FloorPools>,
    path: web::Path<(usize, String)>,
) -> HttpResponse {
    let (cluster, schema) = path.into_inner();
    let client = pools.0[cluster % 2].get().await.unwrap();
    let sql = format!(
        "SELECT display_name FROM {}.tenant_profile WHERE id = $1",
        quote_ident(&schema)
    );
    let rows = client
        .query_typed(&sql, &[(&1i32, Type::INT4)])
        .await
        .unwrap();
    HttpResponse::Ok().json(serde_json::json!({ "display_name": rows[0].get::<_, String>(0) }))
}

async fn move_large_tenant(app: &TestApp, args: &Args) {
    let records = args.move_records;
    let slug = "fleet-mover";
    TestApp::create_placed(
        &app.control,
        slug,
        Some("primary"),
        ProvisionOptions::default(),
    )
    .await
    .unwrap();
    let schema = app.tenant_schema(slug).await;
    let db = app.superuser().await;
    db.batch_execute(&format!(
        "INSERT INTO {schema}.record_collections (name) VALUES ('tasks');
         INSERT INTO {schema}.records
             (id, collection, data, version, size_bytes, created_at, updated_at)
         SELECT gen_random_uuid(), 'tasks',
                jsonb_build_object('title', 'task ' || n, 'n', n, 'done', n % 2 = 0),
                1, 60, now(), now()
         FROM generate_series(1, {records}) AS n;
         ANALYZE {schema}.records"
    ))
    .await
    .unwrap();
    // A writer as the tenant's own role, as a data-plane node's transactions are: a new
    // record and a changed one per round, from before the move until the fence stops it.
    let role: String = db
        .query_one(
            "SELECT role_name FROM control.tenants WHERE slug = $1",
            &[&slug],
        )
        .await
        .unwrap()
        .get(0);
    let ids: Vec<uuid::Uuid> = db
        .query(&format!("SELECT id FROM {schema}.records LIMIT 5000"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let writer = app.superuser().await;
    writer
        .batch_execute(&format!("SET ROLE {}", quote_ident(&role)))
        .await
        .unwrap();
    let (written_tx, written) = tokio::sync::oneshot::channel();
    let write = !args.move_without_writer;
    tokio::spawn(async move {
        if !write {
            written_tx.send(0).ok();
            return;
        }
        let mut rounds = 0u64;
        for id in ids.iter().cycle() {
            let round = writer
                .batch_execute(&format!(
                    "INSERT INTO {schema}.records
                         (id, collection, data, version, size_bytes, created_at, updated_at)
                     VALUES (gen_random_uuid(), 'tasks', '{{\"title\": \"during\"}}', 1, 20,
                             now(), now());
                     UPDATE {schema}.records SET version = version + 1, updated_at = now()
                     WHERE id = '{id}'"
                ))
                .await;
            if round.is_err() {
                break; // fenced: the tenant's role may no longer write
            }
            rounds += 1;
        }
        written_tx.send(rounds).ok();
    });
    let (source, target) = ("primary", "second");
    println!("\n### Moving a tenant of {records} records");
    let started = std::time::Instant::now();
    let progress = |step: &str| println!("- {:>5} ms {step}", started.elapsed().as_millis());
    let report = move_tenant(
        &app.control,
        &TenantSlug::parse(slug).unwrap(),
        target,
        &MoveOptions {
            grace: Duration::ZERO,
            interrupt_after: None,
        },
        &progress,
    )
    .await
    .unwrap();
    let rounds = written.await.unwrap_or_default();
    println!(
        "a writer as the tenant's role wrote {rounds} rounds (a record added, one changed) until \
         the fence stopped it"
    );
    println!(
        "{source} -> {target}: {} rows in {} tables copied, {} caught up in the freeze, total {} ms, writes refused for {} ms (goal < 2000 ms)",
        report.rows,
        report.tables,
        report.caught_up,
        report.total_ms,
        report.freeze_ms.unwrap_or_default()
    );
}
