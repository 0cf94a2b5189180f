//! Password reset by mail: the mailed token sets a new password once, ends every session and
//! clears the lockout; refused passwords leave the token usable; unknown addresses get the
//! same answer and no mail; the mails are throttled; tokens are bound to their tenant.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp};

use crate::email_flows::{
    error_code, mailed_token, post, queued_mails, wait_for_subject, PASSWORD,
};

const NEW_PASSWORD: &str = "a brand new passphrase for grace";

async fn request_reset(app: &TestApp, slug: &str, email: &str) -> reqwest::Response {
    post(
        app,
        slug,
        "/v1/auth/password-reset",
        json!({"email": email}),
    )
    .await
}

async fn confirm(app: &TestApp, slug: &str, token: &str, password: &str) -> reqwest::Response {
    post(
        app,
        slug,
        "/v1/auth/password-reset/confirm",
        json!({"token": token, "password": password}),
    )
    .await
}

/// Asks for a reset of `email` and returns the token of the mail that arrives.
async fn mailed_reset_token(app: &TestApp, slug: &str, email: &str) -> String {
    assert_eq!(
        request_reset(app, slug, email).await.status(),
        StatusCode::ACCEPTED
    );
    let mail = wait_for_subject(app, email, "Reset your").await;
    mailed_token(&mail, slug, "/reset-password")
}

