//! The admin API's bookkeeping: usage counters, the `max_api_keys` quota under racing
//! creations, and malformed input refused with nothing created.

use super::*;

#[tokio::test]
async fn usage_counters_rise_without_a_write_per_request() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    // Polled every 10 ms below: past the free plan's rate limits, which are not under test.
    app.raise_rate_limits("acme").await;
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
    // A burst of writes past the free plan's rate limits, which are not under test here.
    app.raise_rate_limits("acme").await;
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
