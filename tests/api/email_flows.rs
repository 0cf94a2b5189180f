//! Email flows, read from the mail the test SMTP server received: self-registration and
//! email verification, the "already have an account" notice, resends and their throttle,
//! tokens bound to their tenant, and the first admin's activation mail. Password reset is in
//! `password_reset.rs`.

use control_plane::tenants::service;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::email::Email;
use shared::tenant::TenantSlug;
use tenantry_tests::client::{NewTenant, Tenant};
use tenantry_tests::{mailed_token, unique_address, Client, Reply, TestApp, MAIL_WAIT, PASSWORD};

/// `POST /v1/auth/register` as Grace, whatever the answer.
async fn register(tenant: &Client, email: &str, password: &str) -> Reply {
    tenant
        .post("/v1/auth/register")
        .json(&json!({"email": email, "password": password, "display_name": "Grace"}))
        .send()
        .await
        .unwrap()
}

/// `POST /v1/auth/verify-email` with `token`, whatever the answer.
async fn verify_email(tenant: &Client, token: &str) -> Reply {
    tenant
        .post("/v1/auth/verify-email")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

/// A password sign-in, whatever the answer.
async fn login(tenant: &Client, email: &str, password: &str) -> Reply {
    tenant
        .post("/v1/auth/login")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn registration_is_refused_when_the_tenant_does_not_allow_self_sign_up() {
    let app = TestApp::spawn().await;
    app.create_tenant("closed").await;
    let closed = app.tenant("closed");
    let email = unique_address("closed");
    assert_eq!(
        register(&closed, &email, PASSWORD).await.error_code(),
        (StatusCode::FORBIDDEN, "self_signup_disabled")
    );
    assert_eq!(app.queued_mails("closed", &email).await, 0);
    assert_eq!(
        login(&closed, &email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED,
        "no user was created"
    );
}

#[tokio::test]
async fn a_registered_user_signs_in_only_after_following_the_mailed_link_which_works_once() {
    let app = TestApp::spawn().await;
    app.create_tenant("open").await;
    app.allow_self_signup("open").await;
    let open = app.tenant("open");
    let email = unique_address("grace");

    let answer = register(&open, &email, PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(
        login(&open, &email, PASSWORD).await.error_code(),
        (StatusCode::FORBIDDEN, "email_not_verified")
    );

    let mails = app.wait_for_mail(&email, MAIL_WAIT).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.contains("Confirm your email"), "{mails:?}");
    let token = mailed_token(&mails[0], "open", "/console/verify-email");

    open.auth().verify_email(&token).await.unwrap();
    let grace = app.signed_in("open", &email, PASSWORD).await;
    let me = grace.me().get().await.unwrap();
    assert_eq!(me.email, email);
    assert_eq!(me.status, "active");
    assert!(me.email_verified);
    assert_eq!(me.display_name, "Grace");
    assert_eq!(me.roles, ["member"]);

    for spent_or_junk in [token.as_str(), "tnut_garbage", "", &format!("{token}x")] {
        assert_eq!(
            verify_email(&open, spent_or_junk).await.error_code(),
            (StatusCode::BAD_REQUEST, "invalid_token"),
            "{spent_or_junk}"
        );
    }
}

#[tokio::test]
async fn registering_a_known_address_mails_a_notice_and_answers_exactly_like_a_new_one() {
    let app = TestApp::spawn().await;
    let owner = unique_address("owner");
    app.tenant_with_active_admin("known", &owner, PASSWORD)
        .await;
    // The owner opens registration through the settings API.
    let admin = app.signed_in("known", &owner, PASSWORD).await;
    admin
        .put_setting("auth-policy", &json!({"self_signup": true}))
        .await
        .unwrap();
    let known = app.tenant("known");
    let newcomer = unique_address("newcomer");

    let for_new = register(&known, &newcomer, "another long passphrase").await;
    let for_known = register(&known, &owner, "another long passphrase").await;
    assert_eq!(for_new.status(), StatusCode::ACCEPTED);
    assert_eq!(for_known.status(), StatusCode::ACCEPTED);
    assert_eq!(
        for_new.json::<Value>().unwrap(),
        for_known.json::<Value>().unwrap()
    );

    // The owner is told someone tried to register with their address.
    let notice = app
        .wait_for_subject(&owner, "already have an account")
        .await;
    assert!(!notice.body.contains("tnut_"), "{}", notice.body);
    // Nothing about the account changed: the owner's password still works, the other does not.
    app.signed_in("known", &owner, PASSWORD).await;
    assert_eq!(
        login(&known, &owner, "another long passphrase")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_weak_password_or_bad_input_at_registration_is_refused_and_creates_nothing() {
    let app = TestApp::spawn().await;
    app.create_tenant("strict").await;
    app.allow_self_signup("strict").await;
    let strict = app.tenant("strict");
    let email = unique_address("weak");

    let weak = strict
        .auth()
        .register(&email, "short", Some("Grace"))
        .await
        .unwrap_err();
    assert_eq!(weak.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(weak.code(), Some("password_policy"));
    let details = weak.api().unwrap().details.clone().unwrap_or_default();
    assert!(!details["failed_rules"].as_array().unwrap().is_empty());

    assert_eq!(
        register(&strict, "not-an-address", PASSWORD)
            .await
            .error_code(),
        (StatusCode::BAD_REQUEST, "invalid_email")
    );
    let long_name = strict
        .post("/v1/auth/register")
        .json(&json!({"email": email, "password": PASSWORD, "display_name": "x".repeat(201)}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        long_name.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    assert_eq!(app.queued_mails("strict", &email).await, 0);
    // The address is still free: a good registration goes through.
    strict
        .auth()
        .register(&email, PASSWORD, Some("Grace"))
        .await
        .unwrap();
    assert_eq!(app.queued_mails("strict", &email).await, 1);
}

#[tokio::test]
async fn resends_go_only_to_pending_users_and_no_address_gets_more_than_three_an_hour() {
    let app = TestApp::spawn().await;
    let owner = unique_address("active");
    app.tenant_with_active_admin("resend", &owner, PASSWORD)
        .await;
    app.allow_self_signup("resend").await;
    let resend = app.tenant("resend");
    let pending = unique_address("pending");
    let unknown = unique_address("unknown");
    assert_eq!(
        register(&resend, &pending, PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );

    for address in [&pending, &unknown, &owner, &pending, &pending, &pending] {
        let answer = resend
            .post("/v1/auth/verify-email/resend")
            .json(&json!({ "email": address }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }
    // One at registration and two resends; the last two resends were throttled.
    assert_eq!(app.queued_mails("resend", &pending).await, 3);
    assert_eq!(app.queued_mails("resend", &unknown).await, 0);
    // The owner's only mail is the activation mail of `tenant create --admin-email`.
    assert_eq!(app.queued_mails("resend", &owner).await, 1);
    // Registering again with the pending address: the notices are throttled separately.
    for _ in 0..4 {
        register(&resend, &pending, PASSWORD).await;
    }
    assert_eq!(app.queued_mails("resend", &pending).await, 6);

    let arrived =
        TestApp::eventually(MAIL_WAIT, || async { app.mails_to(&pending).len() == 6 }).await;
    assert!(arrived.is_some(), "{:?}", app.mails_to(&pending));
    // Any of the verification links verifies; then all of them are spent.
    let mails = app.mails_to(&pending);
    let tokens: Vec<String> = mails
        .iter()
        .filter(|mail| mail.subject.contains("Confirm your email"))
        .map(|mail| mailed_token(mail, "resend", "/console/verify-email"))
        .collect();
    assert_eq!(tokens.len(), 3);
    resend.auth().verify_email(&tokens[1]).await.unwrap();
    for token in [&tokens[0], &tokens[2]] {
        assert_eq!(
            verify_email(&resend, token).await.status(),
            StatusCode::BAD_REQUEST
        );
    }
    app.signed_in("resend", &pending, PASSWORD).await;
}

#[tokio::test]
async fn a_verification_token_of_one_tenant_is_refused_at_another() {
    let app = TestApp::spawn().await;
    for slug in ["alpha", "beta"] {
        app.create_tenant(slug).await;
        app.allow_self_signup(slug).await;
    }
    let (alpha, beta) = (app.tenant("alpha"), app.tenant("beta"));
    let email = unique_address("twotenants");
    register(&alpha, &email, PASSWORD).await;
    let mails = app.wait_for_mail(&email, MAIL_WAIT).await;
    let token = mailed_token(&mails[0], "alpha", "/console/verify-email");
    // Even with a pending user of the same address at beta.
    register(&beta, &email, PASSWORD).await;

    assert_eq!(
        verify_email(&beta, &token).await.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    assert_eq!(
        login(&beta, &email, PASSWORD).await.error_code(),
        (StatusCode::FORBIDDEN, "email_not_verified")
    );
    // The token still works where it belongs.
    alpha.auth().verify_email(&token).await.unwrap();
}

#[tokio::test]
async fn tenant_create_with_an_admin_email_mails_the_activation_link_and_the_mailed_token_activates(
) {
    let app = TestApp::spawn().await;
    let admin = unique_address("firstadmin");
    let printed = app
        .run_cli(&[
            "control-plane",
            "tenant",
            "create",
            "initech",
            "--name",
            "Initech",
            "--admin-email",
            &admin,
            "--json",
        ])
        .await
        .unwrap();
    let created: Value = serde_json::from_str(&printed).unwrap();

    let mails = app.wait_for_mail(&admin, MAIL_WAIT).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.contains("Initech"), "{}", mails[0].subject);
    let token = mailed_token(&mails[0], "initech", "/console/activate");
    assert_eq!(created["activation_token"], token.as_str());

    app.tenant("initech")
        .auth()
        .activate(&token, PASSWORD)
        .await
        .unwrap();
    app.signed_in("initech", &admin, PASSWORD).await;
    // A token that cannot be issued (the admin is active now) queues no mail either.
    let tenant = service::get(&app.control, &TenantSlug::parse("initech").unwrap())
        .await
        .unwrap();
    let email = Email::parse(&admin).unwrap();
    let refused = service::issue_activation_token(&app.control, &tenant, &email).await;
    assert!(
        matches!(
            refused,
            Err(control_plane::error::ControlError::InvalidInput {
                field: "admin_email",
                ..
            })
        ),
        "{:?}",
        refused.err()
    );
    assert_eq!(app.queued_mails("initech", &admin).await, 1);

    // The operator API mails it too.
    let rest_admin = unique_address("restadmin");
    let response = app
        .operator_api()
        .call(Method::POST, "/v1/tenants")
        .json(&NewTenant {
            slug: "hooli".to_owned(),
            admin_email: Some(rest_admin.clone()),
            ..NewTenant::default()
        })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Tenant = response.json().unwrap();
    let mails = app.wait_for_mail(&rest_admin, MAIL_WAIT).await;
    assert_eq!(
        created.activation_token.unwrap().expose(),
        mailed_token(&mails[0], "hooli", "/console/activate")
    );
}

#[tokio::test]
async fn the_first_admins_activation_token_expires_after_seven_days_of_the_planes_clock() {
    // Both planes read one manual clock set a month back: the token the control plane issues
    // must expire seven days after *its* now, which the data plane checks against the same.
    let month_ago = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    let clock = shared::clock::ManualClock::new(month_ago);
    let app = TestApp::spawn_with(tenantry_tests::TestOptions {
        clock: Some(clock.clone()),
        ..tenantry_tests::TestOptions::default()
    })
    .await;
    let admin = unique_address("late");
    let (_, fresh) = app.create_tenant_with_admin("initech", &admin).await;
    let (_, stale) = app.create_tenant_with_admin("globex", &admin).await;
    let initech = app.tenant("initech");
    let globex = app.tenant("globex");

    clock.advance(time::Duration::days(7) - time::Duration::minutes(1));
    initech.auth().activate(&fresh, PASSWORD).await.unwrap();

    clock.advance(time::Duration::minutes(2));
    let refused = globex.auth().activate(&stale, PASSWORD).await.unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(refused.code(), Some("invalid_token"));
}
