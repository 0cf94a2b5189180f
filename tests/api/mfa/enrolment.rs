//! Enrolment, backup codes, turning TOTP off, the tenant's MFA policy and bad input.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::client::Tokens;

use super::*;

/// `DELETE /v1/me/mfa/totp` with `body` as `user`, whatever the answer.
async fn turn_off(user: &Client, body: Value) -> Reply {
    user.delete("/v1/me/mfa/totp")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn enrolment_accepts_the_code_oathtool_computes_and_returns_ten_backup_codes_once() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let ada = app.signed_in("acme", "ada@acme.example", PASSWORD).await;

    let status = ada.me().mfa().await.unwrap();
    assert_eq!(status["totp_enabled"], false);
    assert_eq!(status["backup_codes_remaining"], 0);

    let setup = ada.me().setup_totp().await.unwrap();
    let secret = setup.secret.expose();
    let uri = setup.otpauth_uri.expose();
    assert!(
        uri.starts_with("otpauth://totp/acme:ada%40acme.example?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer=acme"));
    assert!(setup.qr_svg.contains("<svg"));
    // The secret is stored sealed, not as its base32 text or its bytes in clear.
    let stored: Vec<u8> = app
        .superuser()
        .await
        .query_one("SELECT totp_secret FROM tenant_acme.users", &[])
        .await
        .unwrap()
        .try_get("totp_secret")
        .unwrap();
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()));

    // A wrong code does not enable anything.
    let wrong = ada
        .post("/v1/me/mfa/totp/enable")
        .json(&json!({ "code": wrong_code(secret, clock.now()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_mfa_code")
    );
    assert_eq!(ada.me().mfa().await.unwrap()["totp_enabled"], false);

    // oathtool's code (an independent implementation) at the clock's time enables TOTP.
    let codes = ada
        .me()
        .enable_totp(&oathtool(secret, clock.now()))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let status = ada.me().mfa().await.unwrap();
    assert_eq!(status["totp_enabled"], true);
    assert_eq!(status["backup_codes_remaining"], 10);
    assert!(ada.me().get().await.unwrap().mfa_enabled);

    // Backup codes are stored as keyed digests: none is its plain SHA-256.
    let digests: Vec<Vec<u8>> = app
        .superuser()
        .await
        .query("SELECT code_hash FROM tenant_acme.backup_codes", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("code_hash").unwrap())
        .collect();
    assert_eq!(digests.len(), 10);
    for code in &codes {
        let plain = ring::digest::digest(&ring::digest::SHA256, code.expose().as_bytes());
        assert!(!digests.iter().any(|digest| digest == plain.as_ref()));
    }

    // Enabled: a second setup (which would replace the secret) is refused.
    let again = ada.post("/v1/me/mfa/totp/setup").send().await.unwrap();
    assert_eq!(
        again.error_code(),
        (StatusCode::CONFLICT, "totp_already_enabled")
    );
}

#[tokio::test]
async fn backup_codes_regenerate_with_a_current_code_and_totp_turns_off_with_the_password() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let ada = app.signed_in("acme", "ada@acme.example", PASSWORD).await;
    let enrolled = enrol(&clock, &ada).await;

    // The enrolment's own code cannot be used again; the next step's can.
    let reused = ada
        .post("/v1/me/mfa/backup-codes")
        .json(&json!({ "code": oathtool(&enrolled.secret, clock.now()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reused.error_code(),
        (StatusCode::BAD_REQUEST, "mfa_code_reused")
    );
    clock.advance(STEP);
    let fresh = ada
        .me()
        .new_backup_codes(&oathtool(&enrolled.secret, clock.now()))
        .await
        .unwrap();
    assert_eq!(fresh.len(), 10);
    // The old codes no longer sign in.
    let challenge = mfa_token(&app, "acme").await;
    assert_eq!(
        verify(&app, "acme", &challenge, &enrolled.backup_codes[0])
            .await
            .error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_code")
    );

    // Turning TOTP off needs the right password.
    assert_eq!(
        turn_off(&ada, json!({ "password": "not the password at all" }))
            .await
            .error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    assert_eq!(ada.me().mfa().await.unwrap()["totp_enabled"], true);
    assert_eq!(
        turn_off(&ada, json!({ "password": PASSWORD }))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let status = ada.me().mfa().await.unwrap();
    assert_eq!(status["totp_enabled"], false);
    assert_eq!(status["backup_codes_remaining"], 0);
    // Sign-in is one step again, and the pending challenge is gone.
    app.sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await;
    assert_eq!(
        verify(&app, "acme", &challenge, fresh[0].expose())
            .await
            .error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_token")
    );
}

#[tokio::test]
async fn a_tenant_requiring_mfa_restricts_sessions_until_the_user_enrols() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    // The owner sets the policy through the settings API; it rules the next sign-in.
    let owner = app.signed_in("acme", "ada@acme.example", PASSWORD).await;
    owner
        .put_setting("auth-policy", &json!({ "mfa": "all" }))
        .await
        .unwrap();
    // The restricted session, held as its tokens: the test refreshes it itself.
    let tokens = app
        .sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await;
    let restricted = app.as_bearer("acme", tokens.access_token.expose());

    // Restricted: refused on every route that needs a signed-in caller but the enrolment
    // paths, with a code that says why. Public routes answer it as they answer anyone.
    for path in [
        "/v1/collections",
        "/v1/admin/users",
        "/v1/settings/auth-policy",
    ] {
        assert_eq!(
            restricted.get(path).send().await.unwrap().error_code(),
            (StatusCode::FORBIDDEN, "mfa_enrollment_required"),
            "{path}"
        );
    }
    let me = restricted.me().get().await.unwrap();
    assert_eq!(me.restrictions, ["mfa_enrollment"]);
    restricted.me().sessions().await.unwrap();
    assert_eq!(restricted.me().mfa().await.unwrap()["required"], true);

    // The restricted session may enrol; the refreshed token is unrestricted.
    let enrolled = enrol(&clock, &restricted).await;
    let refreshed: Tokens = app
        .tenant("acme")
        .auth()
        .refresh(tokens.refresh_token.expose())
        .await
        .unwrap();
    let unrestricted = app.as_bearer("acme", refreshed.access_token.expose());
    for path in ["/v1/collections", "/v1/admin/users"] {
        let answer = unrestricted.get(path).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
    }

    // The policy forbids turning it off.
    clock.advance(STEP);
    assert_eq!(
        turn_off(
            &unrestricted,
            json!({ "code": oathtool(&enrolled.secret, clock.now()) })
        )
        .await
        .error_code(),
        (StatusCode::CONFLICT, "mfa_required_by_policy")
    );
}

#[tokio::test]
async fn malformed_codes_and_bodies_get_400_and_change_nothing() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let ada = app.signed_in("acme", "ada@acme.example", PASSWORD).await;
    let setup = ada.me().setup_totp().await.unwrap();
    let secret = setup.secret.expose();

    for (body, expected) in [
        (json!({ "code": "12a456" }), "invalid_code_format"),
        (json!({ "code": "1234567" }), "invalid_code_format"),
        (json!({ "code": "" }), "invalid_code_format"),
        (json!({ "code": 123456 }), "invalid_json"),
        (json!({}), "invalid_json"),
        (
            json!({ "code": oathtool(secret, clock.now()), "extra": 1 }),
            "invalid_json",
        ),
    ] {
        let answer = ada
            .post("/v1/me/mfa/totp/enable")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.error_code(),
            (StatusCode::BAD_REQUEST, expected),
            "{body}"
        );
    }
    assert_eq!(ada.me().mfa().await.unwrap()["totp_enabled"], false);

    // Still pending and unspent: the current code enables it now.
    ada.me()
        .enable_totp(&oathtool(secret, clock.now()))
        .await
        .unwrap();

    // Turning off needs exactly one proof.
    for body in [json!({}), json!({ "password": PASSWORD, "code": "123456" })] {
        assert_eq!(
            turn_off(&ada, body).await.error_code(),
            (StatusCode::BAD_REQUEST, "invalid_input")
        );
    }

    // The sign-in step: junk codes and tokens are 400/401 and do not count as failures.
    let challenge = mfa_token(&app, "acme").await;
    for (body, expected) in [
        (
            json!({ "mfa_token": challenge, "code": "abc" }),
            "invalid_code_format",
        ),
        (json!({ "mfa_token": challenge }), "invalid_json"),
        (json!({ "code": "123456" }), "invalid_json"),
    ] {
        let answer = app
            .tenant("acme")
            .post("/v1/auth/mfa/verify")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.error_code(),
            (StatusCode::BAD_REQUEST, expected),
            "{body}"
        );
    }
    assert_eq!(
        verify(&app, "acme", "tnmf_not-a-token", "123456")
            .await
            .error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_token")
    );
    let failures: i32 = app
        .superuser()
        .await
        .query_one("SELECT failures FROM tenant_acme.mfa_challenges", &[])
        .await
        .unwrap()
        .try_get("failures")
        .unwrap();
    assert_eq!(failures, 0);
    clock.advance(STEP);
    let answer = verify(&app, "acme", &challenge, &oathtool(secret, clock.now())).await;
    assert_eq!(answer.status(), StatusCode::OK);
}
