//! A Postgres that stops answering (connections open, nothing answered) never hangs a node:
//! requests get 503 within the node's deadline, readiness says not ready, and once Postgres
//! answers again the node serves as before.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::hanging_proxy::{HangingProxy, PATIENCE};
use tenantry_tests::TestApp;

use crate::users_admin::tenant_with_owner;

#[tokio::test]
async fn a_hung_postgres_gets_requests_a_503_within_the_deadline_and_the_node_recovers() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "hung").await;
    app.raise_rate_limits("hung").await;
    // A node whose Postgres connections all go through the proxy, with a 1 s statement
    // timeout (so its round-trip deadline is 3 s).
    let upstream: tokio_postgres::Config = app.database_url.parse().unwrap();
    let port = upstream.get_ports().first().copied().unwrap_or(5432);
    let proxy = HangingProxy::start(([127, 0, 0, 1], port).into()).await;
    let mut config = tenantry_tests::data_config(
        &app.database_url,
        &app.role_prefix,
        &app.kek_file(),
        &app.options,
    );
    let proxied = app
        .database_url
        .replace(&format!(":{port}/"), &format!(":{}/", proxy.port()));
    config.database =
        shared::db::pg_config(&proxied, Some(app.role_prefix.data_plane_role().as_str())).unwrap();
    config.statement_timeout_ms = 1000;
    let data = data_plane::DataPlane::new(config).unwrap();
    data.wait_until_listening().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(data_plane::server::build(data, listener).unwrap());
    let http = reqwest::Client::new();
    let create = |title: &str| {
        http.post(format!("{url}/v1/collections/tasks/records"))
            .header("X-Tenant", "hung")
            .bearer_auth(&token)
            .timeout(PATIENCE)
            .json(&json!({ "title": title }))
            .send()
    };
    assert_eq!(
        create("before").await.unwrap().status(),
        StatusCode::CREATED
    );

    proxy.freeze();
    let response = create("while hung")
        .await
        .expect("the request hung as long as Postgres did");
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    let ready = http
        .get(format!("{url}/readyz"))
        .timeout(PATIENCE)
        .send()
        .await
        .expect("/readyz hung as long as Postgres did");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "unavailable", "{body}");

    proxy.thaw();
    let recovered = TestApp::eventually(PATIENCE, || async {
        create("after")
            .await
            .is_ok_and(|response| response.status() == StatusCode::CREATED)
    })
    .await;
    assert!(
        recovered.is_some(),
        "the node did not serve again after Postgres did"
    );
}
