//! API keys (`/v1/admin/api-keys`) and `GET /v1/usage`: both ways of presenting a key, the
//! secret shown once and stored as a digest, tenant isolation, revocation on another node,
//! expiry and rotation grace (manual clock), IP allow-lists, the escalation guard at creation,
//! rotation and request time, admin endpoints refusing keys, usage counters, the quota under
//! concurrent creations, and malformed input.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp, TestOptions};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::mfa::app_with_clock;
use crate::users_admin::{
    access, call, error_code, invite_and_activate, tenant_schema, tenant_with_owner, PASSWORD,
};

const KEYS: &str = "/v1/admin/api-keys";

/// How a request presents its key.
#[derive(Debug, Clone, Copy)]
enum Via {
    XApiKey,
    Bearer,
}

/// A request to `url` (a data-plane node) for tenant `slug` with the API key `key`.
async fn with_key_on(
    app: &TestApp,
    url: &str,
    method: Method,
    slug: &str,
    path: &str,
    key: &str,
    via: Via,
) -> reqwest::Response {
    let request = app
        .http
        .request(method, format!("{url}{path}"))
        .header("X-Tenant", slug);
    let request = match via {
        Via::XApiKey => request.header("X-API-Key", key),
        Via::Bearer => request.bearer_auth(key),
    };
    request.send().await.unwrap()
}

/// `GET /v1/usage` on the first node with `key` in `X-API-Key`.
async fn usage_with(app: &TestApp, slug: &str, key: &str) -> reqwest::Response {
    with_key_on(
        app,
        &app.data_url,
        Method::GET,
        slug,
        "/v1/usage",
        key,
        Via::XApiKey,
    )
    .await
}

