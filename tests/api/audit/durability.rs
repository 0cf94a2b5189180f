//! The writer through ClickHouse outages, a data-plane restart and a full spool. Each test
//! runs its own ClickHouse server ([`PrivateClickHouse`]) so stopping it disturbs no other
//! test run.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::private_clickhouse::PrivateClickHouse;
use tenantry_tests::{TestApp, TestOptions};

use super::{create_records, tenant_id, wait_for_events};
use crate::users_admin::{call, error_code, tenant_with_owner};

const N: usize = 25;

async fn ready(app: &TestApp) -> (StatusCode, Value) {
    let response = app
        .http
        .get(format!("{}/readyz", app.data_url))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn events_made_while_clickhouse_is_down_arrive_exactly_once_when_it_returns() {
    let mut clickhouse = PrivateClickHouse::start().await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: clickhouse.url(),
        ..TestOptions::default()
    })
    .await;
    let token = tenant_with_owner(&app, "outage").await;
    app.raise_rate_limits("outage").await;
    let tenant = tenant_id(&app, "outage").await;

    clickhouse.stop();
    create_records(&app, "outage", &token, N).await;
    app.data.events.flush().await;
    assert!(app.data.events.spooled_bytes() > 0, "nothing was spooled");
    // A spool with room keeps the node ready.
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["clickhouse"], "spooling", "{body}");

    clickhouse.resume().await;
    let (rows, distinct) = wait_for_events(
        &app,
        &tenant,
        "records.create",
        N as u64,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!((rows, distinct), (N as u64, N as u64));
    // The spool drains completely, and nothing more arrives after it has.
    let drained = TestApp::eventually(Duration::from_secs(90), || async {
        app.data.events.spooled_bytes() == 0
    })
    .await;
    assert!(
        drained.is_some(),
        "the spool did not drain: {} bytes left, (inserted, spooled batches) {:?}, ClickHouse ok {}",
        app.data.events.spooled_bytes(),
        app.data.events.counters(),
        app.data.events.clickhouse_ok()
    );
    app.data.events.flush().await;
    let (rows, distinct) = super::stored_events(&app, &tenant, "records.create").await;
    assert_eq!((rows, distinct), (N as u64, N as u64));
    let output = crate::cli::run(&app, &["control-plane", "audit", "verify", "outage"])
        .await
        .unwrap();
    assert!(output.contains("verifies"), "{output}");
}

#[tokio::test]
async fn events_spooled_before_a_data_plane_restart_are_replayed_by_the_next_process() {
    let mut clickhouse = PrivateClickHouse::start().await;
    let mut app = TestApp::spawn_with(TestOptions {
        clickhouse_url: clickhouse.url(),
        ..TestOptions::default()
    })
    .await;
    let token = tenant_with_owner(&app, "restart").await;
    app.raise_rate_limits("restart").await;
    let tenant = tenant_id(&app, "restart").await;

    clickhouse.stop();
    create_records(&app, "restart", &token, N).await;
    app.restart_data_plane().await;
    // The new process holds the spool it inherited (ClickHouse is still down).
    assert!(
        app.data.events.spooled_bytes() > 0,
        "the new node found no spool"
    );
    clickhouse.resume().await;
    let (rows, distinct) = wait_for_events(
        &app,
        &tenant,
        "records.create",
        N as u64,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!((rows, distinct), (N as u64, N as u64));
    let drained = TestApp::eventually(Duration::from_secs(90), || async {
        app.data.events.spooled_bytes() == 0
    })
    .await;
    assert!(
        drained.is_some(),
        "the spool did not drain: {} bytes left, (inserted, spooled batches) {:?}, ClickHouse ok {}",
        app.data.events.spooled_bytes(),
        app.data.events.counters(),
        app.data.events.clickhouse_ok()
    );
    let (rows, distinct) = super::stored_events(&app, &tenant, "records.create").await;
    assert_eq!((rows, distinct), (N as u64, N as u64));
}

#[tokio::test]
async fn a_full_spool_refuses_audited_changes_with_503_and_makes_the_node_unready() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "fullspool").await;
    app.raise_rate_limits("fullspool").await;
    // A second node whose ClickHouse is unreachable and whose spool holds one batch.
    let options = TestOptions {
        clickhouse_url: "http://127.0.0.1:9".to_owned(),
        spool_max_bytes: 1,
        spool_dir: Some(
            std::env::temp_dir()
                .join("tenantry-tests")
                .join(format!("spool-full-{}", uuid::Uuid::new_v4().simple())),
        ),
        ..TestOptions::default()
    };
    let (node, url) = app.spawn_data_node(&options).await;
    let post = |title: &'static str| {
        let app = &app;
        let url = url.clone();
        let token = token.clone();
        async move {
            crate::users_admin::call_on(
                app,
                &url,
                Method::POST,
                "fullspool",
                "/v1/collections/tasks/records",
                &token,
                Some(json!({"title": title})),
            )
            .await
        }
    };
    assert_eq!(post("first").await.status(), StatusCode::CREATED);
    node.events.flush().await;
    assert!(!node.events.has_room());
    let refused = post("second").await;
    let (status, code) = error_code(refused).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable")
    );
    // Nothing was written by the refused request.
    let listed = call(
        &app,
        Method::GET,
        "fullspool",
        "/v1/collections/tasks/records",
        &token,
        None,
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(listed["records"].as_array().unwrap().len(), 1, "{listed}");
    // Reads still work; readiness says the node cannot take audited changes.
    let read =
        crate::users_admin::call_on(&app, &url, Method::GET, "fullspool", "/v1/me", &token, None)
            .await;
    assert_eq!(read.status(), StatusCode::OK);
    let response = app.http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["events"], "unavailable", "{body}");
}
