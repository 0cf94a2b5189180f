//! A Postgres that stops answering (connections open, nothing answered) never hangs a node:
//! requests get 503 within the node's deadline, readiness says not ready, and once Postgres
//! answers again the node serves as before. The control plane answers the same 503 when its
//! catalog pool has no connection to give, busy or unreachable, and 503 `request_timeout`
//! when Postgres stops answering in the middle of a request.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tenantry_tests::client::Call;
use tenantry_tests::hanging_proxy::{HangingProxy, PATIENCE};
use tenantry_tests::{Operator, Reply, TestApp};

/// Sends `call`, giving up after the proxy's patience: far longer than any deadline of the
/// node's, as long as a hung database would make a request wait without one.
async fn patiently(call: Call<'_>) -> Result<Reply, String> {
    match tokio::time::timeout(PATIENCE, call.send()).await {
        Ok(answer) => answer.map_err(|error| error.to_string()),
        Err(_) => Err(format!("no answer within {PATIENCE:?}")),
    }
}

#[tokio::test]
async fn a_hung_postgres_gets_requests_a_503_within_the_deadline_and_the_node_recovers() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("hung").await;
    app.raise_rate_limits("hung").await;
    // A tenant the node has not looked up yet.
    app.create_tenant("unseen").await;
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
    config.listen_database = config.database.clone();
    config.statement_timeout_ms = 1000;
    let data = data_plane::DataPlane::new(config).unwrap();
    data.wait_until_listening().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(data_plane::server::build(data.clone(), listener).unwrap());
    let on_node = owner.on(&url);
    let create = |title: &str| {
        patiently(
            on_node
                .post("/v1/collections/tasks/records")
                .json(&json!({ "title": title })),
        )
    };
    assert_eq!(
        create("before").await.unwrap().status(),
        StatusCode::CREATED
    );

    proxy.freeze();
    let reply = create("while hung")
        .await
        .expect("the request hung as long as Postgres did");
    assert_database_unavailable(&reply);
    // Reads too, public and signed in: the same 503, never a 500.
    for path in ["/v1/tenant", "/v1/me/sessions"] {
        let reply = patiently(on_node.get(path))
            .await
            .unwrap_or_else(|error| panic!("{path}: {error}"));
        assert_database_unavailable(&reply);
    }
    // A tenant not cached on the node is looked up in the catalog within the same deadline.
    let unseen = patiently(app.tenant("unseen").on(&url).get("/v1/tenant"))
        .await
        .expect("a tenant lookup hung as long as Postgres did");
    assert_eq!(
        unseen.error_code(),
        (StatusCode::SERVICE_UNAVAILABLE, "catalog_unavailable"),
        "{}",
        unseen.text()
    );
    assert!(unseen.header("retry-after").is_some());
    // A tenant's data keys, not cached (a tenant change evicts them), are read from the catalog
    // within the same deadline: the 503 of any other wait, never a 500 or a hang.
    let tenant_id: uuid::Uuid = app.tenant_id("hung").await.parse().unwrap();
    data.data_keys.invalidate(tenant_id).await;
    let keys = tokio::time::timeout(PATIENCE, data.data_keys.for_tenant(tenant_id))
        .await
        .expect("reading the data keys hung as long as Postgres did");
    let refusal = shared::error::ApiError::from(keys.err().expect("keys from a hung catalog"));
    assert_eq!(
        (refusal.status().as_u16(), refusal.code()),
        (503, "database_unavailable")
    );
    let ready = patiently(on_node.anonymous().get("/readyz"))
        .await
        .expect("/readyz hung as long as Postgres did");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.value();
    assert_eq!(body["checks"]["postgres"], "unavailable", "{body}");

    proxy.thaw();
    let recovered = TestApp::eventually(PATIENCE, || async {
        create("after")
            .await
            .is_ok_and(|reply| reply.status() == StatusCode::CREATED)
    })
    .await;
    assert!(
        recovered.is_some(),
        "the node did not serve again after Postgres did"
    );
}

/// A control plane with a pool of one connection, serving on a port of its own.
async fn control_plane_with_one_connection(
    app: &TestApp,
    database: tokio_postgres::Config,
) -> (control_plane::ControlPlane, String) {
    control_plane_with(app, database, app.control.config.request_deadline).await
}

