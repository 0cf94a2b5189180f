//! A ClickHouse that hangs (SIGSTOP: connections are accepted, nothing is answered) never
//! hangs the node: readiness, the audit and usage APIs answer promptly, writes go on (their
//! events wait in the spool), and the events arrive once ClickHouse runs again.
//!
//! Each request below is sent with a client timeout several times the node's own deadline:
//! without the deadline the request would wait as long as the freeze, which never ends.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::private_clickhouse::PrivateClickHouse;
use tenantry_tests::{TestApp, TestOptions};

use super::{tenant_id, wait_for_events};
use crate::users_admin::tenant_with_owner;

async fn get(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    limit: Duration,
) -> (StatusCode, Value) {
    let mut request = app
        .http
        .get(format!("{}{path}", app.data_url))
        .header("X-Tenant", "frozen")
        .timeout(limit);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("{path} did not answer within {limit:?}: {error}"));
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_frozen_clickhouse_makes_the_audit_apis_answer_503_and_leaves_the_node_ready() {
    let clickhouse = PrivateClickHouse::start().await;
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: clickhouse.url(),
        ..TestOptions::default()
    })
    .await;
    let token = tenant_with_owner(&app, "frozen").await;
    app.raise_rate_limits("frozen").await;
    let tenant = tenant_id(&app, "frozen").await;

    clickhouse.freeze();
    // Readiness: its checks have an 0.8 s deadline; a spool with room keeps the node ready.
    let (status, body) = get(&app, "/readyz", None, Duration::from_secs(5)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["clickhouse"], "spooling", "{body}");
    // Audit and usage queries: a 3 s deadline, then 503.
    for (path, code) in [
        ("/v1/admin/audit", "audit_store_unavailable"),
        ("/v1/admin/usage", "usage_store_unavailable"),
    ] {
        let (status, body) = get(&app, path, Some(&token), Duration::from_secs(15)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    // Writes go on: the request path never waits on ClickHouse.
    for index in 0..3 {
        let response = app
            .http
            .post(format!("{}/v1/collections/tasks/records", app.data_url))
            .header("X-Tenant", "frozen")
            .bearer_auth(&token)
            .timeout(Duration::from_secs(15))
            .json(&json!({"title": format!("while frozen {index}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    clickhouse.thaw();
    let (rows, distinct) =
        wait_for_events(&app, &tenant, "records.create", 3, Duration::from_secs(60)).await;
    assert_eq!((rows, distinct), (3, 3));
    let (status, body) = get(
        &app,
        "/v1/admin/audit",
        Some(&token),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
