//! The second step of sign-in: `mfa_token` + code, the ±1 step window, replay, the
//! challenge's life, backup codes and tenant isolation.

use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::client::Tokens;

use super::*;

#[tokio::test]
async fn with_totp_the_password_gives_an_mfa_token_and_the_code_gives_tokens_with_amr() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let enrolled = tenant_with_mfa_admin(&app, &clock, "acme").await;
    clock.advance(STEP);

    let answer = app
        .tenant("acme")
        .post("/v1/auth/login")
        .json(&json!({"email": "ada@acme.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answer = answer.value();
    assert_eq!(answer["mfa_required"], true);
    assert_eq!(answer["expires_in"], 300);
    let challenge = answer["mfa_token"].as_str().unwrap();
    assert!(challenge.starts_with("tnmf_"));
    assert!(answer.get("access_token").is_none() && answer.get("refresh_token").is_none());
    let digest: Vec<u8> = ring::digest::digest(&ring::digest::SHA256, challenge.as_bytes())
        .as_ref()
        .to_vec();
    let db = app.superuser().await;
    let stored: i64 = db
        .query_one(
            "SELECT count(*) AS stored FROM tenant_acme.mfa_challenges WHERE token_hash = $1",
            &[&digest],
        )
        .await
        .unwrap()
        .try_get("stored")
        .unwrap();
    assert_eq!(stored, 1, "the challenge is stored as its digest");
    let sessions: i64 = db
        .query_one("SELECT count(*) AS sessions FROM tenant_acme.sessions", &[])
        .await
        .unwrap()
        .try_get("sessions")
        .unwrap();
    assert_eq!(sessions, 1, "only the session that enrolled");

    let tokens = app
        .tenant("acme")
        .auth()
        .verify_mfa(challenge, &oathtool(&enrolled.secret, clock.now()))
        .await
        .unwrap();
    let me = app
        .as_bearer("acme", tokens.access_token.expose())
        .me()
        .get()
        .await
        .unwrap();
    assert_eq!(me.amr, ["pwd", "otp"]);
    assert!(me.restrictions.is_empty());

    // Every step is in the attempt log.
    let attempts: Vec<(String, String)> = db
        .query(
            "SELECT method, outcome FROM tenant_acme.login_attempts ORDER BY at, id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get("method").unwrap(),
                row.try_get("outcome").unwrap(),
            )
        })
        .collect();
    assert!(attempts.contains(&("password".to_owned(), "mfa_required".to_owned())));
    assert!(attempts.contains(&("totp".to_owned(), "success".to_owned())));
}

#[tokio::test]
async fn codes_one_step_off_are_accepted_and_two_steps_off_are_refused() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let enrolled = tenant_with_mfa_admin(&app, &clock, "acme").await;
    clock.advance(time::Duration::minutes(10));
    let now = clock.now();
    let code_at = |steps: i32| oathtool(&enrolled.secret, now + STEP * steps);

    let challenge = mfa_token(&app, "acme").await;
    for steps in [-2, 2] {
        assert_eq!(
            verify(&app, "acme", &challenge, &code_at(steps))
                .await
                .error_code(),
            (StatusCode::UNAUTHORIZED, "invalid_mfa_code")
        );
    }
    let answer = verify(&app, "acme", &challenge, &code_at(-1)).await;
    assert_eq!(answer.status(), StatusCode::OK);

    let challenge = mfa_token(&app, "acme").await;
    let answer = verify(&app, "acme", &challenge, &code_at(1)).await;
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_totp_code_signs_in_once_even_when_sent_twice_at_the_same_moment() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let enrolled = tenant_with_mfa_admin(&app, &clock, "acme").await;

    // The code that enabled TOTP cannot sign in.
    let challenge = mfa_token(&app, "acme").await;
    assert_eq!(
        verify(
            &app,
            "acme",
            &challenge,
            &oathtool(&enrolled.secret, clock.now())
        )
        .await
        .error_code(),
        (StatusCode::UNAUTHORIZED, "mfa_code_reused")
    );

    // Next step: one use, then the same code again on a fresh challenge is refused.
    clock.advance(STEP);
    let code = oathtool(&enrolled.secret, clock.now());
    let answer = verify(&app, "acme", &challenge, &code).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let again = mfa_token(&app, "acme").await;
    assert_eq!(
        verify(&app, "acme", &again, &code).await.error_code(),
        (StatusCode::UNAUTHORIZED, "mfa_code_reused")
    );

    // Two challenges racing with one fresh code: exactly one wins.
    clock.advance(STEP);
    let code = oathtool(&enrolled.secret, clock.now());
    let first = mfa_token(&app, "acme").await;
    let second = mfa_token(&app, "acme").await;
    let (a, b) = tokio::join!(
        verify(&app, "acme", &first, &code),
        verify(&app, "acme", &second, &code)
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::UNAUTHORIZED],
        "{a:?} {b:?}"
    );
}

