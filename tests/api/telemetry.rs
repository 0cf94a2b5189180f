//! Telemetry ingestion (issue #5): OTLP/HTTP from the real OpenTelemetry Python SDK and as
//! JSON, bulk NDJSON and CSV with line-numbered errors, the `telemetry:write` guard and the
//! events/day quota.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::TestApp;

use crate::audit::tenant_id;
use crate::users_admin::{call, tenant_with_owner};

/// A new API key of tenant `slug` with `scopes`, made by the owner holding `token`.
async fn api_key(app: &TestApp, slug: &str, token: &str, scopes: &[&str]) -> String {
    let response = call(
        app,
        Method::POST,
        slug,
        "/v1/admin/api-keys",
        token,
        Some(json!({"name": "agent", "scopes": scopes})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["key"].as_str().unwrap().to_owned()
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

fn ingest(
    app: &TestApp,
    slug: &str,
    key: &str,
    path: &str,
    content_type: &str,
) -> reqwest::RequestBuilder {
    app.http
        .post(format!("{}{path}", app.data_url))
        .header("X-Tenant", slug)
        .header("X-API-Key", key)
        .header("Content-Type", content_type)
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
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "otel").await;
    app.raise_rate_limits("otel").await;
    let tenant = tenant_id(&app, "otel").await;
    let key = api_key(&app, "otel", &token, &["telemetry:write"]).await;
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
            .args([url.as_str(), "otel", key.as_str(), "checkout", "5"])
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
    let usage: Value = call(
        &app,
        Method::GET,
        "otel",
        "/v1/admin/usage?days=1",
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(usage["days"][0]["events_ingested"], 11, "{usage}");
}

#[tokio::test]
async fn otlp_json_is_accepted_and_bad_otlp_is_refused_with_4xx() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "otlpjson").await;
    app.raise_rate_limits("otlpjson").await;
    let tenant = tenant_id(&app, "otlpjson").await;
    let key = api_key(&app, "otlpjson", &token, &["telemetry:write"]).await;
    let request = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": "1763900000000000000", "severityNumber": 17,
             "body": {"stringValue": "boom"},
             "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
             "attributes": [{"key": "http.status", "value": {"intValue": "500"}}]}
        ]}]
    }]});
    let response = ingest(&app, "otlpjson", &key, "/v1/logs", "application/json")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
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
        let response = ingest(&app, "otlpjson", &key, "/v1/logs", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{content_type}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    assert_eq!(stored(&app, "telemetry_logs", &tenant).await, 1);
}

#[tokio::test]
async fn ingestion_needs_a_key_with_telemetry_write_of_the_same_tenant() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "guarded-in").await;
    let other = tenant_with_owner(&app, "other-in").await;
    let tenant = tenant_id(&app, "guarded-in").await;
    let reader = api_key(&app, "guarded-in", &token, &["records:read"]).await;
    let foreign = api_key(&app, "other-in", &other, &["telemetry:write"]).await;
    let line = "{\"type\":\"log\",\"time\":\"2026-01-01T00:00:00Z\",\"body\":\"x\"}\n";
    for (key, status) in [
        (Some(reader.as_str()), StatusCode::FORBIDDEN),
        (Some(foreign.as_str()), StatusCode::UNAUTHORIZED),
        (Some("tnt_notakey_secret"), StatusCode::UNAUTHORIZED),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let mut request = app
            .http
            .post(format!("{}/v1/telemetry/events", app.data_url))
            .header("X-Tenant", "guarded-in")
            .header("Content-Type", "application/x-ndjson")
            .body(line);
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        assert_eq!(request.send().await.unwrap().status(), status);
    }
    assert_eq!(stored(&app, "telemetry_logs", &tenant).await, 0);
}