/// Creates a key as the holder of `token`; the 201 body (with the full `key`).
async fn create_key(app: &TestApp, slug: &str, token: &str, body: Value) -> Value {
    let response = call(app, Method::POST, slug, KEYS, token, Some(body)).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// A key scoped to `usage:read` only; its 201 body.
async fn usage_key(app: &TestApp, slug: &str, token: &str) -> Value {
    create_key(
        app,
        slug,
        token,
        json!({"name": "usage reader", "scopes": ["usage:read"]}),
    )
    .await
}

fn key_text(created: &Value) -> String {
    created["key"].as_str().unwrap().to_owned()
}

fn key_path(created: &Value) -> String {
    format!("{KEYS}/{}", created["id"].as_str().unwrap())
}

async fn listed(app: &TestApp, slug: &str, token: &str) -> Vec<Value> {
    let response = call(app, Method::GET, slug, KEYS, token, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["api_keys"].as_array().unwrap().clone()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

#[tokio::test]
async fn a_key_works_with_either_header_and_its_secret_is_shown_once_and_stored_as_a_digest() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let created = usage_key(&app, "acme", &owner).await;
    let key = key_text(&created);
    assert!(key.starts_with("tnt_"), "{key}");
    assert_eq!(created["prefix"].as_str().unwrap(), &key[4..16]);
    assert_eq!(created["status"], "active");
    let secret = &key[17..];

    for via in [Via::XApiKey, Via::Bearer] {
        let response = with_key_on(
            &app,
            &app.data_url,
            Method::GET,
            "acme",
            "/v1/usage",
            &key,
            via,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{via:?}");
        let usage: Value = response.json().await.unwrap();
        assert_eq!(usage["users"]["used"], 1);
        assert_eq!(usage["api_keys"], json!({"used": 1, "limit": 2}));
    }

    // Never shown again: not in the list, not in the key's own view.
    let list = call(&app, Method::GET, "acme", KEYS, &owner, None).await;
    let list_text = list.text().await.unwrap();
    let one = call(&app, Method::GET, "acme", &key_path(&created), &owner, None).await;
    assert_eq!(one.status(), StatusCode::OK);
    let one: Value = one.json().await.unwrap();
    assert!(!list_text.contains(secret) && !one.to_string().contains(secret));
    assert!(one.get("key").is_none());
    assert_eq!(one["scopes"], json!(["usage:read"]));
    assert_eq!(one["name"], "usage reader");

    // The tenant's table holds a 32-byte digest, not the secret in any form.
    let schema = tenant_schema(&app, "acme").await;
    let row = app
        .superuser()
        .await
        .query_one(
            &format!("SELECT secret_hash, row_to_json(k)::text FROM {schema}.api_keys k"),
            &[],
        )
        .await
        .unwrap();
    let digest: Vec<u8> = row.get(0);
    let stored: String = row.get(1);
    assert_eq!(digest.len(), 32);
    assert!(!stored.contains(secret) && !stored.contains(&key));
    assert_ne!(digest, secret.as_bytes());
}

#[tokio::test]
async fn keys_of_another_tenant_and_bad_keys_get_one_uniform_401() {
    let app = TestApp::spawn().await;
    let acme_owner = tenant_with_owner(&app, "acme").await;
    let globex_owner = tenant_with_owner(&app, "globex").await;
    let acme_key = key_text(&usage_key(&app, "acme", &acme_owner).await);
    let globex_key = key_text(&usage_key(&app, "globex", &globex_owner).await);
    assert_eq!(
        usage_with(&app, "acme", &acme_key).await.status(),
        StatusCode::OK
    );

    let wrong_secret = format!("{}{}", &acme_key[..17], &globex_key[17..]);
    let mut messages = Vec::new();
    for (slug, key) in [
        ("globex", acme_key.as_str()),
        ("acme", globex_key.as_str()),
        ("acme", wrong_secret.as_str()),
        (
            "acme",
            "tnt_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        ("acme", "tnt_short"),
        ("acme", "not a key at all"),
    ] {
        let response = usage_with(&app, slug, key).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{slug} {key}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key", "{slug} {key}");
        messages.push(body["error"]["message"].as_str().unwrap().to_owned());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // As a bearer value too.
    let response = with_key_on(
        &app,
        &app.data_url,
        Method::GET,
        "globex",
        "/v1/usage",
        &acme_key,
        Via::Bearer,
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".to_owned())
    );
}

#[tokio::test]
async fn a_key_and_an_access_token_in_one_request_get_400() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let key = key_text(&usage_key(&app, "acme", &owner).await);
    let response = app
        .tenant_get("acme", "/v1/usage")
        .header("X-API-Key", &key)
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::BAD_REQUEST, "ambiguous_credentials".to_owned())
    );
    let response = app
        .tenant_get("acme", "/v1/usage")
        .header("X-API-Key", &key)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_and_on_another_node_within_a_second() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let created = usage_key(&app, "acme", &owner).await;
    let key = key_text(&created);
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let on_second = || async {
        with_key_on(
            &app,
            &second,
            Method::GET,
            "acme",
            "/v1/usage",
            &key,
            Via::XApiKey,
        )
        .await
        .status()
    };
    // The second node has the key cached.
    assert_eq!(on_second().await, StatusCode::OK);
    assert_eq!(on_second().await, StatusCode::OK);

    let revoked = call(
        &app,
        Method::DELETE,
        "acme",
        &key_path(&created),
        &owner,
        None,
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        error_code(usage_with(&app, "acme", &key).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".to_owned())
    );
    let refused = TestApp::eventually(Duration::from_secs(1), || async {
        on_second().await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "the second node still accepts the revoked key"
    );

    let view: Value = call(&app, Method::GET, "acme", &key_path(&created), &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "revoked");
    assert!(view["revoked_at"].is_string());
    // Revoked keys cannot be rotated back to life; revoking again changes nothing.
    let rotated = call(
        &app,
        Method::POST,
        "acme",
        &format!("{}/rotate", key_path(&created)),
        &owner,
        None,
    )
    .await;
    assert_eq!(
        error_code(rotated).await,
        (StatusCode::CONFLICT, "api_key_revoked".to_owned())
    );
    let again = call(
        &app,
        Method::DELETE,
        "acme",
        &key_path(&created),
        &owner,
        None,
    )
    .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        usage_with(&app, "acme", &key).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_expired_key_is_refused_and_no_longer_counts() {
    let (app, clock) = app_with_clock().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let in_the_past = rfc3339(clock.now() - time::Duration::seconds(1));
    let refused = call(
        &app,
        Method::POST,
        "acme",
        KEYS,
        &owner,
        Some(json!({"name": "late", "scopes": ["usage:read"], "expires_at": in_the_past})),
    )
    .await;
    assert_eq!(
        error_code(refused).await,
        (StatusCode::BAD_REQUEST, "invalid_expiry".to_owned())
    );

    let expires_at = rfc3339(clock.now() + time::Duration::hours(1));
    let created = create_key(
        &app,
        "acme",
        &owner,
        json!({"name": "hourly", "scopes": ["usage:read"], "expires_at": expires_at}),
    )
    .await;
    let key = key_text(&created);
    assert_eq!(
        usage_with(&app, "acme", &key).await.status(),
        StatusCode::OK
    );

    clock.advance(time::Duration::minutes(59));
    assert_eq!(
        usage_with(&app, "acme", &key).await.status(),
        StatusCode::OK
    );
    clock.advance(time::Duration::minutes(2));
    assert_eq!(
        error_code(usage_with(&app, "acme", &key).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".to_owned())
    );
    let view: Value = call(&app, Method::GET, "acme", &key_path(&created), &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["status"], "expired");
    let usage: Value = call(&app, Method::GET, "acme", "/v1/usage", &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["api_keys"]["used"], 0);
}

#[tokio::test]
async fn the_ip_allow_list_admits_only_its_ranges() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let elsewhere = key_text(
        &create_key(
            &app,
            "acme",
            &owner,
            json!({"name": "office", "scopes": ["usage:read"], "allowed_ips": ["10.0.0.0/8"]}),
        )
        .await,
    );
    let local = create_key(
        &app,
        "acme",
        &owner,
        json!({"name": "local", "scopes": ["usage:read"], "allowed_ips": ["127.0.0.0/8", "2001:db8::/32"]}),
    )
    .await;
    assert_eq!(
        local["allowed_ips"],
        json!(["127.0.0.0/8", "2001:db8::/32"])
    );

    for via in [Via::XApiKey, Via::Bearer] {
        let response = with_key_on(
            &app,
            &app.data_url,
            Method::GET,
            "acme",
            "/v1/usage",
            &elsewhere,
            via,
        )
        .await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::FORBIDDEN, "ip_not_allowed".to_owned())
        );
    }
    assert_eq!(
        usage_with(&app, "acme", &key_text(&local)).await.status(),
        StatusCode::OK
    );
    // A wrong secret learns nothing about the allow-list.
    let wrong = format!("{}{}", &elsewhere[..17], &key_text(&local)[17..]);
    assert_eq!(
        error_code(usage_with(&app, "acme", &wrong).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".to_owned())
    );
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_the_grace_period_only() {
    let (app, clock) = app_with_clock().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let created = usage_key(&app, "acme", &owner).await;
    let old = key_text(&created);
    let rotate = format!("{}/rotate", key_path(&created));

    let response = call(
        &app,
        Method::POST,
        "acme",
        &rotate,
        &owner,
        Some(json!({"grace_seconds": 600})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.unwrap();
    let new = key_text(&rotated);
    assert_ne!(new, old);
    assert_eq!(rotated["id"], created["id"]);
    assert_eq!(rotated["prefix"], created["prefix"]);
    assert_eq!(
        rotated["previous_secret_expires_at"].as_str().unwrap(),
        rfc3339(clock.now() + time::Duration::seconds(600))
    );

    assert_eq!(
        usage_with(&app, "acme", &old).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        usage_with(&app, "acme", &new).await.status(),
        StatusCode::OK
    );
    clock.advance(time::Duration::seconds(599));
    assert_eq!(
        usage_with(&app, "acme", &old).await.status(),
        StatusCode::OK
    );
    clock.advance(time::Duration::seconds(2));
    assert_eq!(
        error_code(usage_with(&app, "acme", &old).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".to_owned())
    );
    assert_eq!(
        usage_with(&app, "acme", &new).await.status(),
        StatusCode::OK
    );

    // Without a body the grace is 30 minutes; the secret before that stops at once.
    let response = call(&app, Method::POST, "acme", &rotate, &owner, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let third: Value = response.json().await.unwrap();
    assert_eq!(
        third["previous_secret_expires_at"].as_str().unwrap(),
        rfc3339(clock.now() + time::Duration::minutes(30))
    );
    let newest = key_text(&third);
    assert_eq!(
        usage_with(&app, "acme", &old).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        usage_with(&app, "acme", &new).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        usage_with(&app, "acme", &newest).await.status(),
        StatusCode::OK
    );
    clock.advance(time::Duration::minutes(31));
    assert_eq!(
        usage_with(&app, "acme", &new).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        usage_with(&app, "acme", &newest).await.status(),
        StatusCode::OK
    );

    // A grace of zero ends the old secret at once.
    let response = call(
        &app,
        Method::POST,
        "acme",
        &rotate,
        &owner,
        Some(json!({"grace_seconds": 0})),
    )
    .await;
    let last = key_text(&response.json::<Value>().await.unwrap());
    assert_eq!(
        usage_with(&app, "acme", &newest).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        usage_with(&app, "acme", &last).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_rotation_on_one_node_is_seen_by_another_at_once() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let created = usage_key(&app, "acme", &owner).await;
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let on_second = |key: String| {
        let app = &app;
        let second = second.clone();
        async move {
            with_key_on(
                app,
                &second,
                Method::GET,
                "acme",
                "/v1/usage",
                &key,
                Via::XApiKey,
            )
            .await
            .status()
        }
    };
    assert_eq!(on_second(key_text(&created)).await, StatusCode::OK);
    let rotated: Value = call(
        &app,
        Method::POST,
        "acme",
        &format!("{}/rotate", key_path(&created)),
        &owner,
        Some(json!({"grace_seconds": 0})),
    )
    .await
    .json()
    .await
    .unwrap();
    // No waiting: a secret the cached row does not know is checked against the table.
    assert_eq!(on_second(key_text(&rotated)).await, StatusCode::OK);
    let refused = TestApp::eventually(Duration::from_secs(1), || {
        let key = key_text(&created);
        async { on_second(key).await == StatusCode::UNAUTHORIZED }
    })
    .await;
    assert!(refused.is_some());
}

#[tokio::test]
async fn nobody_gives_a_key_more_than_they_hold() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let developer_email = unique_address("developer");
    invite_and_activate(&app, "acme", &owner, &developer_email, &["developer"]).await;
    let developer = access(&app.sign_in("acme", &developer_email, PASSWORD).await);

    for scopes in [
        json!(["usage:read"]),
        json!(["records:read", "users:manage"]),
        json!(["*:*"]),
        json!(["records.invoices:read", "telemetry:write", "*:read"]),
    ] {
        let response = call(
            &app,
            Method::POST,
            "acme",
            KEYS,
            &developer,
            Some(json!({"name": "too much", "scopes": scopes})),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{scopes}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "scope_not_held");
        let missing = body["error"]["details"]["scopes"].as_array().unwrap();
        assert_eq!(missing.len(), 1, "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(missing[0].as_str().unwrap()));
    }
    assert!(listed(&app, "acme", &owner).await.is_empty());
    // What the developer holds, they may give.
    create_key(
        &app,
        "acme",
        &developer,
        json!({"name": "ingest", "scopes": ["telemetry:write", "records.invoices:read"]}),
    )
    .await;

    // Nor may they rotate (and so obtain) a key wider than themself.
    let owners_key = usage_key(&app, "acme", &owner).await;
    let response = call(
        &app,
        Method::POST,
        "acme",
        &format!("{}/rotate", key_path(&owners_key)),
        &developer,
        None,
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::FORBIDDEN, "scope_not_held".to_owned())
    );
    assert_eq!(
        usage_with(&app, "acme", &key_text(&owners_key))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_key_loses_what_its_creator_loses() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let admin_email = unique_address("admin");
    let admin_id = invite_and_activate(&app, "acme", &owner, &admin_email, &["admin"]).await;
    let admin = access(&app.sign_in("acme", &admin_email, PASSWORD).await);
    let key = key_text(&usage_key(&app, "acme", &admin).await);
    assert_eq!(
        usage_with(&app, "acme", &key).await.status(),
        StatusCode::OK
    );
    let refused_soon = || async {
        TestApp::eventually(Duration::from_secs(1), || async {
            usage_with(&app, "acme", &key).await.status() == StatusCode::FORBIDDEN
        })
        .await
        .is_some()
    };

    // Demoted to developer (no usage:read): the key loses usage:read.
    let user = format!("/v1/admin/users/{admin_id}");
    let demoted = call(
        &app,
        Method::PUT,
        "acme",
        &format!("{user}/roles"),
        &owner,
        Some(json!({"roles": ["developer"]})),
    )
    .await;
    assert_eq!(demoted.status(), StatusCode::OK);
    assert!(refused_soon().await, "the key kept what its creator lost");
    let body: Value = usage_with(&app, "acme", &key).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["details"]["missing_permission"], "usage:read");

    // Promoted again, then disabled: a disabled creator's keys can do nothing.
    let promoted = call(
        &app,
        Method::PUT,
        "acme",
        &format!("{user}/roles"),
        &owner,
        Some(json!({"roles": ["admin"]})),
    )
    .await;
    assert_eq!(promoted.status(), StatusCode::OK);
    let back = TestApp::eventually(Duration::from_secs(1), || async {
        usage_with(&app, "acme", &key).await.status() == StatusCode::OK
    })
    .await;
    assert!(back.is_some());
    let disabled = call(
        &app,
        Method::POST,
        "acme",
        &format!("{user}/disable"),
        &owner,
        None,
    )
    .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    assert!(refused_soon().await, "a disabled creator's key still works");
}

#[tokio::test]
async fn keys_get_403_user_required_on_admin_endpoints_and_403_beyond_their_scopes() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let wide = key_text(
        &create_key(
            &app,
            "acme",
            &owner,
            json!({"name": "wide", "scopes": ["api_keys:manage", "users:manage", "records:read"]}),
        )
        .await,
    );
    for (method, path) in [
        (Method::GET, KEYS.to_owned()),
        (Method::POST, KEYS.to_owned()),
        (Method::GET, "/v1/admin/users".to_owned()),
        (Method::GET, "/v1/me".to_owned()),
    ] {
        for via in [Via::XApiKey, Via::Bearer] {
            let mut request = app
                .http
                .request(method.clone(), format!("{}{path}", app.data_url))
                .header("X-Tenant", "acme");
            request = match via {
                Via::XApiKey => request.header("X-API-Key", &wide),
                Via::Bearer => request.bearer_auth(&wide),
            };
            if method == Method::POST {
                request = request.json(&json!({"name": "child", "scopes": ["records:read"]}));
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                error_code(response).await,
                (StatusCode::FORBIDDEN, "user_required".to_owned()),
                "{method} {path} {via:?}"
            );
        }
    }
    assert_eq!(listed(&app, "acme", &owner).await.len(), 1);

    // A key without usage:read is refused on the one endpoint keys may use here.
    let response = usage_with(&app, "acme", &wide).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["details"]["missing_permission"], "usage:read");
}

#[tokio::test]
async fn usage_counters_rise_without_a_write_per_request() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let created = usage_key(&app, "acme", &owner).await;
    assert_eq!(created["use_count"], 0);
    assert!(created["last_used_at"].is_null());
    let key = key_text(&created);
    for _ in 0..3 {
        assert_eq!(
            usage_with(&app, "acme", &key).await.status(),
            StatusCode::OK
        );
    }
    let view = || async {
        call(&app, Method::GET, "acme", &key_path(&created), &owner, None)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    let counted = TestApp::eventually(Duration::from_secs(5), || async {
        view().await["use_count"] == 3
    })
    .await;
    assert!(counted.is_some(), "{}", view().await);
    let last_used = view().await["last_used_at"].as_str().unwrap().to_owned();
    let last_used = OffsetDateTime::parse(&last_used, &Rfc3339).unwrap();
    assert!((OffsetDateTime::now_utc() - last_used).abs() < time::Duration::minutes(1));

    // Refused requests do not count.
    let wrong = format!("{}{}", &key[..17], "A".repeat(43));
    assert_eq!(
        usage_with(&app, "acme", &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        usage_with(&app, "acme", &key).await.status(),
        StatusCode::OK
    );
    let counted = TestApp::eventually(Duration::from_secs(5), || async {
        view().await["use_count"] == 4
    })
    .await;
    assert!(counted.is_some(), "{}", view().await);
}

#[tokio::test]
async fn creation_stops_at_the_quota_even_when_requests_race() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    // The free plan allows 2 live keys.
    let creations = (0..6).map(|i| {
        call(
            &app,
            Method::POST,
            "acme",
            KEYS,
            &owner,
            Some(json!({"name": format!("racer {i}"), "scopes": ["usage:read"]})),
        )
    });
    let mut created = Vec::new();
    let mut refused = 0;
    for response in join_all(creations).await {
        match response.status() {
            StatusCode::CREATED => created.push(response.json::<Value>().await.unwrap()),
            StatusCode::FORBIDDEN => {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "quota_exceeded");
                assert_eq!(
                    body["error"]["details"],
                    json!({"quota": "max_api_keys", "limit": 2})
                );
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created.len(), refused), (2, 4));
    assert_eq!(listed(&app, "acme", &owner).await.len(), 2);
    let usage: Value = call(&app, Method::GET, "acme", "/v1/usage", &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["api_keys"], json!({"used": 2, "limit": 2}));

    // A revoked key frees its place.
    let revoked = call(
        &app,
        Method::DELETE,
        "acme",
        &key_path(&created[0]),
        &owner,
        None,
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    usage_key(&app, "acme", &owner).await;
    let full = call(
        &app,
        Method::POST,
        "acme",
        KEYS,
        &owner,
        Some(json!({"name": "one more", "scopes": ["usage:read"]})),
    )
    .await;
    assert_eq!(
        error_code(full).await,
        (StatusCode::FORBIDDEN, "quota_exceeded".to_owned())
    );
}

#[tokio::test]
async fn malformed_requests_get_400_and_create_nothing() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    for (body, code) in [
        (json!({"scopes": ["usage:read"]}), "invalid_json"),
        (json!({"name": "x"}), "invalid_json"),
        (json!({"name": "x", "scopes": "usage:read"}), "invalid_json"),
        (
            json!({"name": "x", "scopes": ["usage:read"], "admin": true}),
            "invalid_json",
        ),
        (
            json!({"name": "", "scopes": ["usage:read"]}),
            "invalid_name",
        ),
        (
            json!({"name": "a\u{0}b", "scopes": ["usage:read"]}),
            "invalid_name",
        ),
        (
            json!({"name": "x".repeat(101), "scopes": ["usage:read"]}),
            "invalid_name",
        ),
        (json!({"name": "x", "scopes": []}), "invalid_scope"),
        (json!({"name": "x", "scopes": ["usage"]}), "invalid_scope"),
        (
            json!({"name": "x", "scopes": ["Usage:Read"]}),
            "invalid_scope",
        ),
        (
            json!({"name": "x", "scopes": ["usage:read'; DROP TABLE api_keys; --"]}),
            "invalid_scope",
        ),
        (
            json!({"name": "x", "scopes": ["records..x:read"]}),
            "invalid_scope",
        ),
        (
            json!({"name": "x", "scopes": ["usage:read"], "allowed_ips": []}),
            "invalid_cidr",
        ),
        (
            json!({"name": "x", "scopes": ["usage:read"], "allowed_ips": ["10.0.0.0/33"]}),
            "invalid_cidr",
        ),
        (
            json!({"name": "x", "scopes": ["usage:read"], "allowed_ips": ["10.1.2.3/8"]}),
            "invalid_cidr",
        ),
        (
            json!({"name": "x", "scopes": ["usage:read"], "allowed_ips": ["999.0.0.1"]}),
            "invalid_cidr",
        ),
        (
            json!({"name": "x", "scopes": ["usage:read"], "allowed_ips": "10.0.0.0/8"}),
            "invalid_json",
        ),
        (
            json!({"name": "x", "scopes": ["usage:read"], "expires_at": "tomorrow"}),
            "invalid_json",
        ),
        (
            json!({"name": "x", "scopes": ["usage:read"], "expires_at": 1234}),
            "invalid_json",
        ),
        (
            json!({"name": "x", "scopes": ["usage:read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "invalid_expiry",
        ),
    ] {
        let response = call(&app, Method::POST, "acme", KEYS, &owner, Some(body.clone())).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::BAD_REQUEST, code.to_owned()),
            "{body}"
        );
    }
    let not_json = app
        .http
        .post(format!("{}{KEYS}", app.data_url))
        .header("X-Tenant", "acme")
        .bearer_auth(&owner)
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert!(listed(&app, "acme", &owner).await.is_empty());

    let created = usage_key(&app, "acme", &owner).await;
    let rotate = format!("{}/rotate", key_path(&created));
    for body in [
        json!({"grace_seconds": -1}),
        json!({"grace_seconds": 8 * 24 * 3600}),
        json!({"grace_seconds": "soon"}),
        json!({"grace": 10}),
    ] {
        let response = call(
            &app,
            Method::POST,
            "acme",
            &rotate,
            &owner,
            Some(body.clone()),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    // The key was not rotated by any of them.
    assert_eq!(
        usage_with(&app, "acme", &key_text(&created)).await.status(),
        StatusCode::OK
    );
    let view: Value = call(&app, Method::GET, "acme", &key_path(&created), &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(view["rotated_at"].is_null());

    for path in [
        format!("{KEYS}/not-a-uuid"),
        format!("{KEYS}/{}", uuid::Uuid::new_v4()),
    ] {
        let response = call(&app, Method::GET, "acme", &path, &owner, None).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::NOT_FOUND, "api_key_not_found".to_owned())
        );
        let response = call(&app, Method::DELETE, "acme", &path, &owner, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn the_key_admin_needs_api_keys_manage_and_ids_of_another_tenant_are_not_found() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let globex_owner = tenant_with_owner(&app, "globex").await;
    let globex_key = usage_key(&app, "globex", &globex_owner).await;
    let member_email = unique_address("member");
    invite_and_activate(&app, "acme", &owner, &member_email, &["member"]).await;
    let member = access(&app.sign_in("acme", &member_email, PASSWORD).await);

    let response = call(&app, Method::GET, "acme", KEYS, &member, None).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        body["error"]["details"]["missing_permission"],
        "api_keys:manage"
    );
    let response = app.tenant_get("acme", KEYS).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // globex's key id names nothing in acme, for reading, rotating or revoking.
    let path = key_path(&globex_key);
    for method in [Method::GET, Method::DELETE] {
        let response = call(&app, method, "acme", &path, &owner, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let response = call(
        &app,
        Method::POST,
        "acme",
        &format!("{path}/rotate"),
        &owner,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        usage_with(&app, "globex", &key_text(&globex_key))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_node_that_lost_its_listener_connection_forgets_cached_keys() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let key = key_text(&usage_key(&app, "acme", &owner).await);
    assert_eq!(
        usage_with(&app, "acme", &key).await.status(),
        StatusCode::OK
    );

    // Revoked behind the data plane's back: no NOTIFY, so the cached row still answers.
    let schema = tenant_schema(&app, "acme").await;
    let superuser = app.superuser().await;
    superuser
        .execute(
            &format!("UPDATE {schema}.api_keys SET revoked_at = now()"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        usage_with(&app, "acme", &key).await.status(),
        StatusCode::OK
    );

    // Cut the listening connections: the node may have missed news, so it drops its cache.
    let cut: i64 = superuser
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(cut >= 1);
    let refused = TestApp::eventually(Duration::from_secs(5), || async {
        usage_with(&app, "acme", &key).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "the node kept its cached key after losing LISTEN"
    );
}