/// The same with `request_deadline` as its `control_request_deadline_ms`.
async fn control_plane_with(
    app: &TestApp,
    database: tokio_postgres::Config,
    request_deadline: std::time::Duration,
) -> (control_plane::ControlPlane, String) {
    let control = control_plane::ControlPlane {
        pool: shared::db::pool(database, 1).unwrap(),
        config: std::sync::Arc::new(control_plane::config::Config {
            request_deadline,
            ..(*app.control.config).clone()
        }),
        ..app.control.clone()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(control_plane::server::build(control.clone(), listener).unwrap());
    (control, url)
}

/// `GET /v1/tenants` as the operator, with the proxy's patience.
async fn list_tenants(app: &TestApp, url: &str) -> Reply {
    let operator = Operator::with_http(app.http.clone(), url, &app.operator_token);
    patiently(operator.call(Method::GET, "/v1/tenants"))
        .await
        .expect("the control plane hung as long as its pool did")
}

/// A proxy in front of the app's catalog Postgres, and the connection settings through it.
async fn catalog_behind_a_proxy(app: &TestApp) -> (HangingProxy, tokio_postgres::Config) {
    let upstream: tokio_postgres::Config = app.control.config.database_url.parse().unwrap();
    let port = upstream.get_ports().first().copied().unwrap_or(5432);
    let proxy = HangingProxy::start(([127, 0, 0, 1], port).into()).await;
    let proxied = app
        .control
        .config
        .database_url
        .replace(&format!(":{port}/"), &format!(":{}/", proxy.port()));
    (proxy, shared::db::pg_config(&proxied, None).unwrap())
}

/// Waits until the control plane at `url` lists tenants again (its Postgres answers again).
async fn serves_again(app: &TestApp, url: &str) {
    let recovered = TestApp::eventually(PATIENCE, || async {
        list_tenants(app, url).await.status() == StatusCode::OK
    })
    .await;
    assert!(
        recovered.is_some(),
        "the control plane did not serve again after Postgres did"
    );
}

fn assert_database_unavailable(reply: &Reply) {
    assert_eq!(
        reply.error_code(),
        (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
        "{}",
        reply.text()
    );
    assert!(
        reply.error().unwrap().request_id.is_some(),
        "{}",
        reply.text()
    );
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("no Retry-After on the 503")
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
}

#[tokio::test]
async fn a_control_plane_whose_pool_is_exhausted_answers_503_and_serves_once_a_connection_is_free()
{
    let app = TestApp::spawn().await;
    let database = shared::db::pg_config(&app.control.config.database_url, None).unwrap();
    let (control, url) = control_plane_with_one_connection(&app, database).await;
    assert_eq!(list_tenants(&app, &url).await.status(), StatusCode::OK);

    assert_eq!(refusals(&app, &url, "database_unavailable").await, None);

    let held = control.pool.get().await.unwrap();
    let asked = std::time::Instant::now();
    assert_database_unavailable(&list_tenants(&app, &url).await);
    // The pool's wait (5 s) bounds it, far inside the client's patience.
    assert!(asked.elapsed() < PATIENCE / 2, "took {:?}", asked.elapsed());
    // Operators see it in the control plane's metrics, counted by code.
    assert_eq!(refusals(&app, &url, "database_unavailable").await, Some(1));

    drop(held);
    assert_eq!(list_tenants(&app, &url).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_control_plane_whose_postgres_does_not_answer_answers_503_and_recovers() {
    let app = TestApp::spawn().await;
    let (proxy, database) = catalog_behind_a_proxy(&app).await;
    // Frozen before the pool's first connection: making one is what hangs.
    proxy.freeze();
    let (_control, url) = control_plane_with_one_connection(&app, database).await;

    let asked = std::time::Instant::now();
    assert_database_unavailable(&list_tenants(&app, &url).await);
    assert!(asked.elapsed() < PATIENCE / 2, "took {:?}", asked.elapsed());

    proxy.thaw();
    serves_again(&app, &url).await;
}

#[tokio::test]
async fn a_control_plane_whose_postgres_stops_answering_mid_request_answers_503_within_its_deadline(
) {
    let app = TestApp::spawn().await;
    let (proxy, database) = catalog_behind_a_proxy(&app).await;
    let (_control, url) =
        control_plane_with(&app, database, std::time::Duration::from_secs(1)).await;
    // The pool holds its one connection, made while Postgres answered; then Postgres stops
    // answering on it, so no wait for the pool (5 s) is what could end the request.
    assert_eq!(list_tenants(&app, &url).await.status(), StatusCode::OK);
    proxy.freeze();

    let refused = list_tenants(&app, &url).await;
    assert_eq!(
        refused.error_code(),
        (StatusCode::SERVICE_UNAVAILABLE, "request_timeout"),
        "{}",
        refused.text()
    );
    assert!(refused.error().unwrap().request_id.is_some());
    assert_eq!(refusals(&app, &url, "request_timeout").await, Some(1));

    proxy.thaw();
    serves_again(&app, &url).await;
}

/// How many 503s with `code` the control plane at `url` counts in its metrics.
async fn refusals(app: &TestApp, url: &str, code: &str) -> Option<u64> {
    let metrics = tenantry_tests::metrics_text(&app.http, url).await;
    tenantry_tests::refusals_counted(&metrics, 503, code)
}
