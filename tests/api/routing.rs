use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tenantry_tests::{TestApp, TestOptions, BASE_DOMAIN, OWNER_EMAIL, PASSWORD};

#[tokio::test]
async fn the_tenant_is_resolved_from_its_host_a_custom_domain_or_the_header() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let node = app.data_client();
    let get = |host: &str| node.get("/v1/tenant").header("Host", host).send();

    let by_host = get(&format!("acme.{BASE_DOMAIN}")).await.unwrap().value();
    assert_eq!(by_host["slug"], "acme");
    let by_host_with_port = get(&format!("GLOBEX.{BASE_DOMAIN}:443"))
        .await
        .unwrap()
        .value();
    assert_eq!(by_host_with_port["slug"], "globex");
    let by_header: Value = app.tenant("globex").get("/v1/tenant").ok().await.unwrap();
    assert_eq!(by_header["slug"], "globex");

    let unregistered = get("portal.acme.example").await.unwrap();
    assert_eq!(unregistered.status(), StatusCode::NOT_FOUND);
    let operator = app.operator_api();
    let tenants = operator.tenants();
    tenants
        .add_domain("acme", "Portal.Acme.Example")
        .await
        .unwrap();
    // The node cached the miss above; the catalog's NOTIFY clears it, asynchronously.
    let served_within = TestApp::eventually(Duration::from_secs(1), || async {
        let Ok(reply) = get("portal.acme.example").await else {
            return false;
        };
        reply.value()["slug"] == "acme"
    })
    .await;
    assert!(
        served_within.is_some(),
        "a new custom domain was not served within a second"
    );
    let taken = tenants
        .add_domain("globex", "portal.acme.example")
        .await
        .unwrap_err();
    assert_eq!(taken.status(), Some(StatusCode::CONFLICT));
    let under_base = tenants
        .add_domain("globex", &format!("acme.{BASE_DOMAIN}"))
        .await
        .unwrap_err();
    assert_eq!(under_base.status(), Some(StatusCode::BAD_REQUEST));

    // Host and header naming different tenants is refused, not guessed.
    let mismatch = app
        .tenant("globex")
        .get("/v1/tenant")
        .header("Host", &format!("acme.{BASE_DOMAIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        mismatch.error_code(),
        (StatusCode::BAD_REQUEST, "tenant_mismatch")
    );
}

#[tokio::test]
async fn a_custom_domain_with_an_x_tenant_naming_another_tenant_gets_400_tenant_mismatch() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", OWNER_EMAIL, PASSWORD)
        .await;
    app.create_tenant("globex").await;
    app.operator_api()
        .tenants()
        .add_domain("acme", "portal.acme.example")
        .await
        .unwrap();
    let node = app.data_client();
    let at_portal = |method: Method, path: &str, tenant: Option<&str>| {
        let call = node
            .call(method, path)
            .header("Host", "portal.acme.example");
        match tenant {
            Some(slug) => call.header("X-Tenant", slug),
            None => call,
        }
    };
    // The domain may be cached as unknown from before the NOTIFY: wait until it is served.
    let served = TestApp::eventually(Duration::from_secs(1), || async {
        let Ok(reply) = at_portal(Method::GET, "/v1/tenant", None).send().await else {
            return false;
        };
        reply.status() == StatusCode::OK
    })
    .await;
    assert!(served.is_some(), "the custom domain was not served");

    // A header naming the domain's own tenant is fine.
    let same: Value = at_portal(Method::GET, "/v1/tenant", Some("acme"))
        .ok()
        .await
        .unwrap();
    assert_eq!(same["slug"], "acme");

    // Another tenant: refused, whether the request reads or signs in.
    for (method, path) in [
        (Method::GET, "/v1/tenant"),
        (Method::POST, "/v1/auth/login"),
    ] {
        let reply = at_portal(method.clone(), path, Some("globex"))
            .json(&json!({"email": OWNER_EMAIL, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            reply.error_code(),
            (StatusCode::BAD_REQUEST, "tenant_mismatch"),
            "{method} {path}: {}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn unknown_tenants_and_routes_get_json_404s_with_the_request_id() {
    let app = TestApp::spawn().await;
    let nobody = app.tenant("nobody");
    let reply = nobody
        .get("/v1/tenant")
        .header("X-Request-Id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.error_code(),
        (StatusCode::NOT_FOUND, "tenant_not_found")
    );
    assert_eq!(reply.header("x-request-id"), Some("req-123"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        reply.error().unwrap().request_id.as_deref(),
        Some("req-123")
    );

    let node = app.data_client();
    let no_tenant = node.get("/v1/tenant").send().await.unwrap();
    assert_eq!(no_tenant.status(), StatusCode::NOT_FOUND);
    let generated_id = no_tenant.header("x-request-id").unwrap();
    assert!(uuid::Uuid::parse_str(generated_id).is_ok());

    let hostile_id = nobody
        .get("/v1/tenant")
        .header("X-Request-Id", "<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(hostile_id.header("x-request-id").unwrap(), "<script>");

    let route = node.get("/v1/nothing-here").send().await.unwrap();
    assert_eq!(
        route.error_code(),
        (StatusCode::NOT_FOUND, "route_not_found")
    );
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.tenant("acme").get("/v1/tenant").send().await.unwrap();

    let node = app.data_client();
    let health = node.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = node.get("/readyz").send().await.unwrap();
    let body = ready.value();
    assert_eq!(ready.status(), StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["clickhouse"], "ok");

    let metrics = tenantry_tests::metrics_text(&app.http, &app.data_url).await;
    assert!(
        metrics.contains("tenantry_http_requests_total{status=\"2xx\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tenantry_tenant_cache_misses_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn readiness_stays_ready_while_clickhouse_is_unreachable_and_the_spool_has_room() {
    let app = TestApp::spawn().await;
    let options = TestOptions {
        clickhouse_url: "http://127.0.0.1:9".to_owned(),
        ..TestOptions::default()
    };
    let (_node, url) = app.spawn_data_node(&options).await;
    let ready = app
        .data_client()
        .on(&url)
        .get("/readyz")
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body = ready.value();
    assert_eq!(body["checks"]["clickhouse"], "spooling");
    assert_eq!(body["checks"]["events"], "ok");
    assert_eq!(body["checks"]["postgres"], "ok");
}
