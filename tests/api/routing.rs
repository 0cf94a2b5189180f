use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tenantry_tests::{TestApp, TestOptions, BASE_DOMAIN};

#[tokio::test]
async fn the_tenant_is_resolved_from_its_host_a_custom_domain_or_the_header() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let get = |host: &str| {
        app.http
            .get(format!("{}/v1/tenant", app.data_url))
            .header("Host", host.to_owned())
            .send()
    };

    let by_host: Value = get(&format!("acme.{BASE_DOMAIN}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_host["slug"], "acme");
    let by_host_with_port: Value = get(&format!("GLOBEX.{BASE_DOMAIN}:443"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_host_with_port["slug"], "globex");
    let by_header: Value = app
        .tenant_get("globex", "/v1/tenant")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_header["slug"], "globex");

    let unregistered = get("portal.acme.example").await.unwrap();
    assert_eq!(unregistered.status(), StatusCode::NOT_FOUND);
    let added = app
        .operator(Method::POST, "/v1/tenants/acme/domains")
        .json(&json!({"domain": "Portal.Acme.Example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    // The node cached the miss above; the catalog's NOTIFY clears it, asynchronously.
    let served_within = TestApp::eventually(Duration::from_secs(1), || async {
        let Ok(response) = get("portal.acme.example").await else {
            return false;
        };
        let body: Value = response.json().await.unwrap_or_default();
        body["slug"] == "acme"
    })
    .await;
    assert!(
        served_within.is_some(),
        "a new custom domain was not served within a second"
    );
    let taken = app
        .operator(Method::POST, "/v1/tenants/globex/domains")
        .json(&json!({"domain": "portal.acme.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let under_base = app
        .operator(Method::POST, "/v1/tenants/globex/domains")
        .json(&json!({"domain": format!("acme.{BASE_DOMAIN}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(under_base.status(), StatusCode::BAD_REQUEST);

    // Host and header naming different tenants is refused, not guessed.
    let mismatch = app
        .http
        .get(format!("{}/v1/tenant", app.data_url))
        .header("Host", format!("acme.{BASE_DOMAIN}"))
        .header("X-Tenant", "globex")
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    let body: Value = mismatch.json().await.unwrap();
    assert_eq!(body["error"]["code"], "tenant_mismatch");
}

#[tokio::test]
async fn a_custom_domain_with_an_x_tenant_naming_another_tenant_gets_400_tenant_mismatch() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "olga@acme.example", "correct horse battery staple")
        .await;
    app.create_tenant("globex").await;
    let added = app
        .operator(Method::POST, "/v1/tenants/acme/domains")
        .json(&json!({"domain": "portal.acme.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let at_portal = |method: Method, path: &str, tenant: Option<&str>| {
        let request = app
            .http
            .request(method, format!("{}{path}", app.data_url))
            .header("Host", "portal.acme.example");
        match tenant {
            Some(slug) => request.header("X-Tenant", slug.to_owned()),
            None => request,
        }
    };
    // The domain may be cached as unknown from before the NOTIFY: wait until it is served.
    let served = TestApp::eventually(Duration::from_secs(1), || async {
        let Ok(response) = at_portal(Method::GET, "/v1/tenant", None).send().await else {
            return false;
        };
        response.status() == StatusCode::OK
    })
    .await;
    assert!(served.is_some(), "the custom domain was not served");

    // A header naming the domain's own tenant is fine.
    let same: Value = at_portal(Method::GET, "/v1/tenant", Some("acme"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(same["slug"], "acme");

    // Another tenant: refused, whether the request reads or signs in.
    for (method, path) in [
        (Method::GET, "/v1/tenant"),
        (Method::POST, "/v1/auth/login"),
    ] {
        let response = at_portal(method.clone(), path, Some("globex"))
            .json(
                &json!({"email": "olga@acme.example", "password": "correct horse battery staple"}),
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "tenant_mismatch", "{method} {path}");
    }
}

#[tokio::test]
async fn unknown_tenants_and_routes_get_json_404s_with_the_request_id() {
    let app = TestApp::spawn().await;
    let response = app
        .tenant_get("nobody", "/v1/tenant")
        .header("X-Request-Id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-request-id"], "req-123");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "tenant_not_found");
    assert_eq!(body["error"]["request_id"], "req-123");

    let no_tenant = app
        .http
        .get(format!("{}/v1/tenant", app.data_url))
        .send()
        .await
        .unwrap();
    assert_eq!(no_tenant.status(), StatusCode::NOT_FOUND);
    let generated_id = no_tenant.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated_id).is_ok());

    let hostile_id = app
        .tenant_get("nobody", "/v1/tenant")
        .header("X-Request-Id", "<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(hostile_id.headers()["x-request-id"], "<script>");

    let route = app
        .http
        .get(format!("{}/v1/nothing-here", app.data_url))
        .send()
        .await
        .unwrap();
    assert_eq!(route.status(), StatusCode::NOT_FOUND);
    let body: Value = route.json().await.unwrap();
    assert_eq!(body["error"]["code"], "route_not_found");
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.tenant_get("acme", "/v1/tenant").send().await.unwrap();

    let health = app
        .http
        .get(format!("{}/healthz", app.data_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app
        .http
        .get(format!("{}/readyz", app.data_url))
        .send()
        .await
        .unwrap();
    let status = ready.status();
    let body: Value = ready.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
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
    let ready = app.http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["clickhouse"], "spooling");
    assert_eq!(body["checks"]["events"], "ok");
    assert_eq!(body["checks"]["postgres"], "ok");
}
