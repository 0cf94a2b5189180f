//! A ClickHouse that hangs (SIGSTOP: connections are accepted, nothing is answered) never
//! hangs the node: readiness, the audit and usage APIs answer promptly, writes go on (their
//! events wait in the spool), and the events arrive once ClickHouse runs again.
//!
//! Each request below is sent with a client timeout several times the node's own deadline:
//! without the deadline the request would wait as long as the freeze, which never ends.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::client::Call;
use tenantry_tests::private_clickhouse::PrivateClickHouse;
use tenantry_tests::{Client, Reply, TestApp, TestOptions};

/// Sends `call`, panicking if no answer comes within `limit`.
async fn within(limit: Duration, call: Call<'_>) -> Reply {
    tokio::time::timeout(limit, call.send())
        .await
        .unwrap_or_else(|_| panic!("no answer within {limit:?}"))
        .unwrap()
}

async fn get(caller: &Client, path: &str, limit: Duration) -> (StatusCode, Value) {
    let reply = within(limit, caller.get(path)).await;
    (reply.status(), reply.value())
}

#[tokio::test]
async fn a_frozen_clickhouse_makes_the_audit_apis_answer_503_and_leaves_the_node_ready() {
    let clickhouse = PrivateClickHouse::start().await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: clickhouse.url(),
        ..TestOptions::default()
    })
    .await;
    let owner = app.tenant_with_owner("frozen").await;
    app.raise_rate_limits("frozen").await;
    let tenant = app.tenant_id("frozen").await;

    clickhouse.freeze();
    // Readiness: its checks have an 0.8 s deadline; a spool with room keeps the node ready.
    let (status, body) = get(&owner.anonymous(), "/readyz", Duration::from_secs(5)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["clickhouse"], "spooling", "{body}");
    // Audit and usage queries: a 3 s deadline, then 503.
    for (path, code) in [
        ("/v1/admin/audit", "audit_store_unavailable"),
        ("/v1/admin/usage", "usage_store_unavailable"),
    ] {
        let (status, body) = get(&owner, path, Duration::from_secs(15)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    // Writes go on: the request path never waits on ClickHouse.
    for index in 0..3 {
        let created = within(
            Duration::from_secs(15),
            owner
                .post("/v1/collections/tasks/records")
                .json(&json!({"title": format!("while frozen {index}")})),
        )
        .await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }

    clickhouse.thaw();
    let (rows, distinct) = app
        .wait_for_audit_events(&tenant, "records.create", 3, Duration::from_secs(60))
        .await;
    assert_eq!((rows, distinct), (3, 3));
    let (status, body) = get(&owner, "/v1/admin/audit", Duration::from_secs(15)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