#[tokio::test]
async fn an_mfa_challenge_is_single_use_expires_and_dies_after_five_wrong_codes() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let enrolled = tenant_with_mfa_admin(&app, &clock, "acme").await;
    let next_code = || {
        clock.advance(STEP);
        oathtool(&enrolled.secret, clock.now())
    };

    // Single use.
    let challenge = mfa_token(&app, "acme").await;
    let answer = verify(&app, "acme", &challenge, &next_code()).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        verify(&app, "acme", &challenge, &next_code())
            .await
            .error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_token")
    );

    // Expired after five minutes.
    let challenge = mfa_token(&app, "acme").await;
    clock.advance(time::Duration::minutes(5));
    assert_eq!(
        verify(&app, "acme", &challenge, &next_code())
            .await
            .error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_token")
    );

    // Five wrong codes kill it: the right one is refused afterwards.
    let challenge = mfa_token(&app, "acme").await;
    let spare = mfa_token(&app, "acme").await;
    let right = next_code();
    let wrong = wrong_code(&enrolled.secret, clock.now());
    for _ in 0..5 {
        assert_eq!(
            verify(&app, "acme", &challenge, &wrong).await.error_code(),
            (StatusCode::UNAUTHORIZED, "invalid_mfa_code")
        );
    }
    assert_eq!(
        verify(&app, "acme", &challenge, &right).await.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_token")
    );
    // The wrong codes also counted toward the address's lockout, so fresh challenges cannot
    // be used to keep guessing.
    let locked = app
        .tenant("acme")
        .auth()
        .login("ada@acme.example", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(locked.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    // Nor can a challenge made before the lock.
    assert_eq!(
        verify(&app, "acme", &spare, &right).await.error_code(),
        (StatusCode::TOO_MANY_REQUESTS, "login_locked")
    );
}

#[tokio::test]
async fn a_right_password_does_not_reset_the_count_of_wrong_codes() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let enrolled = tenant_with_mfa_admin(&app, &clock, "acme").await;
    clock.advance(STEP);
    let wrong = wrong_code(&enrolled.secret, clock.now());
    for _ in 0..4 {
        let challenge = mfa_token(&app, "acme").await;
        let answer = verify(&app, "acme", &challenge, &wrong).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    let challenge = mfa_token(&app, "acme").await;
    let answer = verify(&app, "acme", &challenge, &wrong).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        verify(
            &app,
            "acme",
            &challenge,
            &oathtool(&enrolled.secret, clock.now())
        )
        .await
        .error_code(),
        (StatusCode::TOO_MANY_REQUESTS, "login_locked")
    );
}

#[tokio::test]
async fn a_backup_code_signs_in_once() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let enrolled = tenant_with_mfa_admin(&app, &clock, "acme").await;
    let backup = enrolled.backup_codes[3].to_uppercase();

    let challenge = mfa_token(&app, "acme").await;
    let answer = verify(&app, "acme", &challenge, &backup).await;
    assert_eq!(answer.status(), StatusCode::OK, "{}", answer.text());
    let tokens: Tokens = answer.json().unwrap();
    let ada = app.as_bearer("acme", tokens.access_token.expose());
    assert_eq!(ada.me().get().await.unwrap().amr, ["pwd", "backup_code"]);
    assert_eq!(ada.me().mfa().await.unwrap()["backup_codes_remaining"], 9);

    let challenge = mfa_token(&app, "acme").await;
    assert_eq!(
        verify(&app, "acme", &challenge, &backup).await.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_code")
    );
    let methods: i64 = app
        .superuser()
        .await
        .query_one(
            "SELECT count(*) AS methods FROM tenant_acme.login_attempts WHERE method = 'backup_code'",
            &[],
        )
        .await
        .unwrap()
        .try_get("methods")
        .unwrap();
    assert_eq!(methods, 2);
}

#[tokio::test]
async fn an_mfa_token_of_tenant_a_means_nothing_at_tenant_b() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let enrolled = tenant_with_mfa_admin(&app, &clock, "acme").await;
    tenant_with_mfa_admin(&app, &clock, "beta").await;
    clock.advance(STEP);
    let code = oathtool(&enrolled.secret, clock.now());

    let challenge = mfa_token(&app, "acme").await;
    assert_eq!(
        verify(&app, "beta", &challenge, &code).await.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_token")
    );
    // At its own tenant it still works (the refusal at B spent nothing).
    let answer = verify(&app, "acme", &challenge, &code).await;
    assert_eq!(answer.status(), StatusCode::OK);
}
