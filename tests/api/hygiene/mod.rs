//! Request hygiene: body limits (413), content types (415) and malformed JSON (400) answered
//! with the JSON envelope and without any change; security headers and request ids on every
//! response; per-tenant CORS (preflights, allowed and refused origins, propagation to every
//! node). The rules both planes hold every JSON body and header to (one content type, no
//! repeated keys, 431) are in `strict_input`.

mod strict_input;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::client::Call;
use tenantry_tests::{unique_address, Client, Reply, TestApp, TestOptions, PASSWORD};

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
/// carrying that request id; returns the status and error code ("" for a success).
fn checked(reply: &Reply) -> (StatusCode, &str) {
    let status = reply.status();
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(reply.header(name), Some(value), "{name} on a {status}");
    }
    let request_id = reply
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no request id on a {status}"));
    if status.is_success() {
        return reply.error_code();
    }
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "a {status}"
    );
    let body = reply.value();
    assert_eq!(body["error"]["request_id"], request_id, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    reply.error_code()
}

async fn cors_policy(owner: &Client) -> Value {
    owner.setting("cors").await.unwrap()
}
#[tokio::test]
async fn oversized_bodies_get_413_json_and_change_nothing() {
    let app = TestApp::spawn_with(TestOptions {
        max_body_bytes: 256 * 1024,
        ..TestOptions::default()
    })
    .await;
    let owner = app.tenant_with_owner("acme").await;
    let before = cors_policy(&owner).await;

    // Over the JSON limit (64 KiB), under the node's.
    let origins: Vec<String> = (0..3000)
        .map(|index| format!("https://app{index}.example.com"))
        .collect();
    let reply = set_origins(&owner, json!(origins)).await;
    assert_eq!(
        checked(&reply),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // Over the node's limit: refused before any handler, whatever the endpoint.
    let reply = app
        .tenant("acme")
        .post("/v1/auth/login")
        .body(vec![b' '; 300 * 1024], "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        checked(&reply),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert_eq!(cors_policy(&owner).await, before);
}

#[tokio::test]
async fn a_json_endpoint_refuses_other_content_types_and_malformed_json_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let email = unique_address("typed");
    let invite = |content_type: &'static str, body: String| {
        owner
            .post("/v1/admin/users/invitations")
            .body(body, content_type)
            .send()
    };
    let valid = json!({"email": email, "roles": []}).to_string();

    let reply = invite("text/plain", valid.clone()).await.unwrap();
    assert_eq!(
        checked(&reply),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let reply = invite("application/x-www-form-urlencoded", "email=x".to_owned())
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The client always names a body's type: this one request goes out without any.
    let token = owner.access_token().await.unwrap().unwrap();
    let response = app
        .http
        .post(format!("{}/v1/admin/users/invitations", app.data_url))
        .header("X-Tenant", "acme")
        .bearer_auth(token.expose())
        .body(valid.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no content type at all"
    );

    let reply = invite("application/json", format!("{{\"email\": \"{email}\","))
        .await
        .unwrap();
    assert_eq!(checked(&reply), (StatusCode::BAD_REQUEST, "invalid_json"));

    let users = owner.users().list(None, None, None).await.unwrap();
    assert_eq!(users.users.len(), 1, "nothing was created");
}

#[tokio::test]
async fn security_headers_and_request_ids_are_on_successes_and_every_kind_of_error() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let acme = app.tenant("acme");

    let ok = acme.get("/v1/tenant").send().await.unwrap();
    assert_eq!(checked(&ok).0, StatusCode::OK);

    let no_route = acme.get("/v1/nothing-here").send().await.unwrap();
    assert_eq!(
        checked(&no_route),
        (StatusCode::NOT_FOUND, "route_not_found")
    );

    let no_tenant = app.tenant("nosuch").get("/v1/tenant").send().await.unwrap();
    assert_eq!(
        checked(&no_tenant),
        (StatusCode::NOT_FOUND, "tenant_not_found")
    );

    let unauthorised = acme.get("/v1/settings/cors").send().await.unwrap();
    assert_eq!(checked(&unauthorised).0, StatusCode::UNAUTHORIZED);

    let wrong_method = acme.delete("/v1/settings/cors").send().await.unwrap();
    assert_eq!(
        checked(&wrong_method),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );

    // A caller's own request id is kept when it is a sane token.
    let echoed = acme
        .get("/v1/tenant")
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.header("x-request-id"), Some("client-chosen-42"));
}

#[tokio::test]
async fn a_429_carries_the_security_headers_and_a_request_id() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.operator_api()
        .tenants()
        .set_quotas("acme", &json!({"requests_per_second": 0}))
        .await
        .unwrap();
    let acme = app.tenant("acme");
    let refused = TestApp::eventually(Duration::from_secs(1), || async {
        acme.get("/v1/tenant").send().await.unwrap().status() == StatusCode::TOO_MANY_REQUESTS
    })
    .await;
    assert!(refused.is_some());
    let reply = acme.get("/v1/tenant").send().await.unwrap();
    assert!(reply.header("retry-after").is_some());
    assert_eq!(
        checked(&reply),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
}

