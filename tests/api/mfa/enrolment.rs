//! Enrolment, backup codes, turning TOTP off, the tenant's MFA policy and bad input.

use reqwest::StatusCode;
use serde_json::json;

use super::*;

#[tokio::test]
async fn enrolment_accepts_the_code_oathtool_computes_and_returns_ten_backup_codes_once() {
    let (app, clock) = app_with_clock().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let tokens = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();

    let (_, status) = send(get_as(&app, "acme", "/v1/me/mfa", token)).await;
    assert_eq!(status["totp_enabled"], false);
    assert_eq!(status["backup_codes_remaining"], 0);

    let (code, setup) = send(post_as(
        &app,
        "acme",
        "/v1/me/mfa/totp/setup",
        token,
        &json!({}),
    ))
    .await;
    assert_eq!(code, StatusCode::OK, "{setup}");
    let secret = setup["secret"].as_str().unwrap();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/acme:ada%40acme.example?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer=acme"));
    assert!(setup["qr_svg"].as_str().unwrap().contains("<svg"));
    // The secret is stored sealed, not as its base32 text or its bytes in clear.
    let stored: Vec<u8> = app
        .superuser()
        .await
        .query_one("SELECT totp_secret FROM tenant_acme.users", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()));

    // A wrong code does not enable anything.
    let wrong = wrong_code(secret, clock.now());
    let (status, body) = send(post_as(
        &app,
        "acme",
        "/v1/me/mfa/totp/enable",
        token,
        &json!({ "code": wrong }),
    ))
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::BAD_REQUEST, "invalid_mfa_code")
    );
    let (_, status) = send(get_as(&app, "acme", "/v1/me/mfa", token)).await;
    assert_eq!(status["totp_enabled"], false);

    // oathtool's code (an independent implementation) at the clock's time enables TOTP.
    let (status, enabled) = send(post_as(
        &app,
        "acme",
        "/v1/me/mfa/totp/enable",
        token,
        &json!({ "code": oathtool(secret, clock.now()) }),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    let codes = enabled["backup_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let (_, status) = send(get_as(&app, "acme", "/v1/me/mfa", token)).await;
    assert_eq!(status["totp_enabled"], true);
    assert_eq!(status["backup_codes_remaining"], 10);
    let (_, me) = send(get_as(&app, "acme", "/v1/me", token)).await;
    assert_eq!(me["mfa_enabled"], true);

    // Backup codes are stored as keyed digests: none is its plain SHA-256.
    let digests: Vec<Vec<u8>> = app
        .superuser()
        .await
        .query("SELECT code_hash FROM tenant_acme.backup_codes", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(digests.len(), 10);
    for code in codes {
        let plain = ring::digest::digest(&ring::digest::SHA256, code.as_str().unwrap().as_bytes());
        assert!(!digests.iter().any(|digest| digest == plain.as_ref()));
    }

    // Enabled: a second setup (which would replace the secret) is refused.
    let (status, body) = send(post_as(
        &app,
        "acme",
        "/v1/me/mfa/totp/setup",
        token,
        &json!({}),
    ))
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::CONFLICT, "totp_already_enabled")
    );
}

#[tokio::test]
async fn backup_codes_regenerate_with_a_current_code_and_totp_turns_off_with_the_password() {
    let (app, clock) = app_with_clock().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let tokens = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();
    let enrolled = enrol(&app, &clock, "acme", token).await;

    // The enrolment's own code cannot be used again; the next step's can.
    let (status, body) = send(post_as(
        &app,
        "acme",
        "/v1/me/mfa/backup-codes",
        token,
        &json!({ "code": oathtool(&enrolled.secret, clock.now()) }),
    ))
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::BAD_REQUEST, "mfa_code_reused")
    );
    clock.advance(STEP);
    let (status, fresh) = send(post_as(
        &app,
        "acme",
        "/v1/me/mfa/backup-codes",
        token,
        &json!({ "code": oathtool(&enrolled.secret, clock.now()) }),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(fresh["backup_codes"].as_array().unwrap().len(), 10);
    // The old codes no longer sign in.
    let challenge = mfa_token(&app, "acme").await;
    let (status, body) = verify(&app, "acme", &challenge, &enrolled.backup_codes[0]).await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_code")
    );

    // Turning TOTP off needs the right password.
    let delete = |body: serde_json::Value| {
        app.http
            .delete(format!("{}/v1/me/mfa/totp", app.data_url))
            .header("X-Tenant", "acme")
            .bearer_auth(token)
            .json(&body)
    };
    let (status, body) = send(delete(json!({ "password": "not the password at all" }))).await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let (_, status) = send(get_as(&app, "acme", "/v1/me/mfa", token)).await;
    assert_eq!(status["totp_enabled"], true);
    let (status, _) = send(delete(json!({ "password": PASSWORD }))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, status) = send(get_as(&app, "acme", "/v1/me/mfa", token)).await;
    assert_eq!(status["totp_enabled"], false);
    assert_eq!(status["backup_codes_remaining"], 0);
    // Sign-in is one step again, and the pending challenge is gone.
    let tokens = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    assert!(tokens["access_token"].is_string());
    let (status, body) = verify(
        &app,
        "acme",
        &challenge,
        fresh["backup_codes"][0].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_token")
    );
}

