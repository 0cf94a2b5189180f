//! A key's life: revocation (on every node, and after a lost LISTEN connection), expiry and
//! rotation with its grace period, time from a manual clock.

use super::*;

/// `POST …/rotate` with `grace_seconds` for the old secret (the client's `rotate` leaves the
/// server's default, 30 minutes); the rotated key with its new secret.
async fn rotate_with_grace(owner: &Client, id: Uuid, grace_seconds: i64) -> CreatedKey {
    owner
        .post(format!("{}/rotate", key_path(id)))
        .json(&json!({ "grace_seconds": grace_seconds }))
        .ok()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_and_on_another_node_within_a_second() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let created = usage_key(&owner).await;
    let key = created.key.expose();
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let key_on_second = app.tenant("acme").on(&second).with_api_key(key);
    let on_second = || async {
        key_on_second
            .get("/v1/usage")
            .send()
            .await
            .unwrap()
            .status()
    };
    // The second node has the key cached.
    assert_eq!(on_second().await, StatusCode::OK);
    assert_eq!(on_second().await, StatusCode::OK);

    owner.api_keys().revoke(created.view.id).await.unwrap();
    assert_eq!(
        usage_with(&app, "acme", key).await.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
    let refused = TestApp::eventually(Duration::from_secs(1), || async {
        on_second().await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "the second node still accepts the revoked key"
    );

    let view = owner.api_keys().get(created.view.id).await.unwrap();
    assert_eq!(view.status, "revoked");
    assert!(view.revoked_at.is_some());
    // Revoked keys cannot be rotated back to life; revoking again changes nothing.
    let rotated = owner.api_keys().rotate(created.view.id).await.unwrap_err();
    assert_eq!(
        (rotated.status(), rotated.code()),
        (Some(StatusCode::CONFLICT), Some("api_key_revoked"))
    );
    owner.api_keys().revoke(created.view.id).await.unwrap();
    assert_eq!(
        usage_with(&app, "acme", key).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_node_that_lost_its_listener_connection_forgets_cached_keys() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let key = usage_key(&owner).await.key;
    let key = key.expose();
    assert_eq!(usage_with(&app, "acme", key).await.status(), StatusCode::OK);

    // Revoked behind the data plane's back: no NOTIFY, so the cached row still answers.
    let schema = app.tenant_schema("acme").await;
    let superuser = app.superuser().await;
    superuser
        .execute(
            &format!("UPDATE {schema}.api_keys SET revoked_at = now()"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(usage_with(&app, "acme", key).await.status(), StatusCode::OK);

    // Cut the listening connections: the node may have missed news, so it drops its cache.
    let cut: i64 = superuser
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) AS cut FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .try_get("cut")
        .unwrap();
    assert!(cut >= 1);
    let refused = TestApp::eventually(Duration::from_secs(5), || async {
        usage_with(&app, "acme", key).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "the node kept its cached key after losing LISTEN"
    );
}

#[tokio::test]
async fn an_expired_key_is_refused_and_no_longer_counts() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let owner = app.tenant_with_owner("acme").await;
    let in_the_past = clock.now() - time::Duration::seconds(1);
    let refused = owner
        .api_keys()
        .create(&NewKey::new("late", &["usage:read"]).expires_at(in_the_past))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(StatusCode::BAD_REQUEST), Some("invalid_expiry"))
    );

    let expires_at = clock.now() + time::Duration::hours(1);
    let created = owner
        .api_keys()
        .create(&NewKey::new("hourly", &["usage:read"]).expires_at(expires_at))
        .await
        .unwrap();
    let key = created.key.expose();
    assert_eq!(usage_with(&app, "acme", key).await.status(), StatusCode::OK);

    clock.advance(time::Duration::minutes(59));
    assert_eq!(usage_with(&app, "acme", key).await.status(), StatusCode::OK);
    clock.advance(time::Duration::minutes(2));
    assert_eq!(
        usage_with(&app, "acme", key).await.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
    let view = owner.api_keys().get(created.view.id).await.unwrap();
    assert_eq!(view.status, "expired");
    let usage = owner.usage().await.unwrap();
    assert_eq!(usage["api_keys"]["used"], 0);
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_the_grace_period_only() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let owner = app.tenant_with_owner("acme").await;
    let created = usage_key(&owner).await;
    let id = created.view.id;
    let old = created.key.expose();

    let rotated = rotate_with_grace(&owner, id, 600).await;
    let new = rotated.key.expose();
    assert_ne!(new, old);
    assert_eq!(rotated.view.id, id);
    assert_eq!(rotated.view.prefix, created.view.prefix);
    assert_eq!(
        rotated.view.previous_secret_expires_at,
        Some(clock.now() + time::Duration::seconds(600))
    );

    assert_eq!(usage_with(&app, "acme", old).await.status(), StatusCode::OK);
    assert_eq!(usage_with(&app, "acme", new).await.status(), StatusCode::OK);
    clock.advance(time::Duration::seconds(599));
    assert_eq!(usage_with(&app, "acme", old).await.status(), StatusCode::OK);
    clock.advance(time::Duration::seconds(2));
    assert_eq!(
        usage_with(&app, "acme", old).await.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
    assert_eq!(usage_with(&app, "acme", new).await.status(), StatusCode::OK);

    // Without a body the grace is 30 minutes; the secret before that stops at once.
    let third = owner.api_keys().rotate(id).await.unwrap();
    assert_eq!(
        third.view.previous_secret_expires_at,
        Some(clock.now() + time::Duration::minutes(30))
    );
    let newest = third.key.expose();
    assert_eq!(
        usage_with(&app, "acme", old).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(usage_with(&app, "acme", new).await.status(), StatusCode::OK);
    assert_eq!(
        usage_with(&app, "acme", newest).await.status(),
        StatusCode::OK
    );
    clock.advance(time::Duration::minutes(31));
    assert_eq!(
        usage_with(&app, "acme", new).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        usage_with(&app, "acme", newest).await.status(),
        StatusCode::OK
    );

    // A grace of zero ends the old secret at once.
    let last = rotate_with_grace(&owner, id, 0).await;
    assert_eq!(
        usage_with(&app, "acme", newest).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        usage_with(&app, "acme", last.key.expose()).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_rotation_on_one_node_is_seen_by_another_at_once() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let created = usage_key(&owner).await;
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let on_second = |key: &str| {
        let client = app.tenant("acme").on(&second).with_api_key(key);
        async move { client.get("/v1/usage").send().await.unwrap().status() }
    };
    assert_eq!(on_second(created.key.expose()).await, StatusCode::OK);
    let rotated = rotate_with_grace(&owner, created.view.id, 0).await;
    // No waiting: a secret the cached row does not know is checked against the table.
    assert_eq!(on_second(rotated.key.expose()).await, StatusCode::OK);
    let refused = TestApp::eventually(Duration::from_secs(1), || async {
        on_second(created.key.expose()).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused.is_some());
}
