//! Identity: activation, password sign-in, lockout, tokens bound to their tenant, refresh
//! rotation and reuse, sessions and their revocation across nodes.
//!
//! These tests are about the tokens themselves, so they hold them: sign-ins go through
//! `auth().login` and requests carry a fixed access token (`as_bearer`), never a session the
//! client would refresh by itself.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::client::Tokens;
use tenantry_tests::{Client, Reply, TestApp, TestOptions, PASSWORD};

/// `POST /v1/auth/refresh` with `refresh_token`, whatever the answer.
async fn refresh(tenant: &Client, refresh_token: &str) -> Reply {
    tenant
        .post("/v1/auth/refresh")
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap()
}

/// `GET /v1/me` as the holder of `access_token`, whatever the answer.
async fn me(app: &TestApp, slug: &str, access_token: &str) -> Reply {
    app.as_bearer(slug, access_token)
        .get("/v1/me")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_first_admin_activates_signs_in_and_sees_themself() {
    let app = TestApp::spawn().await;
    let (_, token) = app
        .create_tenant_with_admin("acme", "Ada@Acme.example")
        .await;
    let acme = app.tenant("acme");

    // A weak password is refused with every failed rule listed, and the token is not spent.
    let weak = acme.auth().activate(&token, "ada").await.unwrap_err();
    assert_eq!(weak.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(weak.code(), Some("password_policy"));
    let details = weak.api().unwrap().details.clone().unwrap_or_default();
    assert!(
        details["failed_rules"].as_array().unwrap().len() >= 2,
        "{details}"
    );

    acme.auth().activate(&token, PASSWORD).await.unwrap();
    // Single use.
    let again = acme
        .post("/v1/auth/activate")
        .json(&json!({"token": token, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );

    let tokens = app
        .sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await;
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 900);
    assert!(tokens.refresh_token.expose().starts_with("tnrt_"));
    let ada = app.as_bearer("acme", tokens.access_token.expose());
    let profile = ada.me().get().await.unwrap();
    assert_eq!(profile.email, "ada@acme.example");
    assert_eq!(profile.roles, ["owner"]);
    assert_eq!(profile.amr, ["pwd"]);
    assert!(profile.email_verified);

    // No token, or a garbage one: 401.
    let anonymous = acme.get("/v1/me").send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        me(&app, "acme", "not.a.jwt").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn two_tenants_keep_same_email_users_apart_and_tokens_do_not_cross() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "sam@shared.example", PASSWORD)
        .await;
    app.tenant_with_active_admin("globex", "sam@shared.example", "another long passphrase")
        .await;
    let globex = app.tenant("globex");

    // Each tenant's Sam has their own password.
    let wrong = globex
        .post("/v1/auth/login")
        .json(&json!({"email": "sam@shared.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );

    let acme = app
        .sign_in_tokens("acme", "sam@shared.example", PASSWORD)
        .await;
    let access = acme.access_token.expose();
    assert_eq!(me(&app, "acme", access).await.status(), StatusCode::OK);
    // A valid token of acme is refused by globex.
    assert_eq!(
        me(&app, "globex", access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // So is acme's refresh token.
    assert_eq!(
        refresh(&globex, acme.refresh_token.expose()).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // JWKS and discovery are per tenant: different keys, different issuers.
    let jwks = |slug: &'static str| {
        let app = &app;
        async move {
            app.tenant(slug)
                .get("/v1/.well-known/jwks.json")
                .ok::<Value>()
                .await
                .unwrap()
        }
    };
    let (acme_keys, globex_keys) = (jwks("acme").await, jwks("globex").await);
    assert_eq!(acme_keys["keys"][0]["kty"], "OKP");
    assert_eq!(acme_keys["keys"][0]["crv"], "Ed25519");
    assert_ne!(acme_keys["keys"][0]["kid"], globex_keys["keys"][0]["kid"]);
    let discovery: Value = app
        .tenant("acme")
        .get("/v1/.well-known/openid-configuration")
        .ok()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], "https://acme.tenantry.test");
    assert_eq!(
        discovery["jwks_uri"],
        "https://acme.tenantry.test/v1/.well-known/jwks.json"
    );
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_answer_and_both_lock_out() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let acme = app.tenant("acme");
    let attempt = |email: &'static str, password: &'static str| {
        let acme = &acme;
        async move {
            acme.post("/v1/auth/login")
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..5 {
        let known = attempt("ada@acme.example", "wrong password here").await;
        assert_eq!(
            known.error_code(),
            (StatusCode::UNAUTHORIZED, "invalid_credentials")
        );
        let unknown = attempt("nobody@acme.example", "wrong password here").await;
        assert_eq!(
            unknown.error_code(),
            (StatusCode::UNAUTHORIZED, "invalid_credentials")
        );
    }
    // Both addresses are now locked, the right password included.
    for email in ["ada@acme.example", "nobody@acme.example"] {
        let locked = attempt(email, PASSWORD).await;
        assert_eq!(
            locked.error_code(),
            (StatusCode::TOO_MANY_REQUESTS, "login_locked")
        );
        let retry_after: u64 = locked.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=15 * 60).contains(&retry_after));
    }
    // Every attempt was recorded for the audit log.
    let db = app.superuser().await;
    let recorded: i64 = db
        .query_one(
            "SELECT count(*) AS recorded FROM tenant_acme.login_attempts",
            &[],
        )
        .await
        .unwrap()
        .try_get("recorded")
        .unwrap();
    assert_eq!(recorded, 12);
    // When the lock has passed, the right password works again.
    db.execute(
        "UPDATE tenant_acme.login_throttle SET locked_until = now() - interval '1 second'",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        attempt("ada@acme.example", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_late_reuse_ends_the_whole_session() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let acme = app.tenant("acme");
    let first = app
        .sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await;

    let second = acme
        .auth()
        .refresh(first.refresh_token.expose())
        .await
        .unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    let third = acme
        .auth()
        .refresh(second.refresh_token.expose())
        .await
        .unwrap();
    assert!(!third.access_token.expose().is_empty());

    // The first token re-presented long after it was used (as a thief would): the session ends,
    // so even the newest tokens stop working.
    app.superuser()
        .await
        .execute(
            "UPDATE tenant_acme.refresh_tokens SET used_at = used_at - interval '1 hour'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        refresh(&acme, first.refresh_token.expose())
            .await
            .error_code(),
        (StatusCode::UNAUTHORIZED, "refresh_token_reused")
    );
    assert_eq!(
        refresh(&acme, third.refresh_token.expose()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(&app, "acme", third.access_token.expose())
            .await
            .error_code(),
        (StatusCode::UNAUTHORIZED, "session_ended")
    );
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_get_one_new_pair_and_stay_signed_in() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let acme = app.tenant("acme");
    let tokens = app
        .sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await;
    let (left, right) = tokio::join!(
        refresh(&acme, tokens.refresh_token.expose()),
        refresh(&acme, tokens.refresh_token.expose())
    );
    let mut statuses = [left.status(), right.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    let winner: Tokens = if left.status() == StatusCode::OK {
        left.json().unwrap()
    } else {
        right.json().unwrap()
    };
    // The session survived: the winner's pair keeps working, and only one chain exists.
    assert_eq!(
        me(&app, "acme", winner.access_token.expose())
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        refresh(&acme, winner.refresh_token.expose()).await.status(),
        StatusCode::OK
    );
    let live: i64 = app
        .superuser()
        .await
        .query_one(
            "SELECT count(*) AS live FROM tenant_acme.refresh_tokens WHERE used_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .try_get("live")
        .unwrap();
    assert_eq!(live, 1);
}

#[tokio::test]
async fn a_revoked_session_is_refused_on_another_node_within_a_second() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let (_node, other_url) = app.spawn_data_node(&TestOptions::default()).await;
    let phone_tokens = app
        .sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await;
    let laptop_tokens = app
        .sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await;
    let phone = app.as_bearer("acme", phone_tokens.access_token.expose());
    let phone_on_other = phone.on(&other_url);
    let laptop = app.as_bearer("acme", laptop_tokens.access_token.expose());

    // The other node has seen the phone's session as live (and cached it).
    let phone_session = phone_on_other.me().get().await.unwrap().session_id;

    assert_ne!(laptop.me().get().await.unwrap().session_id, phone_session);
    assert_eq!(laptop.me().sessions().await.unwrap().len(), 2);

    // The laptop ends the phone's session on the first node.
    let ended = laptop
        .delete(format!("/v1/me/sessions/{phone_session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let refused_within = TestApp::eventually(Duration::from_secs(1), || {
        let phone_on_other = &phone_on_other;
        async move {
            phone_on_other.get("/v1/me").send().await.unwrap().status() == StatusCode::UNAUTHORIZED
        }
    })
    .await;
    assert!(
        refused_within.is_some(),
        "the other node still accepts the revoked session"
    );
    // The laptop is unaffected; logout ends it too.
    assert_eq!(
        laptop.get("/v1/me").send().await.unwrap().status(),
        StatusCode::OK
    );
    let logout = laptop.post("/v1/auth/logout").send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        laptop.get("/v1/me").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_refuses_a_recent_password() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let here_tokens = app
        .sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await;
    let elsewhere = app
        .sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await;
    let here = app.as_bearer("acme", here_tokens.access_token.expose());
    let change = |current: &'static str, new: &'static str| {
        let here = &here;
        async move {
            here.post("/v1/me/password")
                .json(&json!({"current_password": current, "new_password": new}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        change("wrong current password", "a brand new passphrase")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        change(PASSWORD, PASSWORD).await.error_code(),
        (StatusCode::BAD_REQUEST, "password_policy")
    );
    assert_eq!(
        change(PASSWORD, "a brand new passphrase").await.status(),
        StatusCode::NO_CONTENT
    );

    assert_eq!(
        here.get("/v1/me").send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        me(&app, "acme", elsewhere.access_token.expose())
            .await
            .error_code(),
        (StatusCode::UNAUTHORIZED, "session_ended")
    );
    app.signed_in("acme", "ada@acme.example", "a brand new passphrase")
        .await;
}
