//! Telemetry ingestion (issue #5): OTLP/HTTP from the real OpenTelemetry Python SDK and as
//! JSON, bulk NDJSON and CSV with line-numbered errors, the `telemetry:write` guard and the
//! events/day quota.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::client::{NewKey, OtlpEncoding};
use tenantry_tests::{Client, TestApp};

/// A new API key of `owner`'s tenant with `scopes`: the key's text.
async fn api_key(owner: &Client, scopes: &[&str]) -> String {
    let created = owner
        .api_keys()
        .create(&NewKey::new("agent", scopes))
        .await
        .unwrap();
    created.key.expose().to_owned()
}

/// Tenant `slug` with its owner signed in and its rate limits lifted, its id, and an agent
/// holding an API key with `telemetry:write`.
async fn ingesting_tenant(app: &TestApp, slug: &str) -> (Client, String, Client) {
    let owner = app.tenant_with_owner(slug).await;
    app.raise_rate_limits(slug).await;
    let tenant = app.tenant_id(slug).await;
    let agent = app
        .tenant(slug)
        .with_api_key(api_key(&owner, &["telemetry:write"]).await);
    (owner, tenant, agent)
}

/// Rows of `table` stored for `tenant`.
async fn stored(app: &TestApp, table: &str, tenant: &str) -> u64 {
    app.data.events.flush().await;
    app.clickhouse()
        .query("SELECT count() FROM ? WHERE tenant_id = ?")
        .bind(clickhouse::sql::Identifier(table))
        .bind(tenant)
        .fetch_one::<u64>()
        .await
        .unwrap()
}

async fn wait_for_rows(app: &TestApp, table: &str, tenant: &str, count: u64) {
    let arrived = TestApp::eventually(Duration::from_secs(20), || async {
        stored(app, table, tenant).await >= count
    })
    .await;
    assert!(
        arrived.is_some(),
        "{table}: {} of {count} rows",
        stored(app, table, tenant).await
    );
    assert_eq!(stored(app, table, tenant).await, count, "{table}");
}

fn otel_python() -> PathBuf {
    std::env::var_os("TENANTRY_TEST_OTEL_PYTHON").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../deploy/local/state/otel/venv/bin/python")
        },
        PathBuf::from,
    )
}

#[tokio::test]
async fn the_python_opentelemetry_sdk_sends_traces_logs_and_metrics_that_are_stored() {
    sdk_round_trip("none").await;
}

#[tokio::test]
async fn the_python_opentelemetry_sdk_with_gzip_compression_is_read_as_well() {
    sdk_round_trip("gzip").await;
}

