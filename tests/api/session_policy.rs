//! The tenant's session policy: at most N live sessions per user (signing in beyond it ends
//! the oldest), an idle timeout measured between refreshes, and an absolute lifetime that no
//! activity extends. Time comes from the data plane's manual clock, so nothing sleeps.
//!
//! Sessions are held as raw tokens (never a client that refreshes by itself), so each refresh
//! the tests make is the one they mean.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::client::Tokens;
use tenantry_tests::{Client, Reply, TestApp, OWNER_EMAIL, PASSWORD};

async fn set_sessions_policy(owner: &Client, sessions: Value) {
    owner
        .put_setting("auth-policy", &json!({ "sessions": sessions }))
        .await
        .unwrap();
}

/// `POST /v1/auth/refresh` with the session's refresh token, whatever the answer.
async fn refresh(app: &TestApp, tokens: &Tokens) -> Reply {
    app.tenant("acme")
        .post("/v1/auth/refresh")
        .json(&json!({ "refresh_token": tokens.refresh_token.expose() }))
        .send()
        .await
        .unwrap()
}

/// `GET /v1/me` with the session's access token, whatever the answer.
async fn me(app: &TestApp, tokens: &Tokens) -> Reply {
    app.as_bearer("acme", tokens.access_token.expose())
        .get("/v1/me")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signing_in_beyond_the_session_limit_ends_the_oldest_session() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    set_sessions_policy(&owner, json!({ "max_concurrent": 2 })).await;
    // The set-up session, held as the bearer token it is now.
    let owner = app.as_bearer(
        "acme",
        owner.access_token().await.unwrap().unwrap().expose(),
    );

    let first = app.sign_in_tokens("acme", OWNER_EMAIL, PASSWORD).await;
    let second = app.sign_in_tokens("acme", OWNER_EMAIL, PASSWORD).await;
    assert_eq!(me(&app, &first).await.status(), StatusCode::OK);
    let third = app.sign_in_tokens("acme", OWNER_EMAIL, PASSWORD).await;

    // The policy counts every live session: `owner` (from set-up) and `first` are the oldest
    // and end; the two newest stay.
    assert_eq!(
        owner.get("/v1/me").send().await.unwrap().error_code(),
        (StatusCode::UNAUTHORIZED, "session_ended")
    );
    assert_eq!(
        me(&app, &first).await.error_code(),
        (StatusCode::UNAUTHORIZED, "session_ended")
    );
    assert_eq!(
        refresh(&app, &first).await.status(),
        StatusCode::UNAUTHORIZED
    );
    for live in [&second, &third] {
        assert_eq!(me(&app, live).await.status(), StatusCode::OK);
    }
    let sessions = app
        .as_bearer("acme", third.access_token.expose())
        .me()
        .sessions()
        .await
        .unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
}

#[tokio::test]
async fn an_idle_session_cannot_be_refreshed_and_no_activity_outlives_the_absolute_lifetime() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let owner = app.tenant_with_owner("acme").await;
    set_sessions_policy(
        &owner,
        json!({ "idle_timeout_minutes": 30, "absolute_lifetime_hours": 1 }),
    )
    .await;

    // Idle: refreshed within the timeout it lives on; left alone past it, it cannot be.
    let idle = app.sign_in_tokens("acme", OWNER_EMAIL, PASSWORD).await;
    clock.advance(time::Duration::minutes(29));
    let response = refresh(&app, &idle).await;
    assert_eq!(response.status(), StatusCode::OK);
    let idle: Tokens = response.json().unwrap();
    clock.advance(time::Duration::minutes(31));
    assert_eq!(
        refresh(&app, &idle).await.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_grant")
    );

    // Absolute: refreshed every 20 minutes, it still ends an hour after sign-in, and so do
    // its access tokens.
    let mut busy = app.sign_in_tokens("acme", OWNER_EMAIL, PASSWORD).await;
    for _ in 0..2 {
        clock.advance(time::Duration::minutes(20));
        let response = refresh(&app, &busy).await;
        assert_eq!(response.status(), StatusCode::OK);
        busy = response.json().unwrap();
    }
    assert_eq!(me(&app, &busy).await.status(), StatusCode::OK);
    clock.advance(time::Duration::minutes(21));
    assert_eq!(
        refresh(&app, &busy).await.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_grant")
    );
    assert_eq!(
        me(&app, &busy).await.error_code(),
        (StatusCode::UNAUTHORIZED, "session_ended")
    );
}
