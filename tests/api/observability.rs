//! What operators watch: both planes' `/metrics` show sign-in outcomes, 429s by rate class,
//! the event writer, the Postgres pools by cluster and the process; `/metrics` can move off
//! the public port; every log line written while serving a request names its request id and
//! tenant.

use reqwest::StatusCode;
use serde_json::Value;
use tenantry_tests::node_process::{free_port, NodeProcess};
use tenantry_tests::{failed_sign_in, metric_value, metrics_text, TestApp};

/// A wrong-password sign-in at `slug` through `base_url`, with `request_id`; its status.
async fn wrong_sign_in(app: &TestApp, base_url: &str, slug: &str, request_id: &str) -> StatusCode {
    failed_sign_in(&app.tenant(slug).on(base_url), "X-Request-Id", request_id).await
}

#[tokio::test]
async fn the_data_planes_metrics_show_sign_ins_rate_classes_writer_pools_and_process() {
    let app = TestApp::spawn().await;
    app.tenant_with_owner("watched").await;
    // Wrong passwords until the credential limit refuses one.
    let mut refused = false;
    for attempt in 0..40 {
        let status = wrong_sign_in(&app, &app.data_url, "watched", &format!("w-{attempt}")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = true;
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert!(refused, "the credential limit never refused");

    let seen = std::cell::RefCell::new(String::new());
    let delivered = TestApp::eventually(std::time::Duration::from_secs(10), || async {
        let metrics = metrics_text(&app.http, &app.data_url).await;
        let delivered = metric_value(&metrics, "tenantry_event_writer_delivered_total");
        *seen.borrow_mut() = metrics;
        delivered.is_some_and(|delivered| delivered > 0.0)
    })
    .await;
    let metrics = seen.into_inner();
    assert!(
        delivered.is_some(),
        "the writer's deliveries are not counted:\n{metrics}"
    );
    let value = |series: &str| metric_value(&metrics, series);
    let login = |outcome: &str| {
        value(&format!(
            "tenantry_sign_ins_total{{action=\"auth.login\",outcome=\"{outcome}\"}}"
        ))
    };
    assert!(login("success") >= Some(1.0), "{metrics}");
    assert!(login("invalid_credentials") >= Some(1.0), "{metrics}");
    assert!(login("rate_limited") >= Some(1.0), "{metrics}");
    assert!(value("tenantry_rate_limited_total{class=\"auth\"}") >= Some(1.0));
    assert_eq!(value("tenantry_event_writer_clickhouse_up"), Some(1.0));
    assert!(value("tenantry_event_writer_queued").is_some());
    assert!(value("tenantry_event_writer_spool_bytes").is_some());
    assert!(value("tenantry_postgres_pool_max_connections{cluster=\"primary\"}") > Some(0.0));
    assert!(value("tenantry_postgres_pool_connections{cluster=\"primary\"}") > Some(0.0));
    assert!(value("tenantry_process_resident_memory_bytes") > Some(0.0));
    assert!(value("tenantry_process_open_fds") > Some(0.0));
}

#[tokio::test]
async fn the_control_planes_metrics_show_its_writer_pools_and_process() {
    let app = TestApp::spawn().await;
    // A tenant created: a lifecycle audit event for the writer, catalog connections in use.
    app.create_tenant("counted").await;
    app.control.flush_events().await;
    let metrics = metrics_text(&app.http, &app.control_url).await;
    let value = |series: &str| metric_value(&metrics, series);
    assert!(
        value("tenantry_event_writer_delivered_total") >= Some(1.0),
        "{metrics}"
    );
    assert!(value("tenantry_postgres_pool_max_connections{cluster=\"primary\"}") > Some(0.0));
    assert!(value("tenantry_process_resident_memory_bytes") > Some(0.0));
}

#[tokio::test]
async fn metrics_on_their_own_address_leave_the_public_port_and_logs_name_request_and_tenant() {
    let app = TestApp::spawn().await;
    app.create_tenant("traced").await;
    let metrics_port = free_port();
    let node = NodeProcess::start(
        &app,
        free_port(),
        &[
            ("data_metrics_listen", format!("127.0.0.1:{metrics_port}")),
            ("auth_rate_limit_burst", "1".to_owned()),
            ("auth_rate_limit_per_minute", "1".to_owned()),
        ],
    )
    .await;

    // Not on the public port; on its own.
    let public = app
        .http
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let metrics_url = format!("http://127.0.0.1:{metrics_port}");
    let metrics = metrics_text(&app.http, &metrics_url).await;
    assert!(
        metric_value(&metrics, "tenantry_process_resident_memory_bytes") > Some(0.0),
        "{metrics}"
    );

    // A refusal is logged inside the request's span: its id and tenant are on the line.
    assert_eq!(
        wrong_sign_in(&app, &node.url, "traced", "traced-first").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        wrong_sign_in(&app, &node.url, "traced", "traced-second").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let line_of_request = || {
        node.log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["span"]["request_id"] == "traced-second")
    };
    let logged = TestApp::eventually(std::time::Duration::from_secs(5), || async {
        line_of_request().is_some()
    })
    .await;
    assert!(
        logged.is_some(),
        "no line of the request:\n{}",
        node.log_text()
    );
    let line = line_of_request().unwrap();
    assert_eq!(line["span"]["name"], "request", "{line}");
    assert_eq!(line["span"]["tenant"], "traced", "{line}");
}