#[tokio::test]
async fn ndjson_and_csv_batches_are_all_or_nothing_with_bad_lines_reported_by_number() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "bulk").await;
    app.raise_rate_limits("bulk").await;
    let tenant = tenant_id(&app, "bulk").await;
    let key = api_key(&app, "bulk", &token, &["telemetry:write"]).await;

    let good = concat!(
        "{\"type\":\"log\",\"time\":\"2026-01-01T00:00:00Z\",\"service\":\"api\",\"severity\":\"error\",\"body\":\"failed\"}\n",
        "{\"type\":\"metric\",\"time\":\"2026-01-01T00:00:01Z\",\"name\":\"queue.depth\",\"value\":12,\"attributes\":{\"region\":\"eu\"}}\n",
        "\n",
        "{\"type\":\"metric\",\"time\":\"2026-01-01T00:00:02Z\",\"name\":\"queue.depth\",\"value\":3.5,\"kind\":\"sum\"}\n",
    );
    let response = ingest(
        &app,
        "bulk",
        &key,
        "/v1/telemetry/events",
        "application/x-ndjson",
    )
    .body(good)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.json::<Value>().await.unwrap()["accepted"], 3);
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
    let response = ingest(
        &app,
        "bulk",
        &key,
        "/v1/telemetry/events",
        "application/x-ndjson",
    )
    .body(bad)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_events");
    let lines: Vec<u64> = body["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 4, 5, 6, 7], "{body}");
    let repeated = body["error"]["details"]["errors"][4]["message"]
        .as_str()
        .unwrap();
    assert!(repeated.contains("\"region\" appears twice"), "{body}");
    // Nothing of the refused batch was stored, not even its good lines.
    assert_eq!(stored(&app, "telemetry_logs", &tenant).await, 1);
    assert_eq!(stored(&app, "telemetry_metrics", &tenant).await, 2);

    let csv = "type,time,service,name,value,unit\n\
               metric,2026-01-01T00:00:00Z,api,cpu,0.5,1\n\
               metric,2026-01-01T00:00:01Z,api,cpu,0.75,1\n";
    let response = ingest(&app, "bulk", &key, "/v1/telemetry/events", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    wait_for_rows(&app, "telemetry_metrics", &tenant, 4).await;

    for (csv, line) in [
        ("type,time,color\nmetric,2026-01-01T00:00:00Z,red\n", 1),
        ("type,time,name,value\nmetric,2026-01-01T00:00:00Z,cpu,1\nmetric,2026-01-01T00:00:00Z,cpu,high\n", 3),
        ("type,time,name,value\nmetric,2026-01-01T00:00:00Z,cpu,1\nmetric,2026-01-01T00:00:00Z,cpu\n", 3),
    ] {
        let response = ingest(&app, "bulk", &key, "/v1/telemetry/events", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{csv}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["details"]["errors"][0]["line"], line, "{csv}: {body}");
    }
    assert_eq!(stored(&app, "telemetry_metrics", &tenant).await, 4);
    let response = ingest(
        &app,
        "bulk",
        &key,
        "/v1/telemetry/events",
        "application/json",
    )
    .body("{}")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn the_events_per_day_quota_refuses_whole_batches_with_429() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "quota-in").await;
    let tenant = tenant_id(&app, "quota-in").await;
    let key = api_key(&app, "quota-in", &token, &["telemetry:write"]).await;
    let response = app
        .operator(Method::PATCH, "/v1/tenants/quota-in/quotas")
        .json(&json!({"events_per_day": 5, "requests_per_second": 10000, "burst": 10000}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
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
        ingest(
            &app,
            "quota-in",
            &key,
            "/v1/telemetry/events",
            "application/x-ndjson",
        )
        .body(body)
        .send()
    };
    assert_eq!(send(batch(3)).await.unwrap().status(), StatusCode::ACCEPTED);
    let refused = send(batch(3)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "events_quota_exceeded");
    assert_eq!(body["error"]["details"]["limit"], 5);
    assert_eq!(send(batch(2)).await.unwrap().status(), StatusCode::ACCEPTED);
    wait_for_rows(&app, "telemetry_logs", &tenant, 5).await;
    assert_eq!(
        send(batch(1)).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
