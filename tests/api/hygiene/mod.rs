//! Request hygiene: body limits (413), content types (415) and malformed JSON (400) answered
//! with the JSON envelope and without any change; security headers and request ids on every
//! response; per-tenant CORS (preflights, allowed and refused origins, propagation to every
//! node). The rules both planes hold every JSON body and header to (one content type, no
//! repeated keys, 431) are in `strict_input`.

mod strict_input;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp, TestOptions};

use crate::users_admin::{call, call_on, tenant_with_owner};

const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    // The test servers' public scheme is https.
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
];

/// Asserts the security headers and a request id, and that an error body is the JSON envelope
/// carrying that request id; returns the error code ("" for a success).
async fn checked(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            response.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} on a {status}"
        );
    }
    let request_id = response
        .headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no request id on a {status}"))
        .to_str()
        .unwrap()
        .to_owned();
    if status.is_success() {
        return (status, String::new());
    }
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/json", "a {status}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], request_id.as_str(), "{body}");
    let code = body["error"]["code"].as_str().unwrap().to_owned();
    (status, code)
}

async fn cors_policy(app: &TestApp, slug: &str, token: &str) -> Value {
    call(app, Method::GET, slug, "/v1/settings/cors", token, None)
        .await
        .json()
        .await
        .unwrap()
}

fn tenant_request(
    app: &TestApp,
    method: Method,
    slug: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    app.http
        .request(method, format!("{}{path}", app.data_url))
        .header("X-Tenant", slug)
}

#[tokio::test]
async fn oversized_bodies_get_413_json_and_change_nothing() {
    let app = TestApp::spawn_with(TestOptions {
        max_body_bytes: 256 * 1024,
        ..TestOptions::default()
    })
    .await;
    let owner = tenant_with_owner(&app, "acme").await;
    let before = cors_policy(&app, "acme", &owner).await;

    // Over the JSON limit (64 KiB), under the node's.
    let origins: Vec<String> = (0..3000)
        .map(|index| format!("https://app{index}.example.com"))
        .collect();
    let response = call(
        &app,
        Method::PUT,
        "acme",
        "/v1/settings/cors",
        &owner,
        Some(json!({ "allowed_origins": origins })),
    )
    .await;
    assert_eq!(
        checked(response).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large".to_owned()
        )
    );

    // Over the node's limit: refused before any handler, whatever the endpoint.
    let response = tenant_request(&app, Method::POST, "acme", "/v1/auth/login")
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(
        checked(response).await,
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large".to_owned()
        )
    );
    assert_eq!(cors_policy(&app, "acme", &owner).await, before);
}

#[tokio::test]
async fn a_json_endpoint_refuses_other_content_types_and_malformed_json_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let email = unique_address("typed");
    let invite = |content_type: &'static str, body: String| {
        tenant_request(&app, Method::POST, "acme", "/v1/admin/users/invitations")
            .bearer_auth(&owner)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let valid = json!({"email": email, "roles": []}).to_string();

    let response = invite("text/plain", valid.clone()).await.unwrap();
    assert_eq!(
        checked(response).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".to_owned()
        )
    );
    let response = invite("application/x-www-form-urlencoded", "email=x".to_owned())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = tenant_request(&app, Method::POST, "acme", "/v1/admin/users/invitations")
        .bearer_auth(&owner)
        .body(valid.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no content type at all"
    );

    let response = invite("application/json", format!("{{\"email\": \"{email}\","))
        .await
        .unwrap();
    assert_eq!(
        checked(response).await,
        (StatusCode::BAD_REQUEST, "invalid_json".to_owned())
    );

    let users: Value = call(&app, Method::GET, "acme", "/v1/admin/users", &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        users["users"].as_array().unwrap().len(),
        1,
        "nothing was created"
    );
}

#[tokio::test]
async fn security_headers_and_request_ids_are_on_successes_and_every_kind_of_error() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let ok = tenant_request(&app, Method::GET, "acme", "/v1/tenant")
        .send()
        .await
        .unwrap();
    assert_eq!(checked(ok).await.0, StatusCode::OK);

    let no_route = tenant_request(&app, Method::GET, "acme", "/v1/nothing-here")
        .send()
        .await
        .unwrap();
    assert_eq!(
        checked(no_route).await,
        (StatusCode::NOT_FOUND, "route_not_found".to_owned())
    );

    let no_tenant = tenant_request(&app, Method::GET, "nosuch", "/v1/tenant")
        .send()
        .await
        .unwrap();
    assert_eq!(
        checked(no_tenant).await,
        (StatusCode::NOT_FOUND, "tenant_not_found".to_owned())
    );

    let unauthorised = tenant_request(&app, Method::GET, "acme", "/v1/settings/cors")
        .send()
        .await
        .unwrap();
    assert_eq!(checked(unauthorised).await.0, StatusCode::UNAUTHORIZED);

    let wrong_method = tenant_request(&app, Method::DELETE, "acme", "/v1/settings/cors")
        .send()
        .await
        .unwrap();
    let (status, _) = checked(wrong_method).await;
    assert!(status.is_client_error(), "{status}");

    // A caller's own request id is kept when it is a sane token.
    let echoed = tenant_request(&app, Method::GET, "acme", "/v1/tenant")
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "client-chosen-42");
}

#[tokio::test]
async fn a_429_carries_the_security_headers_and_a_request_id() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.operator(Method::PATCH, "/v1/tenants/acme/quotas")
        .json(&json!({"requests_per_second": 0}))
        .send()
        .await
        .unwrap();
    let refused = TestApp::eventually(Duration::from_secs(1), || async {
        tenant_request(&app, Method::GET, "acme", "/v1/tenant")
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::TOO_MANY_REQUESTS
    })
    .await;
    assert!(refused.is_some());
    let response = tenant_request(&app, Method::GET, "acme", "/v1/tenant")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("retry-after").is_some());
    assert_eq!(
        checked(response).await,
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited".to_owned())
    );
}