#[tokio::test]
async fn a_mailed_reset_sets_a_new_password_once_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let email = unique_address("forgetful");
    app.tenant_with_active_admin("reset", &email, PASSWORD)
        .await;
    let phone = app.sign_in("reset", &email, PASSWORD).await;
    let laptop = app.sign_in("reset", &email, PASSWORD).await;

    let token = mailed_reset_token(&app, "reset", &email).await;

    // Refused passwords (the policy; the current password, by the history) keep the token.
    let weak = confirm(&app, "reset", &token, "short").await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let body: Value = weak.json().await.unwrap();
    assert_eq!(body["error"]["code"], "password_policy");
    let (status, code) = error_code(confirm(&app, "reset", &token, PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "password_policy")
    );
    // Nothing changed meanwhile.
    app.sign_in("reset", &email, PASSWORD).await;

    assert_eq!(
        confirm(&app, "reset", &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    let (status, _) = error_code(
        post(
            &app,
            "reset",
            "/v1/auth/login",
            json!({"email": email, "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    app.sign_in("reset", &email, NEW_PASSWORD).await;

    for session in [&phone, &laptop] {
        let refreshed = post(
            &app,
            "reset",
            "/v1/auth/refresh",
            json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
        assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
        let me = app
            .tenant_get("reset", "/v1/me")
            .bearer_auth(session["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    }

    let (status, code) =
        error_code(confirm(&app, "reset", &token, "yet another long passphrase").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    let (status, code) = error_code(confirm(&app, "reset", "tnut_junk", NEW_PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
}

#[tokio::test]
async fn a_reset_of_an_unknown_or_unverified_address_answers_the_same_and_mails_nothing() {
    let app = TestApp::spawn().await;
    let owner = unique_address("owner");
    app.tenant_with_active_admin("quiet", &owner, PASSWORD)
        .await;
    crate::email_flows::allow_self_signup(&app, "quiet").await;
    let pending = unique_address("pending");
    post(
        &app,
        "quiet",
        "/v1/auth/register",
        json!({"email": pending, "password": PASSWORD}),
    )
    .await;
    let unknown = unique_address("nobody");

    let known: Value = request_reset(&app, "quiet", &owner)
        .await
        .json()
        .await
        .unwrap();
    for address in [&unknown, &pending] {
        let answer = request_reset(&app, "quiet", address).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        assert_eq!(answer.json::<Value>().await.unwrap(), known);
    }
    assert_eq!(queued_mails(&app, "quiet", &unknown).await, 0);
    // The pending user's only mail is its verification.
    assert_eq!(queued_mails(&app, "quiet", &pending).await, 1);
    // The owner: activation and reset.
    assert_eq!(queued_mails(&app, "quiet", &owner).await, 2);
}

#[tokio::test]
async fn reset_mails_are_throttled_per_address_and_the_answer_does_not_change() {
    let app = TestApp::spawn().await;
    let email = unique_address("bombed");
    app.tenant_with_active_admin("throttle", &email, PASSWORD)
        .await;
    for _ in 0..6 {
        let answer = request_reset(&app, "throttle", &email).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }
    // The activation mail and three resets.
    assert_eq!(queued_mails(&app, "throttle", &email).await, 4);
}

#[tokio::test]
async fn a_reset_clears_the_lockout_of_the_address() {
    let app = TestApp::spawn().await;
    let email = unique_address("locked");
    app.tenant_with_active_admin("lockout", &email, PASSWORD)
        .await;
    let mut locked = false;
    for _ in 0..6 {
        let response = post(
            &app,
            "lockout",
            "/v1/auth/login",
            json!({"email": email, "password": "wrong wrong wrong"}),
        )
        .await;
        locked |= response.status() == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(locked);

    let token = mailed_reset_token(&app, "lockout", &email).await;
    assert_eq!(
        confirm(&app, "lockout", &token, NEW_PASSWORD)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    app.sign_in("lockout", &email, NEW_PASSWORD).await;
}

#[tokio::test]
async fn a_reset_token_of_one_tenant_is_refused_at_another() {
    let app = TestApp::spawn().await;
    let email = unique_address("twice");
    app.tenant_with_active_admin("first", &email, PASSWORD)
        .await;
    app.tenant_with_active_admin("second", &email, PASSWORD)
        .await;
    let token = mailed_reset_token(&app, "first", &email).await;

    let (status, code) = error_code(confirm(&app, "second", &token, NEW_PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    app.sign_in("second", &email, PASSWORD).await;
    assert_eq!(
        confirm(&app, "first", &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_token_mailed_for_one_purpose_is_refused_for_another() {
    let app = TestApp::spawn().await;
    let owner = unique_address("purposes");
    app.tenant_with_active_admin("purpose", &owner, PASSWORD)
        .await;
    crate::email_flows::allow_self_signup(&app, "purpose").await;
    let newcomer = unique_address("newcomer");
    post(
        &app,
        "purpose",
        "/v1/auth/register",
        json!({"email": newcomer, "password": PASSWORD}),
    )
    .await;
    let verification = mailed_token(
        &wait_for_subject(&app, &newcomer, "Confirm your email").await,
        "purpose",
        "/verify-email",
    );
    let reset = mailed_reset_token(&app, "purpose", &owner).await;

    let (status, code) =
        error_code(confirm(&app, "purpose", &verification, NEW_PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    for (path, body) in [
        ("/v1/auth/verify-email", json!({"token": reset})),
        (
            "/v1/auth/activate",
            json!({"token": reset, "password": NEW_PASSWORD}),
        ),
    ] {
        let (status, code) = error_code(post(&app, "purpose", path, body).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_token"),
            "{path}"
        );
    }
    // Both were live all along: each still works for what it was mailed for.
    assert_eq!(
        confirm(&app, "purpose", &reset, NEW_PASSWORD)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let verified = post(
        &app,
        "purpose",
        "/v1/auth/verify-email",
        json!({"token": verification}),
    )
    .await;
    assert_eq!(verified.status(), StatusCode::OK);
}

#[tokio::test]
async fn expired_verification_and_reset_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let owner = unique_address("late");
    app.tenant_with_active_admin("expiry", &owner, PASSWORD)
        .await;
    crate::email_flows::allow_self_signup(&app, "expiry").await;
    let newcomer = unique_address("slow");
    post(
        &app,
        "expiry",
        "/v1/auth/register",
        json!({"email": newcomer, "password": PASSWORD}),
    )
    .await;
    let verification = mailed_token(
        &wait_for_subject(&app, &newcomer, "Confirm your email").await,
        "expiry",
        "/verify-email",
    );
    let reset = mailed_reset_token(&app, "expiry", &owner).await;
    // Time passes: both tokens' lifetimes (24 hours, 1 hour) end.
    app.superuser()
        .await
        .execute(
            "UPDATE tenant_expiry.user_tokens SET expires_at = now() - interval '1 second'
             WHERE purpose IN ('email_verification', 'password_reset')",
            &[],
        )
        .await
        .unwrap();

    let (status, code) = error_code(
        post(
            &app,
            "expiry",
            "/v1/auth/verify-email",
            json!({"token": verification}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    let (status, code) = error_code(confirm(&app, "expiry", &reset, NEW_PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    app.sign_in("expiry", &owner, PASSWORD).await;
}
