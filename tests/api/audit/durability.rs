//! The writer through ClickHouse outages, a data-plane restart and a full spool. Each test
//! runs its own ClickHouse server ([`PrivateClickHouse`]) so stopping it disturbs no other
//! test run.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::client::ListQuery;
use tenantry_tests::private_clickhouse::PrivateClickHouse;
use tenantry_tests::{TestApp, TestOptions};

use super::create_records;

const N: usize = 25;

async fn ready(app: &TestApp) -> (StatusCode, Value) {
    let reply = app.data_client().get("/readyz").send().await.unwrap();
    (reply.status(), reply.json().unwrap())
}

#[tokio::test]
async fn events_made_while_clickhouse_is_down_arrive_exactly_once_when_it_returns() {
    let mut clickhouse = PrivateClickHouse::start().await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: clickhouse.url(),
        ..TestOptions::default()
    })
    .await;
    let owner = app.tenant_with_owner("outage").await;
    app.raise_rate_limits("outage").await;
    let tenant = app.tenant_id("outage").await;

    clickhouse.stop();
    create_records(&owner, N).await;
    app.data.events.flush().await;
    assert!(app.data.events.spooled_bytes() > 0, "nothing was spooled");
    // A spool with room keeps the node ready.
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["clickhouse"], "spooling", "{body}");

    clickhouse.resume().await;
    let (rows, distinct) = app
        .wait_for_audit_events(&tenant, "records.create", N as u64, Duration::from_secs(60))
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
    let (rows, distinct) = app.stored_audit_events(&tenant, "records.create").await;
    assert_eq!((rows, distinct), (N as u64, N as u64));
    let output = app
        .run_cli(&["control-plane", "audit", "verify", "outage"])
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
    let owner = app.tenant_with_owner("restart").await;
    app.raise_rate_limits("restart").await;
    let tenant = app.tenant_id("restart").await;

    clickhouse.stop();
    create_records(&owner, N).await;
    app.restart_data_plane().await;
    // The new process holds the spool it inherited (ClickHouse is still down).
    assert!(
        app.data.events.spooled_bytes() > 0,
        "the new node found no spool"
    );
    clickhouse.resume().await;
    let (rows, distinct) = app
        .wait_for_audit_events(&tenant, "records.create", N as u64, Duration::from_secs(60))
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
    let (rows, distinct) = app.stored_audit_events(&tenant, "records.create").await;
    assert_eq!((rows, distinct), (N as u64, N as u64));
}

#[tokio::test]
async fn a_full_spool_refuses_audited_changes_with_503_and_makes_the_node_unready() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("fullspool").await;
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
    let on_node = owner.on(&url);
    let post = |title: &'static str| {
        on_node
            .post("/v1/collections/tasks/records")
            .json(&json!({"title": title}))
            .send()
    };
    assert_eq!(post("first").await.unwrap().status(), StatusCode::CREATED);
    node.events.flush().await;
    assert!(!node.events.has_room());
    let refused = post("second").await.unwrap();
    assert_eq!(
        refused.error_code(),
        (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable")
    );
    // Nothing was written by the refused request.
    let listed = owner
        .records("tasks")
        .list(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.records.len(), 1, "{listed:?}");
    // Reads still work; readiness says the node cannot take audited changes.
    let read = on_node.get("/v1/me").send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let readiness = on_node.anonymous().get("/readyz").send().await.unwrap();
    assert_eq!(readiness.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = readiness.value();
    assert_eq!(body["checks"]["events"], "unavailable", "{body}");
}