fn preflight(app: &TestApp, url: &str, slug: &str, origin: &str) -> reqwest::RequestBuilder {
    app.http
        .request(Method::OPTIONS, format!("{url}/v1/me"))
        .header("X-Tenant", slug)
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
}

const APP_A: &str = "https://app.acme.example";

async fn set_origins(
    app: &TestApp,
    url: &str,
    slug: &str,
    token: &str,
    origins: Value,
) -> reqwest::Response {
    call_on(
        app,
        url,
        Method::PUT,
        slug,
        "/v1/settings/cors",
        token,
        Some(json!({ "allowed_origins": origins })),
    )
    .await
}

#[tokio::test]
async fn cors_preflights_and_responses_follow_each_tenants_own_allowed_origins() {
    let app = TestApp::spawn().await;
    let owner_a = tenant_with_owner(&app, "acme").await;
    app.create_tenant("globex").await;
    let saved = set_origins(
        &app,
        &app.data_url,
        "acme",
        &owner_a,
        json!(["https://App.Acme.example"]),
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(
        cors_policy(&app, "acme", &owner_a).await,
        json!({"allowed_origins": [APP_A]}),
        "stored normalised"
    );

    let allowed = preflight(&app, &app.data_url, "acme", APP_A)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], APP_A);
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PUT"));
    assert!(headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    assert!(headers
        .get_all("vary")
        .iter()
        .any(|value| value == "Origin"));
    assert!(headers.get("x-request-id").is_some());

    // Another origin on the same tenant, and the same origin on another tenant: refused,
    // without a single CORS header.
    for (slug, origin) in [("acme", "https://evil.example"), ("globex", APP_A)] {
        let refused = preflight(&app, &app.data_url, slug, origin)
            .send()
            .await
            .unwrap();
        assert!(refused
            .headers()
            .get("access-control-allow-origin")
            .is_none());
        assert!(refused
            .headers()
            .get("access-control-allow-methods")
            .is_none());
        assert_eq!(
            checked(refused).await,
            (StatusCode::FORBIDDEN, "cors_origin_not_allowed".to_owned()),
            "{origin} on {slug}"
        );
    }

    // Actual requests: the allowed origin may read the answer, errors included.
    let read = tenant_request(&app, Method::GET, "acme", "/v1/tenant")
        .header("origin", APP_A)
        .send()
        .await
        .unwrap();
    assert_eq!(read.headers()["access-control-allow-origin"], APP_A);
    assert!(read.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("x-ratelimit-remaining"));
    let error = tenant_request(&app, Method::GET, "acme", "/v1/me")
        .header("origin", APP_A)
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error.headers()["access-control-allow-origin"], APP_A);
    for (slug, origin) in [("acme", "https://evil.example"), ("globex", APP_A)] {
        let response = tenant_request(&app, Method::GET, slug, "/v1/tenant")
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response
            .headers()
            .get("access-control-allow-origin")
            .is_none());
    }
}

#[tokio::test]
async fn invalid_origins_are_refused_and_only_settings_managers_see_or_change_the_list() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    set_origins(&app, &app.data_url, "acme", &owner, json!([APP_A])).await;
    for bad in [
        json!(["https://*.acme.example"]),
        json!(["*"]),
        json!(["https://app.acme.example/path"]),
        json!(["javascript:alert(1)"]),
        json!("https://app.acme.example"),
    ] {
        let response = set_origins(&app, &app.data_url, "acme", &owner, bad.clone()).await;
        assert_eq!(
            checked(response).await,
            (StatusCode::BAD_REQUEST, "invalid_cors".to_owned()),
            "{bad}"
        );
    }
    assert_eq!(
        cors_policy(&app, "acme", &owner).await,
        json!({"allowed_origins": [APP_A]})
    );

    let member_email = unique_address("member");
    crate::users_admin::invite_and_activate(&app, "acme", &owner, &member_email, &["member"]).await;
    let member = crate::users_admin::access(
        &app.sign_in("acme", &member_email, crate::users_admin::PASSWORD)
            .await,
    );
    let response = set_origins(
        &app,
        &app.data_url,
        "acme",
        &member,
        json!(["https://evil.example"]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = call(
        &app,
        Method::GET,
        "acme",
        "/v1/settings/cors",
        &member,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        cors_policy(&app, "acme", &owner).await,
        json!({"allowed_origins": [APP_A]})
    );
}

#[tokio::test]
async fn an_origin_allowed_on_one_node_is_allowed_on_every_node_within_a_second() {
    let app = TestApp::spawn().await;
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let owner = tenant_with_owner(&app, "acme").await;
    // The second node caches "nothing allowed" first.
    let refused = preflight(&app, &second, "acme", APP_A)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    set_origins(&app, &app.data_url, "acme", &owner, json!([APP_A])).await;
    let allowed = TestApp::eventually(Duration::from_secs(1), || async {
        preflight(&app, &second, "acme", APP_A)
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::NO_CONTENT
    })
    .await;
    assert!(allowed.is_some(), "the second node kept its cached policy");

    set_origins(&app, &app.data_url, "acme", &owner, json!([])).await;
    let revoked = TestApp::eventually(Duration::from_secs(1), || async {
        preflight(&app, &second, "acme", APP_A)
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::FORBIDDEN
    })
    .await;
    assert!(
        revoked.is_some(),
        "the second node kept allowing a removed origin"
    );
}