/// A CORS preflight of `GET /v1/me` from `origin`, to `tenant` (on its node).
fn preflight<'c>(tenant: &'c Client, origin: &str) -> Call<'c> {
    tenant
        .call(Method::OPTIONS, "/v1/me")
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
}

const APP_A: &str = "https://app.acme.example";

/// `PUT /v1/settings/cors` as `caller`, whatever the answer.
async fn set_origins(caller: &Client, origins: Value) -> Reply {
    caller
        .put("/v1/settings/cors")
        .json(&json!({ "allowed_origins": origins }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_preflights_and_responses_follow_each_tenants_own_allowed_origins() {
    let app = TestApp::spawn().await;
    let owner_a = app.tenant_with_owner("acme").await;
    app.create_tenant("globex").await;
    let saved = set_origins(&owner_a, json!(["https://App.Acme.example"])).await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(
        cors_policy(&owner_a).await,
        json!({"allowed_origins": [APP_A]}),
        "stored normalised"
    );

    let allowed = preflight(&app.tenant("acme"), APP_A).send().await.unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(APP_A));
    assert!(allowed
        .header("access-control-allow-methods")
        .unwrap()
        .contains("PUT"));
    assert!(allowed
        .header("access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    assert!(allowed
        .headers()
        .get_all("vary")
        .iter()
        .any(|value| value == "Origin"));
    assert!(allowed.header("x-request-id").is_some());

    // Another origin on the same tenant, and the same origin on another tenant: refused,
    // without a single CORS header.
    for (slug, origin) in [("acme", "https://evil.example"), ("globex", APP_A)] {
        let refused = preflight(&app.tenant(slug), origin).send().await.unwrap();
        assert!(refused.header("access-control-allow-origin").is_none());
        assert!(refused.header("access-control-allow-methods").is_none());
        assert_eq!(
            checked(&refused),
            (StatusCode::FORBIDDEN, "cors_origin_not_allowed"),
            "{origin} on {slug}"
        );
    }

    // Actual requests: the allowed origin may read the answer, errors included.
    let acme = app.tenant("acme");
    let read = acme
        .get("/v1/tenant")
        .header("origin", APP_A)
        .send()
        .await
        .unwrap();
    assert_eq!(read.header("access-control-allow-origin"), Some(APP_A));
    assert!(read
        .header("access-control-expose-headers")
        .unwrap()
        .contains("x-ratelimit-remaining"));
    let error = acme
        .get("/v1/me")
        .header("origin", APP_A)
        .send()
        .await
        .unwrap();
    assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error.header("access-control-allow-origin"), Some(APP_A));
    for (slug, origin) in [("acme", "https://evil.example"), ("globex", APP_A)] {
        let reply = app
            .tenant(slug)
            .get("/v1/tenant")
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        assert!(reply.header("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn invalid_origins_are_refused_and_only_settings_managers_see_or_change_the_list() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    set_origins(&owner, json!([APP_A])).await;
    for bad in [
        json!(["https://*.acme.example"]),
        json!(["*"]),
        json!(["https://app.acme.example/path"]),
        json!(["javascript:alert(1)"]),
        json!("https://app.acme.example"),
    ] {
        let reply = set_origins(&owner, bad.clone()).await;
        assert_eq!(
            checked(&reply),
            (StatusCode::BAD_REQUEST, "invalid_cors"),
            "{bad}"
        );
    }
    assert_eq!(
        cors_policy(&owner).await,
        json!({"allowed_origins": [APP_A]})
    );

    let member_email = unique_address("member");
    app.invite_and_activate(&owner, &member_email, &["member"])
        .await;
    let member = app.signed_in("acme", &member_email, PASSWORD).await;
    let reply = set_origins(&member, json!(["https://evil.example"])).await;
    assert_eq!(reply.status(), StatusCode::FORBIDDEN);
    let reply = member.get("/v1/settings/cors").send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        cors_policy(&owner).await,
        json!({"allowed_origins": [APP_A]})
    );
}

#[tokio::test]
async fn an_origin_allowed_on_one_node_is_allowed_on_every_node_within_a_second() {
    let app = TestApp::spawn().await;
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let owner = app.tenant_with_owner("acme").await;
    let on_second = app.tenant("acme").on(&second);
    // The second node caches "nothing allowed" first.
    let refused = preflight(&on_second, APP_A).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    set_origins(&owner, json!([APP_A])).await;
    let allowed = TestApp::eventually(Duration::from_secs(1), || async {
        preflight(&on_second, APP_A).send().await.unwrap().status() == StatusCode::NO_CONTENT
    })
    .await;
    assert!(allowed.is_some(), "the second node kept its cached policy");

    set_origins(&owner, json!([])).await;
    let revoked = TestApp::eventually(Duration::from_secs(1), || async {
        preflight(&on_second, APP_A).send().await.unwrap().status() == StatusCode::FORBIDDEN
    })
    .await;
    assert!(
        revoked.is_some(),
        "the second node kept allowing a removed origin"
    );
}