#[tokio::test]
async fn a_tenant_requiring_mfa_restricts_sessions_until_the_user_enrols() {
    let (app, clock) = app_with_clock().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    // The owner sets the policy through the settings API; it rules the next sign-in.
    let owner = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let owner = owner["access_token"].as_str().unwrap();
    let (status, body) = send(
        app.http
            .put(format!("{}/v1/settings/auth-policy", app.data_url))
            .header("X-Tenant", "acme")
            .bearer_auth(owner)
            .json(&json!({ "mfa": "all" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();

    // Restricted: refused on every route that needs a signed-in caller but the enrolment
    // paths, with a code that says why. Public routes answer it as they answer anyone.
    for path in [
        "/v1/collections",
        "/v1/admin/users",
        "/v1/settings/auth-policy",
    ] {
        let (status, body) = send(get_as(&app, "acme", path, token)).await;
        assert_eq!(
            (status, code_of(&body)),
            (StatusCode::FORBIDDEN, "mfa_enrollment_required"),
            "{path}"
        );
    }
    let (status, me) = send(get_as(&app, "acme", "/v1/me", token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["restrictions"], json!(["mfa_enrollment"]));
    let (status, _) = send(get_as(&app, "acme", "/v1/me/sessions", token)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, mfa) = send(get_as(&app, "acme", "/v1/me/mfa", token)).await;
    assert_eq!(mfa["required"], true);

    // The restricted session may enrol; the refreshed token is unrestricted.
    let enrolled = enrol(&app, &clock, "acme", token).await;
    let (status, refreshed) = send(app.tenant_post(
        "acme",
        "/v1/auth/refresh",
        &json!({ "refresh_token": tokens["refresh_token"] }),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let unrestricted = refreshed["access_token"].as_str().unwrap();
    for path in ["/v1/collections", "/v1/admin/users"] {
        let (status, _) = send(get_as(&app, "acme", path, unrestricted)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    // The policy forbids turning it off.
    clock.advance(STEP);
    let (status, body) = send(
        app.http
            .delete(format!("{}/v1/me/mfa/totp", app.data_url))
            .header("X-Tenant", "acme")
            .bearer_auth(unrestricted)
            .json(&json!({ "code": oathtool(&enrolled.secret, clock.now()) })),
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (StatusCode::CONFLICT, "mfa_required_by_policy")
    );
}

#[tokio::test]
async fn malformed_codes_and_bodies_get_400_and_change_nothing() {
    let (app, clock) = app_with_clock().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let tokens = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let token = tokens["access_token"].as_str().unwrap();
    let (_, setup) = send(post_as(
        &app,
        "acme",
        "/v1/me/mfa/totp/setup",
        token,
        &json!({}),
    ))
    .await;
    let secret = setup["secret"].as_str().unwrap();

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
        let (status, answer) = send(post_as(
            &app,
            "acme",
            "/v1/me/mfa/totp/enable",
            token,
            &body,
        ))
        .await;
        assert_eq!(
            (status, code_of(&answer)),
            (StatusCode::BAD_REQUEST, expected),
            "{body}"
        );
    }
    let (_, status) = send(get_as(&app, "acme", "/v1/me/mfa", token)).await;
    assert_eq!(status["totp_enabled"], false);

    // Still pending and unspent: the current code enables it now.
    let (status, _) = send(post_as(
        &app,
        "acme",
        "/v1/me/mfa/totp/enable",
        token,
        &json!({ "code": oathtool(secret, clock.now()) }),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);

    // Turning off needs exactly one proof.
    for body in [json!({}), json!({ "password": PASSWORD, "code": "123456" })] {
        let (status, answer) = send(
            app.http
                .delete(format!("{}/v1/me/mfa/totp", app.data_url))
                .header("X-Tenant", "acme")
                .bearer_auth(token)
                .json(&body),
        )
        .await;
        assert_eq!(
            (status, code_of(&answer)),
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
        let (status, answer) = send(app.tenant_post("acme", "/v1/auth/mfa/verify", &body)).await;
        assert_eq!(
            (status, code_of(&answer)),
            (StatusCode::BAD_REQUEST, expected),
            "{body}"
        );
    }
    let (status, answer) = verify(&app, "acme", "tnmf_not-a-token", "123456").await;
    assert_eq!(
        (status, code_of(&answer)),
        (StatusCode::UNAUTHORIZED, "invalid_mfa_token")
    );
    let failures: i32 = app
        .superuser()
        .await
        .query_one("SELECT failures FROM tenant_acme.mfa_challenges", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(failures, 0);
    clock.advance(STEP);
    let (status, _) = verify(&app, "acme", &challenge, &oathtool(secret, clock.now())).await;
    assert_eq!(status, StatusCode::OK);
}
