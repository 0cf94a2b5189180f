//! A key's life: revocation (on every node, and after a lost LISTEN connection), expiry and
//! rotation with its grace period, time from a manual clock.

use super::*;

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
