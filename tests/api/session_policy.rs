//! The tenant's session policy: at most N live sessions per user (signing in beyond it ends
//! the oldest), an idle timeout measured between refreshes, and an absolute lifetime that no
//! activity extends. Time comes from the data plane's manual clock, so nothing sleeps.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::TestApp;

use crate::mfa::app_with_clock;
use crate::users_admin::{access, call, error_code, tenant_with_owner, OWNER_EMAIL, PASSWORD};

async fn set_sessions_policy(app: &TestApp, owner: &str, sessions: Value) {
    let response = call(
        app,
        Method::PUT,
        "acme",
        "/v1/settings/auth-policy",
        owner,
        Some(json!({ "sessions": sessions })),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn refresh(app: &TestApp, tokens: &Value) -> reqwest::Response {
    app.tenant_post(
        "acme",
        "/v1/auth/refresh",
        &json!({ "refresh_token": tokens["refresh_token"] }),
    )
    .send()
    .await
    .unwrap()
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.tenant_get("acme", "/v1/me")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signing_in_beyond_the_session_limit_ends_the_oldest_session() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    set_sessions_policy(&app, &owner, json!({ "max_concurrent": 2 })).await;

    let first = app.sign_in("acme", OWNER_EMAIL, PASSWORD).await;
    let second = app.sign_in("acme", OWNER_EMAIL, PASSWORD).await;
    assert_eq!(me(&app, &access(&first)).await.status(), StatusCode::OK);
    let third = app.sign_in("acme", OWNER_EMAIL, PASSWORD).await;

    // The policy counts every live session: `owner` (from set-up) and `first` are the oldest
    // and end; the two newest stay.
    for ended in [&owner, &access(&first)] {
        assert_eq!(
            error_code(me(&app, ended).await).await,
            (StatusCode::UNAUTHORIZED, "session_ended".to_owned())
        );
    }
    assert_eq!(
        refresh(&app, &first).await.status(),
        StatusCode::UNAUTHORIZED
    );
    for live in [&second, &third] {
        assert_eq!(me(&app, &access(live)).await.status(), StatusCode::OK);
    }
    let listed: Value = app
        .tenant_get("acme", "/v1/me/sessions")
        .bearer_auth(access(&third))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2, "{listed}");
}

#[tokio::test]
async fn an_idle_session_cannot_be_refreshed_and_no_activity_outlives_the_absolute_lifetime() {
    let (app, clock) = app_with_clock().await;
    let owner = tenant_with_owner(&app, "acme").await;
    set_sessions_policy(
        &app,
        &owner,
        json!({ "idle_timeout_minutes": 30, "absolute_lifetime_hours": 1 }),
    )
    .await;

    // Idle: refreshed within the timeout it lives on; left alone past it, it cannot be.
    let idle = app.sign_in("acme", OWNER_EMAIL, PASSWORD).await;
    clock.advance(time::Duration::minutes(29));
    let response = refresh(&app, &idle).await;
    assert_eq!(response.status(), StatusCode::OK);
    let idle: Value = response.json().await.unwrap();
    clock.advance(time::Duration::minutes(31));
    assert_eq!(
        error_code(refresh(&app, &idle).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_grant".to_owned())
    );

    // Absolute: refreshed every 20 minutes, it still ends an hour after sign-in, and so do
    // its access tokens.
    let mut busy = app.sign_in("acme", OWNER_EMAIL, PASSWORD).await;
    for _ in 0..2 {
        clock.advance(time::Duration::minutes(20));
        let response = refresh(&app, &busy).await;
        assert_eq!(response.status(), StatusCode::OK);
        busy = response.json().await.unwrap();
    }
    assert_eq!(me(&app, &access(&busy)).await.status(), StatusCode::OK);
    clock.advance(time::Duration::minutes(21));
    assert_eq!(
        error_code(refresh(&app, &busy).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_grant".to_owned())
    );
    assert_eq!(
        error_code(me(&app, &access(&busy)).await).await,
        (StatusCode::UNAUTHORIZED, "session_ended".to_owned())
    );
}
