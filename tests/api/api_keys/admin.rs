//! The admin API's bookkeeping: usage counters, the `max_api_keys` quota under racing
//! creations, and malformed input refused with nothing created.

use super::*;

#[tokio::test]
async fn usage_counters_rise_without_a_write_per_request() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // Polled every 10 ms below: past the free plan's rate limits, which are not under test.
    app.raise_rate_limits("acme").await;
    let created = usage_key(&owner).await;
    assert_eq!(created.view.use_count, 0);
    assert!(created.view.last_used_at.is_none());
    let key = created.key.expose();
    for _ in 0..3 {
        assert_eq!(usage_with(&app, "acme", key).await.status(), StatusCode::OK);
    }
    let view = || async { owner.api_keys().get(created.view.id).await.unwrap() };
    let counted = TestApp::eventually(Duration::from_secs(5), || async {
        view().await.use_count == 3
    })
    .await;
    assert!(counted.is_some(), "{:?}", view().await);
    let last_used = view().await.last_used_at.unwrap();
    assert!((OffsetDateTime::now_utc() - last_used).abs() < time::Duration::minutes(1));

    // Refused requests do not count.
    let wrong = format!("{}{}", &key[..17], "A".repeat(43));
    assert_eq!(
        usage_with(&app, "acme", &wrong).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(usage_with(&app, "acme", key).await.status(), StatusCode::OK);
    let counted = TestApp::eventually(Duration::from_secs(5), || async {
        view().await.use_count == 4
    })
    .await;
    assert!(counted.is_some(), "{:?}", view().await);
}

#[tokio::test]
async fn creation_stops_at_the_quota_even_when_requests_race() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    // The free plan allows 2 live keys.
    let creations = (0..6).map(|i| {
        let owner = &owner;
        let key = NewKey::new(&format!("racer {i}"), &["usage:read"]);
        async move { owner.api_keys().create(&key).await }
    });
    let mut created = Vec::new();
    let mut refused = 0;
    for outcome in join_all(creations).await {
        match outcome {
            Ok(key) => created.push(key),
            Err(error) => {
                let refusal = error.api().unwrap_or_else(|| panic!("unexpected {error}"));
                assert_eq!(
                    (refusal.status, refusal.code.as_str()),
                    (StatusCode::FORBIDDEN, "quota_exceeded")
                );
                assert_eq!(
                    refusal.details,
                    Some(json!({"quota": "max_api_keys", "limit": 2}))
                );
                refused += 1;
            }
        }
    }
    assert_eq!((created.len(), refused), (2, 4));
    assert_eq!(owner.api_keys().list().await.unwrap().len(), 2);
    let usage = owner.usage().await.unwrap();
    assert_eq!(usage["api_keys"], json!({"used": 2, "limit": 2}));

    // A revoked key frees its place.
    owner.api_keys().revoke(created[0].view.id).await.unwrap();
    usage_key(&owner).await;
    let full = owner
        .api_keys()
        .create(&NewKey::new("one more", &["usage:read"]))
        .await
        .unwrap_err();
    assert_eq!(
        (full.status(), full.code()),
        (Some(StatusCode::FORBIDDEN), Some("quota_exceeded"))
    );
}

#[tokio::test]
async fn malformed_requests_get_400_and_create_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
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
        let response = owner.post(KEYS).json(&body).send().await.unwrap();
        assert_eq!(
            response.error_code(),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
    let not_json = owner
        .post(KEYS)
        .body("{\"name\": ", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert!(owner.api_keys().list().await.unwrap().is_empty());

    let created = usage_key(&owner).await;
    let rotate = format!("{}/rotate", key_path(created.view.id));
    for body in [
        json!({"grace_seconds": -1}),
        json!({"grace_seconds": 8 * 24 * 3600}),
        json!({"grace_seconds": "soon"}),
        json!({"grace": 10}),
    ] {
        let response = owner.post(&rotate).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    // The key was not rotated by any of them.
    assert_eq!(
        usage_with(&app, "acme", created.key.expose())
            .await
            .status(),
        StatusCode::OK
    );
    let view = owner.api_keys().get(created.view.id).await.unwrap();
    assert!(view.rotated_at.is_none());

    for path in [format!("{KEYS}/not-a-uuid"), key_path(Uuid::new_v4())] {
        let response = owner.get(&path).send().await.unwrap();
        assert_eq!(
            response.error_code(),
            (StatusCode::NOT_FOUND, "api_key_not_found")
        );
        let response = owner.delete(&path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