/// The SDK's exporters, compressing as `compression` says, send to a new tenant; what arrives
/// in ClickHouse and in the usage counts is what they sent.
async fn sdk_round_trip(compression: &'static str) {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("otel").await;
    app.raise_rate_limits("otel").await;
    let tenant = app.tenant_id("otel").await;
    let key = api_key(&owner, &["telemetry:write"]).await;
    let python = otel_python();
    assert!(
        python.exists(),
        "{} missing: run deploy/local/test.sh (it installs the OpenTelemetry SDK)",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("otel/send_telemetry.py");
    let url = app.data_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([
                url.as_str(),
                "otel",
                key.as_str(),
                "checkout",
                "5",
                compression,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the SDK's exports failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_for_rows(&app, "telemetry_spans", &tenant, 5).await;
    wait_for_rows(&app, "telemetry_logs", &tenant, 5).await;
    wait_for_rows(&app, "telemetry_metrics", &tenant, 1).await;
    let (service, body, severity): (String, String, String) = app
        .clickhouse()
        .query("SELECT service, body, severity FROM telemetry_logs WHERE tenant_id = ? ORDER BY time_unix_nano LIMIT 1")
        .bind(&tenant)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(service, "checkout");
    assert_eq!(body, "log line 0 from the python sdk");
    assert_eq!(severity, "warn");
    let (name, value): (String, f64) = app
        .clickhouse()
        .query("SELECT name, value FROM telemetry_metrics WHERE tenant_id = ?")
        .bind(&tenant)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((name.as_str(), value), ("jobs_done", 5.0));
    let names: Vec<String> = app
        .clickhouse()
        .query("SELECT name FROM telemetry_spans WHERE tenant_id = ? ORDER BY name")
        .bind(&tenant)
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(names[0], "operation-0");
    // Read back through the API too: the day's ingested count.
    let usage: Value = owner.get("/v1/admin/usage?days=1").ok().await.unwrap();
    assert_eq!(usage["days"][0]["events_ingested"], 11, "{usage}");
}

#[tokio::test]
async fn otlp_json_is_accepted_and_bad_otlp_is_refused_with_4xx() {
    let app = TestApp::spawn().await;
    let (_, tenant, agent) = ingesting_tenant(&app, "otlpjson").await;
    let request = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": "1763900000000000000", "severityNumber": 17,
             "body": {"stringValue": "boom"},
             "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
             "attributes": [{"key": "http.status", "value": {"intValue": "500"}}]}
        ]}]
    }]});
    agent
        .telemetry()
        .export(
            "logs",
            OtlpEncoding::Json,
            serde_json::to_vec(&request).unwrap(),
        )
        .await
        .unwrap();
    wait_for_rows(&app, "telemetry_logs", &tenant, 1).await;
    let (severity, trace_id, attributes): (String, String, String) = app
        .clickhouse()
        .query("SELECT severity, trace_id, attributes FROM telemetry_logs WHERE tenant_id = ?")
        .bind(&tenant)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(severity, "error");
    assert_eq!(trace_id, "5b8efff798038103d269b633813fc60c");
    assert!(attributes.contains("http.status"), "{attributes}");

    for (content_type, body, status) in [
        (
            "application/x-protobuf",
            b"\xff\xff\xff not protobuf".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            b"{\"resourceLogs\": 7}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            b"{\"resourceLogs\": [], \"resourceLogs\": []}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "text/plain",
            b"hello".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let response = agent
            .post("/v1/logs")
            .body(body, content_type)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{content_type}");
        let body = response.value();
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    assert_eq!(stored(&app, "telemetry_logs", &tenant).await, 1);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn compressed_bodies_are_read_and_a_bomb_or_an_unknown_coding_changes_nothing() {
    let app = TestApp::spawn().await;
    let (owner, tenant, agent) = ingesting_tenant(&app, "squeezed").await;
    let post = |path: &'static str, content_type: &'static str, coding: &str, body: Vec<u8>| {
        agent
            .post(path)
            .header("content-encoding", coding)
            .body(body, content_type)
            .send()
    };

    // As an OpenTelemetry Collector sends by default: gzip (here its JSON encoding; the SDK
    // test above sends gzip protobuf), and a bulk batch the same way.
    let logs = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1763900000000000000", "body": {"stringValue": "zipped"}}
    ]}]}]});
    let reply = post(
        "/v1/logs",
        "application/json",
        "gzip",
        gzip(&serde_json::to_vec(&logs).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let lines = concat!(
        "{\"type\":\"log\",\"time\":\"2026-01-01T00:00:00Z\",\"body\":\"one\"}\n",
        "{\"type\":\"log\",\"time\":\"2026-01-01T00:00:01Z\",\"body\":\"two\"}\n",
    );
    let reply = post(
        "/v1/telemetry/events",
        "application/x-ndjson",
        "gzip",
        gzip(lines.as_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), StatusCode::ACCEPTED, "{:?}", reply.value());
    wait_for_rows(&app, "telemetry_logs", &tenant, 3).await;

    // 64 MiB of log lines in a body of about 200 KiB: 413 at the limit (4 MiB once decoded).
    let line = b"{\"type\":\"log\",\"time\":\"2026-01-01T00:00:00Z\",\"body\":\"again\"}\n";
    let bomb = gzip(&line.repeat((64 << 20) / line.len()));
    assert!(bomb.len() < 1 << 20);
    let reply = post("/v1/telemetry/events", "application/x-ndjson", "gzip", bomb)
        .await
        .unwrap();
    assert_eq!(
        reply.error_code(),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // A coding the node does not read, and a body that is not what its coding says.
    let unsupported = (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_encoding",
    );
    let reply = post("/v1/logs", "application/json", "br", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(reply.error_code(), unsupported);
    let reply = post(
        "/v1/logs",
        "application/json",
        "gzip",
        b"{\"resourceLogs\": []}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    // The same rule for JSON endpoints and records.
    let reply = owner
        .post("/v1/collections/notes/records")
        .header("content-encoding", "gzip")
        .body(gzip(b"{\"title\": \"zipped record\"}"), "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED, "{:?}", reply.value());
    let reply = owner
        .post("/v1/collections/notes/records")
        .header("content-encoding", "zstd")
        .body(b"{}".to_vec(), "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.error_code(), unsupported);

    // Nothing refused was stored.
    assert_eq!(stored(&app, "telemetry_logs", &tenant).await, 3);
    let notes = owner
        .records("notes")
        .list_all(&Default::default())
        .await
        .unwrap();
    assert_eq!(notes.len(), 1);
}

#[tokio::test]
async fn ingestion_needs_a_key_with_telemetry_write_of_the_same_tenant() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("guarded-in").await;
    let other = app.tenant_with_owner("other-in").await;
    let tenant = app.tenant_id("guarded-in").await;
    let reader = api_key(&owner, &["records:read"]).await;
    let foreign = api_key(&other, &["telemetry:write"]).await;
    let line = "{\"type\":\"log\",\"time\":\"2026-01-01T00:00:00Z\",\"body\":\"x\"}\n";
    for (key, status) in [
        (Some(reader.as_str()), StatusCode::FORBIDDEN),
        (Some(foreign.as_str()), StatusCode::UNAUTHORIZED),
        (Some("tnt_notakey_secret"), StatusCode::UNAUTHORIZED),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let anonymous = app.tenant("guarded-in");
        let sender = match key {
            Some(key) => anonymous.with_api_key(key),
            None => anonymous,
        };
        let response = sender
            .post("/v1/telemetry/events")
            .body(line, "application/x-ndjson")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{key:?}");
    }
    assert_eq!(stored(&app, "telemetry_logs", &tenant).await, 0);
}

#[tokio::test]
async fn ndjson_and_csv_batches_are_all_or_nothing_with_bad_lines_reported_by_number() {
    let app = TestApp::spawn().await;
    let (_, tenant, agent) = ingesting_tenant(&app, "bulk").await;
    let telemetry = agent.telemetry();

    let good = concat!(
        "{\"type\":\"log\",\"time\":\"2026-01-01T00:00:00Z\",\"service\":\"api\",\"severity\":\"error\",\"body\":\"failed\"}\n",
        "{\"type\":\"metric\",\"time\":\"2026-01-01T00:00:01Z\",\"name\":\"queue.depth\",\"value\":12,\"attributes\":{\"region\":\"eu\"}}\n",
        "\n",
        "{\"type\":\"metric\",\"time\":\"2026-01-01T00:00:02Z\",\"name\":\"queue.depth\",\"value\":3.5,\"kind\":\"sum\"}\n",
    );
    assert_eq!(telemetry.events_ndjson(good).await.unwrap(), 3);
    wait_for_rows(&app, "telemetry_metrics", &tenant, 2).await;
    wait_for_rows(&app, "telemetry_logs", &tenant, 1).await;

    let bad = concat!(
        "{\"type\":\"log\",\"time\":\"2026-01-01T00:00:00Z\",\"body\":\"fine\"}\n",
        "{\"type\":\"log\",\"time\":\"yesterday\",\"body\":\"bad time\"}\n",
        "{\"type\":\"metric\",\"time\":\"2026-01-01T00:00:00Z\",\"name\":\"m\",\"value\":1}\n",
        "{\"type\":\"metric\",\"time\":\"2026-01-01T00:00:00Z\",\"name\":\"m\",\"value\":\"NaN\"}\n",
        "not json at all\n",
        "{\"type\":\"log\",\"time\":\"2026-01-01T00:00:00Z\",\"extra\":1}\n",
        // Which region? A key named twice is refused, as in every JSON body.
        "{\"type\":\"metric\",\"time\":\"2026-01-01T00:00:00Z\",\"name\":\"m\",\"value\":1,\"attributes\":{\"region\":\"eu\",\"region\":\"us\"}}\n",
    );
    let refused = telemetry.events_ndjson(bad).await.unwrap_err();
    let refusal = refused.api().unwrap();
    assert_eq!(
        (refusal.status, refusal.code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_events")
    );
    let details = refusal.details.as_ref().unwrap();
    let lines: Vec<u64> = details["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 4, 5, 6, 7], "{details}");
    let repeated = details["errors"][4]["message"].as_str().unwrap();
    assert!(repeated.contains("\"region\" appears twice"), "{details}");
    // Nothing of the refused batch was stored, not even its good lines.
    assert_eq!(stored(&app, "telemetry_logs", &tenant).await, 1);
    assert_eq!(stored(&app, "telemetry_metrics", &tenant).await, 2);

    let csv = "type,time,service,name,value,unit\n\
               metric,2026-01-01T00:00:00Z,api,cpu,0.5,1\n\
               metric,2026-01-01T00:00:01Z,api,cpu,0.75,1\n";
    telemetry.events_csv(csv).await.unwrap();
    wait_for_rows(&app, "telemetry_metrics", &tenant, 4).await;

    for (csv, line) in [
        ("type,time,color\nmetric,2026-01-01T00:00:00Z,red\n", 1),
        ("type,time,name,value\nmetric,2026-01-01T00:00:00Z,cpu,1\nmetric,2026-01-01T00:00:00Z,cpu,high\n", 3),
        ("type,time,name,value\nmetric,2026-01-01T00:00:00Z,cpu,1\nmetric,2026-01-01T00:00:00Z,cpu\n", 3),
    ] {
        let refused = telemetry.events_csv(csv).await.unwrap_err();
        let refusal = refused.api().unwrap();
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{csv}");
        let details = refusal.details.as_ref().unwrap();
        assert_eq!(details["errors"][0]["line"], line, "{csv}: {details}");
    }
    assert_eq!(stored(&app, "telemetry_metrics", &tenant).await, 4);
    let response = agent
        .post("/v1/telemetry/events")
        .body("{}", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn the_events_per_day_quota_refuses_whole_batches_with_429() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("quota-in").await;
    let tenant = app.tenant_id("quota-in").await;
    let agent = app
        .tenant("quota-in")
        .with_api_key(api_key(&owner, &["telemetry:write"]).await);
    app.operator_api()
        .tenants()
        .set_quotas(
            "quota-in",
            &json!({"events_per_day": 5, "requests_per_second": 10000, "burst": 10000}),
        )
        .await
        .unwrap();
    let slug = shared::tenant::TenantSlug::parse("quota-in").unwrap();
    let applied = TestApp::eventually(Duration::from_secs(5), || async {
        app.data
            .registry
            .lookup(&data_plane::tenancy::resolve::TenantKey::Slug(slug.clone()))
            .await
            .ok()
            .flatten()
            .is_some_and(|served| served.quotas.events_per_day == 5)
    })
    .await;
    assert!(applied.is_some());
    let batch = |count: usize| {
        (0..count)
            .map(|index| {
                format!(
                    "{{\"type\":\"log\",\"time\":\"2026-01-01T00:00:0{index}Z\",\"body\":\"b\"}}\n"
                )
            })
            .collect::<String>()
    };
    let send = |body: String| {
        agent
            .post("/v1/telemetry/events")
            .body(body, "application/x-ndjson")
            .send()
    };
    assert_eq!(send(batch(3)).await.unwrap().status(), StatusCode::ACCEPTED);
    let refused = send(batch(3)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(refused.code(), Some("events_quota_exceeded"));
    assert_eq!(refused.value()["error"]["details"]["limit"], 5);
    assert_eq!(send(batch(2)).await.unwrap().status(), StatusCode::ACCEPTED);
    wait_for_rows(&app, "telemetry_logs", &tenant, 5).await;
    assert_eq!(
        send(batch(1)).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
