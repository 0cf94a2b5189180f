//! The console section (`--sections console`, not in the default set): issue #19 item 7.
//! Each console page is timed beside the JSON API call that serves the same data, one client
//! at a time, alternating rounds, so the figure is the page's own cost: p50 and p99 of each
//! and their ratio (goal: the page within 1.5× of the API call).
//! - The audit view over `--console-events` (100,000) events of one tenant: the console's page
//!   (`GET /console/admin/audit`, cookie session, 50 events) against
//!   `GET /v1/admin/audit?limit=50` (bearer token).
//! - The operator's tenant list over `--console-tenants` (10,000) tenants: the first page,
//!   a search and a deep page of the operator console (`GET /console?…`, 50 tenants, operator
//!   cookie) against `GET /v1/tenants?…&limit=50` (operator token).

use std::time::Instant;

use shared::events::rows::AuditRow;
use tenantry_tests::TestApp;

use super::{signed_in_owner, Args, PASSWORD};

/// Writes `count` audit events of tenant `tenant_id`, one a second back from now.
async fn seed_events(app: &TestApp, tenant_id: &str, count: usize) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut insert = app
        .clickhouse()
        .insert::<AuditRow>("audit_log")
        .await
        .expect("an insert into audit_log");
    for index in 0..count {
        let at = u32::try_from(now).unwrap_or(u32::MAX) - u32::try_from(index).unwrap_or(0);
        let row = AuditRow {
            tenant_id: tenant_id.to_owned(),
            occurred_at: at,
            occurred_at_ms: u64::from(at) * 1000,
            event_id: uuid::Uuid::new_v4().to_string(),
            request_id: uuid::Uuid::new_v4().to_string(),
            actor_type: "user".to_owned(),
            actor_id: uuid::Uuid::new_v4().to_string(),
            action: ["records.create", "auth.login", "users.invite"][index % 3].to_owned(),
            resource_type: "record".to_owned(),
            resource_id: index.to_string(),
            result: "success".to_owned(),
            ip: "203.0.113.7".to_owned(),
            user_agent: "bench".to_owned(),
            http_method: "POST".to_owned(),
            http_path: "/v1/collections/notes/records".to_owned(),
            http_status: 201,
            duration_ms: 3,
            metadata: "{}".to_owned(),
            chain_stream: "bench".to_owned(),
            chain_seq: index as u64 + 1,
            key_version: 1,
            prev_mac: String::new(),
            mac: String::new(),
        };
        insert.write(&row).await.expect("an audit row");
    }
    insert.end().await.expect("the audit rows written");
}

/// Milliseconds of each request, sent one after another.
async fn timed(http: &reqwest::Client, request: &reqwest::Request, count: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let request = request
            .try_clone()
            .expect("a request without a streamed body");
        let started = Instant::now();
        let reply = http.execute(request).await.expect("an answer");
        assert!(reply.status().is_success(), "{}", reply.status());
        let body = reply.bytes().await.expect("a body");
        assert!(!body.is_empty());
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times
}

fn percentile(times: &mut [f64], p: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    times[((times.len() as f64 - 1.0) * p).round() as usize]
}

/// The page and the API call, `args.rounds` rounds of 200 each, alternating; a table row per
/// round and the p50 ratios.
async fn compare(
    http: &reqwest::Client,
    api: (&str, &reqwest::Request),
    page: (&str, &reqwest::Request),
    rounds: usize,
) {
    // Warm both (caches, ClickHouse's marks, Postgres's buffers), then alternate rounds.
    timed(http, page.1, 20).await;
    timed(http, api.1, 20).await;
    println!("| round | path | requests | p50 ms | p99 ms |\n|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let mut api_times = timed(http, api.1, 200).await;
        let mut page_times = timed(http, page.1, 200).await;
        let (api_p50, page_p50) = (
            percentile(&mut api_times, 0.5),
            percentile(&mut page_times, 0.5),
        );
        println!(
            "| {round} | {} | 200 | {api_p50:.2} | {:.2} |",
            api.0,
            percentile(&mut api_times, 0.99)
        );
        println!(
            "| {round} | {} | 200 | {page_p50:.2} | {:.2} |",
            page.0,
            percentile(&mut page_times, 0.99)
        );
        ratios.push(page_p50 / api_p50);
    }
    println!("ratio page p50 / API p50 per round: {ratios:.2?} (goal <= 1.5)");
}

