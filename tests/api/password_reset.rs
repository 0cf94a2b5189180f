//! Password reset by mail: the mailed token sets a new password once, ends every session and
//! clears the lockout; refused passwords leave the token usable; unknown addresses get the
//! same answer and no mail; the mails are throttled; tokens are bound to their tenant.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::{mailed_token, unique_address, Client, Reply, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "a brand new passphrase for grace";

/// `POST /v1/auth/password-reset/confirm`, whatever the answer.
async fn confirm(tenant: &Client, token: &str, password: &str) -> Reply {
    tenant
        .post("/v1/auth/password-reset/confirm")
        .json(&json!({"token": token, "password": password}))
        .send()
        .await
        .unwrap()
}

/// `POST /v1/auth/password-reset`, whatever the answer.
async fn request_reset(tenant: &Client, email: &str) -> Reply {
    tenant
        .post("/v1/auth/password-reset")
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

/// Asks for a reset of `email` at `slug` and returns the token of the mail that arrives.
async fn mailed_reset_token(app: &TestApp, slug: &str, email: &str) -> String {
    assert_eq!(
        request_reset(&app.tenant(slug), email).await.status(),
        StatusCode::ACCEPTED
    );
    let mail = app.wait_for_subject(email, "Reset your").await;
    mailed_token(&mail, slug, "/console/reset-password")
}

/// A self-registration at `tenant` that stays pending until its mail is followed.
async fn register(tenant: &Client, email: &str) {
    tenant.auth().register(email, PASSWORD, None).await.unwrap();
}

#[tokio::test]
async fn a_mailed_reset_sets_a_new_password_once_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let email = unique_address("forgetful");
    app.tenant_with_active_admin("reset", &email, PASSWORD)
        .await;
    let reset = app.tenant("reset");
    let phone = app.sign_in_tokens("reset", &email, PASSWORD).await;
    let laptop = app.sign_in_tokens("reset", &email, PASSWORD).await;

    let token = mailed_reset_token(&app, "reset", &email).await;

    // Refused passwords (the policy; the current password, by the history) keep the token.
    assert_eq!(
        confirm(&reset, &token, "short").await.error_code(),
        (StatusCode::BAD_REQUEST, "password_policy")
    );
    assert_eq!(
        confirm(&reset, &token, PASSWORD).await.error_code(),
        (StatusCode::BAD_REQUEST, "password_policy")
    );
    // Nothing changed meanwhile.
    app.signed_in("reset", &email, PASSWORD).await;

    assert_eq!(
        confirm(&reset, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    let old = reset.auth().login(&email, PASSWORD).await.unwrap_err();
    assert_eq!(
        old.status(),
        Some(StatusCode::UNAUTHORIZED),
        "the old password is gone"
    );
    app.signed_in("reset", &email, NEW_PASSWORD).await;

    for tokens in [phone, laptop] {
        let refreshed = reset
            .auth()
            .refresh(tokens.refresh_token.expose())
            .await
            .unwrap_err();
        assert_eq!(refreshed.status(), Some(StatusCode::UNAUTHORIZED));
        let me = app
            .as_bearer("reset", tokens.access_token.expose())
            .get("/v1/me")
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    }

    assert_eq!(
        confirm(&reset, &token, "yet another long passphrase")
            .await
            .error_code(),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    assert_eq!(
        confirm(&reset, "tnut_junk", NEW_PASSWORD)
            .await
            .error_code(),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
}

#[tokio::test]
async fn a_reset_of_an_unknown_or_unverified_address_answers_the_same_and_mails_nothing() {
    let app = TestApp::spawn().await;
    let owner = unique_address("owner");
    app.tenant_with_active_admin("quiet", &owner, PASSWORD)
        .await;
    app.allow_self_signup("quiet").await;
    let quiet = app.tenant("quiet");
    let pending = unique_address("pending");
    register(&quiet, &pending).await;
    let unknown = unique_address("nobody");

    let known: Value = request_reset(&quiet, &owner).await.json().unwrap();
    for address in [&unknown, &pending] {
        let answer = request_reset(&quiet, address).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        assert_eq!(answer.json::<Value>().unwrap(), known);
    }
    assert_eq!(app.queued_mails("quiet", &unknown).await, 0);
    // The pending user's only mail is its verification.
    assert_eq!(app.queued_mails("quiet", &pending).await, 1);
    // The owner: activation and reset.
    assert_eq!(app.queued_mails("quiet", &owner).await, 2);
}

#[tokio::test]
async fn reset_mails_are_throttled_per_address_and_the_answer_does_not_change() {
    let app = TestApp::spawn().await;
    let email = unique_address("bombed");
    app.tenant_with_active_admin("throttle", &email, PASSWORD)
        .await;
    let throttle = app.tenant("throttle");
    for _ in 0..6 {
        let answer = request_reset(&throttle, &email).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }
    // The activation mail and three resets.
    assert_eq!(app.queued_mails("throttle", &email).await, 4);
}

#[tokio::test]
async fn a_reset_clears_the_lockout_of_the_address() {
    let app = TestApp::spawn().await;
    let email = unique_address("locked");
    app.tenant_with_active_admin("lockout", &email, PASSWORD)
        .await;
    let lockout = app.tenant("lockout");
    let mut locked = false;
    for _ in 0..6 {
        let refused = lockout
            .auth()
            .login(&email, "wrong wrong wrong")
            .await
            .unwrap_err();
        locked |= refused.status() == Some(StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(locked);

    let token = mailed_reset_token(&app, "lockout", &email).await;
    assert_eq!(
        confirm(&lockout, &token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    app.signed_in("lockout", &email, NEW_PASSWORD).await;
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

    assert_eq!(
        confirm(&app.tenant("second"), &token, NEW_PASSWORD)
            .await
            .error_code(),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    app.signed_in("second", &email, PASSWORD).await;
    assert_eq!(
        confirm(&app.tenant("first"), &token, NEW_PASSWORD)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_token_mailed_for_one_purpose_is_refused_for_another() {
    let app = TestApp::spawn().await;
    let owner = unique_address("purposes");
    app.tenant_with_active_admin("purpose", &owner, PASSWORD)
        .await;
    app.allow_self_signup("purpose").await;
    let purpose = app.tenant("purpose");
    let newcomer = unique_address("newcomer");
    register(&purpose, &newcomer).await;
    let verification = mailed_token(
        &app.wait_for_subject(&newcomer, "Confirm your email").await,
        "purpose",
        "/console/verify-email",
    );
    let reset = mailed_reset_token(&app, "purpose", &owner).await;

    assert_eq!(
        confirm(&purpose, &verification, NEW_PASSWORD)
            .await
            .error_code(),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    for (path, body) in [
        ("/v1/auth/verify-email", json!({"token": reset})),
        (
            "/v1/auth/activate",
            json!({"token": reset, "password": NEW_PASSWORD}),
        ),
    ] {
        let answer = purpose.post(path).json(&body).send().await.unwrap();
        assert_eq!(
            answer.error_code(),
            (StatusCode::BAD_REQUEST, "invalid_token"),
            "{path}"
        );
    }
    // Both were live all along: each still works for what it was mailed for.
    assert_eq!(
        confirm(&purpose, &reset, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );
    purpose.auth().verify_email(&verification).await.unwrap();
}

#[tokio::test]
async fn expired_verification_and_reset_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let owner = unique_address("late");
    app.tenant_with_active_admin("expiry", &owner, PASSWORD)
        .await;
    app.allow_self_signup("expiry").await;
    let expiry = app.tenant("expiry");
    let newcomer = unique_address("slow");
    register(&expiry, &newcomer).await;
    let verification = mailed_token(
        &app.wait_for_subject(&newcomer, "Confirm your email").await,
        "expiry",
        "/console/verify-email",
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

    let verified = expiry.auth().verify_email(&verification).await.unwrap_err();
    assert_eq!(verified.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(verified.code(), Some("invalid_token"));
    assert_eq!(
        confirm(&expiry, &reset, NEW_PASSWORD).await.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    app.signed_in("expiry", &owner, PASSWORD).await;
}