pub async fn console(app: &TestApp, args: &Args) {
    audit_view(app, args).await;
    tenant_list(app, args).await;
}

async fn audit_view(app: &TestApp, args: &Args) {
    let events = args.console_events;
    println!("\n## Console: the audit view over {events} events, page against API");
    let (tenant, _, access) =
        signed_in_owner(app, "console-bench", "owner@console-bench.example").await;
    let tenant_id = tenant.id.to_string();
    let started = Instant::now();
    seed_events(app, &tenant_id, events).await;
    println!(
        "seeded {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut browser = app.browser("console-bench");
    let landed = browser
        .sign_in("owner@console-bench.example", PASSWORD)
        .await;
    assert_eq!(landed.status, reqwest::StatusCode::SEE_OTHER);
    let cookies = browser
        .cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ");
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/console/admin/audit", app.data_url))
        .header("X-Tenant", "console-bench")
        .header("Cookie", &cookies)
        .build()
        .unwrap();
    let api = http
        .get(format!("{}/v1/admin/audit?limit=50", app.data_url))
        .header("X-Tenant", "console-bench")
        .bearer_auth(&access)
        .build()
        .unwrap();
    compare(
        &http,
        ("GET /v1/admin/audit?limit=50 (JSON)", &api),
        ("GET /console/admin/audit (HTML, 50 events)", &page),
        args.rounds,
    )
    .await;
}

/// `count` catalog rows (`bench-00001` …, active, plan free) straight into `control.tenants`:
/// the tenant list reads only the catalog, so these need no schema.
async fn seed_tenants(app: &TestApp, count: usize) {
    let count = i32::try_from(count).expect("a tenant count that fits in i32");
    app.superuser()
        .await
        .execute(
            "INSERT INTO control.tenants
                 (id, slug, name, status, plan, schema_name, role_name, cluster_id)
             SELECT gen_random_uuid(), 'bench-' || lpad(n::text, 5, '0'),
                    'Bench tenant ' || n, 'active', 'free', 'tenant_bench_' || n,
                    'tenant_bench_' || n,
                    (SELECT id FROM control.postgres_clusters ORDER BY id LIMIT 1)
             FROM generate_series(1, $1) n",
            &[&count],
        )
        .await
        .expect("the tenants seeded");
}

async fn tenant_list(app: &TestApp, args: &Args) {
    let count = args.console_tenants;
    println!("\n## Console: the operator's tenant list over {count} tenants, page against API");
    let started = Instant::now();
    seed_tenants(app, count).await;
    println!(
        "seeded {count} catalog rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (email, password) = ("ops@bench.example", "an operator's long bench passphrase");
    control_plane::operators::accounts::add(
        &app.control,
        &shared::email::Email::parse(email).unwrap(),
        zeroize::Zeroizing::new(password.to_owned()),
    )
    .await
    .expect("an operator account");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut browser = tenantry_tests::console::Browser::new(http.clone(), &app.control_url, "");
    let landed = browser.sign_in(email, password).await;
    assert_eq!(landed.status, reqwest::StatusCode::SEE_OTHER);
    let cookies = browser
        .cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ");
    let deep = format!("bench-{:05}", count * 9 / 10);
    for (what, query) in [
        ("first page", String::new()),
        ("search `bench-09`", "q=bench-09".to_owned()),
        ("deep page", format!("after={deep}")),
    ] {
        println!("\n{what}:");
        let page = http
            .get(format!("{}/console?{query}", app.control_url))
            .header("Cookie", &cookies)
            .build()
            .unwrap();
        let api = http
            .get(format!("{}/v1/tenants?{query}&limit=50", app.control_url))
            .bearer_auth(&app.operator_token)
            .build()
            .unwrap();
        compare(
            &http,
            (&format!("GET /v1/tenants?{query}&limit=50 (JSON)"), &api),
            (&format!("GET /console?{query} (HTML, 50 tenants)"), &page),
            args.rounds,
        )
        .await;
    }
}
