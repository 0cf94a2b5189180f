//! Email flows, read from the mail the test SMTP server received: self-registration and
//! email verification, the "already have an account" notice, resends and their throttle,
//! tokens bound to their tenant, and the first admin's activation mail. Password reset is in
//! `password_reset.rs`.

use std::time::Duration;

use control_plane::cli::execute;
use control_plane::tenants::service;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::email::Email;
use shared::tenant::TenantSlug;
use tenantry_tests::{unique_address, ReceivedMail, TestApp, BASE_DOMAIN};

pub const PASSWORD: &str = "correct horse battery staple";
pub const MAIL_WAIT: Duration = Duration::from_secs(30);

pub async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

pub async fn post(app: &TestApp, slug: &str, path: &str, body: Value) -> reqwest::Response {
    app.tenant_post(slug, path, &body).send().await.unwrap()
}

/// Lets anyone register at `slug` (the tenant's auth policy, as a tenant admin would set it).
pub async fn allow_self_signup(app: &TestApp, slug: &str) {
    app.superuser()
        .await
        .execute(
            &format!(
                "INSERT INTO tenant_{slug}.settings (key, value)
                 VALUES ('auth_policy', '{{\"self_signup\": true}}')
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            &[],
        )
        .await
        .unwrap();
}

/// Mails queued for `address` in the tenant's outbox, sent or not: what the server decided,
/// without waiting for delivery.
pub async fn queued_mails(app: &TestApp, slug: &str, address: &str) -> i64 {
    app.superuser()
        .await
        .query_one(
            &format!("SELECT count(*) FROM tenant_{slug}.mail_outbox WHERE to_address = $1"),
            &[&address],
        )
        .await
        .unwrap()
        .get(0)
}

/// Waits for a mail to `address` whose subject contains `subject`.
pub async fn wait_for_subject(app: &TestApp, address: &str, subject: &str) -> ReceivedMail {
    let find = || {
        app.mails_to(address)
            .into_iter()
            .find(|mail| mail.subject.contains(subject))
    };
    let arrived = TestApp::eventually(MAIL_WAIT, || async { find().is_some() }).await;
    assert!(arrived.is_some(), "no mail '{subject}…' for {address}");
    find().unwrap()
}

/// The token of the link to `page` in `mail`, checking the link names the tenant's site.
pub fn mailed_token(mail: &ReceivedMail, slug: &str, page: &str) -> String {
    let link = format!("https://{slug}.{BASE_DOMAIN}{page}?token=");
    let start = mail
        .body
        .find(&link)
        .unwrap_or_else(|| panic!("no {link} in {}", mail.body))
        + link.len();
    let token: String = mail.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert!(token.starts_with("tnut_") && token.len() == 48, "{token}");
    assert!(!mail.subject.contains(&token));
    token
}

async fn register(app: &TestApp, slug: &str, email: &str, password: &str) -> reqwest::Response {
    post(
        app,
        slug,
        "/v1/auth/register",
        json!({"email": email, "password": password, "display_name": "Grace"}),
    )
    .await
}

async fn login(app: &TestApp, slug: &str, email: &str, password: &str) -> reqwest::Response {
    post(
        app,
        slug,
        "/v1/auth/login",
        json!({"email": email, "password": password}),
    )
    .await
}

#[tokio::test]
async fn registration_is_refused_when_the_tenant_does_not_allow_self_sign_up() {
    let app = TestApp::spawn().await;
    app.create_tenant("closed").await;
    let email = unique_address("closed");
    let (status, code) = error_code(register(&app, "closed", &email, PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "self_signup_disabled")
    );
    assert_eq!(queued_mails(&app, "closed", &email).await, 0);
    let (status, _) = error_code(login(&app, "closed", &email, PASSWORD).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no user was created");
}

#[tokio::test]
async fn a_registered_user_signs_in_only_after_following_the_mailed_link_which_works_once() {
    let app = TestApp::spawn().await;
    app.create_tenant("open").await;
    allow_self_signup(&app, "open").await;
    let email = unique_address("grace");

    let answer = register(&app, "open", &email, PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let (status, code) = error_code(login(&app, "open", &email, PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "email_not_verified")
    );

    let mails = app.wait_for_mail(&email, MAIL_WAIT).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.contains("Confirm your email"), "{mails:?}");
    let token = mailed_token(&mails[0], "open", "/verify-email");

    let verified = post(
        &app,
        "open",
        "/v1/auth/verify-email",
        json!({"token": token}),
    )
    .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let signed_in: Value = login(&app, "open", &email, PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let access = signed_in["access_token"].as_str().unwrap();
    let me: Value = app
        .tenant_get("open", "/v1/me")
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], email.as_str());
    assert_eq!(me["status"], "active");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["display_name"], "Grace");
    assert_eq!(me["roles"], json!(["member"]));

    for spent_or_junk in [token.as_str(), "tnut_garbage", "", &format!("{token}x")] {
        let again = post(
            &app,
            "open",
            "/v1/auth/verify-email",
            json!({"token": spent_or_junk}),
        )
        .await;
        let (status, code) = error_code(again).await;
        assert_eq!(
            (status, code.as_str()),
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
    let session = app.sign_in("known", &owner, PASSWORD).await;
    let opened = app
        .http
        .put(format!("{}/v1/settings/auth-policy", app.data_url))
        .header("X-Tenant", "known")
        .bearer_auth(session["access_token"].as_str().unwrap())
        .json(&json!({"self_signup": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        opened.status(),
        StatusCode::OK,
        "{}",
        opened.text().await.unwrap()
    );
    let newcomer = unique_address("newcomer");

    let for_new = register(&app, "known", &newcomer, "another long passphrase").await;
    let for_known = register(&app, "known", &owner, "another long passphrase").await;
    assert_eq!(for_new.status(), StatusCode::ACCEPTED);
    assert_eq!(for_known.status(), StatusCode::ACCEPTED);
    let new_body: Value = for_new.json().await.unwrap();
    let known_body: Value = for_known.json().await.unwrap();
    assert_eq!(new_body, known_body);

    // The owner is told someone tried to register with their address.
    let notice = wait_for_subject(&app, &owner, "already have an account").await;
    assert!(!notice.body.contains("tnut_"), "{}", notice.body);
    // Nothing about the account changed: the owner's password still works, the other does not.
    app.sign_in("known", &owner, PASSWORD).await;
    let (status, _) =
        error_code(login(&app, "known", &owner, "another long passphrase").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_weak_password_or_bad_input_at_registration_is_refused_and_creates_nothing() {
    let app = TestApp::spawn().await;
    app.create_tenant("strict").await;
    allow_self_signup(&app, "strict").await;
    let email = unique_address("weak");

    let weak = register(&app, "strict", &email, "short").await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let body: Value = weak.json().await.unwrap();
    assert_eq!(body["error"]["code"], "password_policy");
    assert!(!body["error"]["details"]["failed_rules"]
        .as_array()
        .unwrap()
        .is_empty());

    let (status, code) =
        error_code(register(&app, "strict", "not-an-address", PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_email")
    );
    let long_name = post(
        &app,
        "strict",
        "/v1/auth/register",
        json!({"email": email, "password": PASSWORD, "display_name": "x".repeat(201)}),
    )
    .await;
    let (status, code) = error_code(long_name).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    assert_eq!(queued_mails(&app, "strict", &email).await, 0);
    // The address is still free: a good registration goes through.
    assert_eq!(
        register(&app, "strict", &email, PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(queued_mails(&app, "strict", &email).await, 1);
}

#[tokio::test]
async fn resends_go_only_to_pending_users_and_no_address_gets_more_than_three_an_hour() {
    let app = TestApp::spawn().await;
    let owner = unique_address("active");
    app.tenant_with_active_admin("resend", &owner, PASSWORD)
        .await;
    allow_self_signup(&app, "resend").await;
    let pending = unique_address("pending");
    let unknown = unique_address("unknown");
    assert_eq!(
        register(&app, "resend", &pending, PASSWORD).await.status(),
        StatusCode::ACCEPTED
    );

    for address in [&pending, &unknown, &owner, &pending, &pending, &pending] {
        let answer = post(
            &app,
            "resend",
            "/v1/auth/verify-email/resend",
            json!({"email": address}),
        )
        .await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }
    // One at registration and two resends; the last two resends were throttled.
    assert_eq!(queued_mails(&app, "resend", &pending).await, 3);
    assert_eq!(queued_mails(&app, "resend", &unknown).await, 0);
    // The owner's only mail is the activation mail of `tenant create --admin-email`.
    assert_eq!(queued_mails(&app, "resend", &owner).await, 1);
    // Registering again with the pending address: the notices are throttled separately.
    for _ in 0..4 {
        register(&app, "resend", &pending, PASSWORD).await;
    }
    assert_eq!(queued_mails(&app, "resend", &pending).await, 6);

    let arrived =
        TestApp::eventually(MAIL_WAIT, || async { app.mails_to(&pending).len() == 6 }).await;
    assert!(arrived.is_some(), "{:?}", app.mails_to(&pending));
    // Any of the verification links verifies; then all of them are spent.
    let mails = app.mails_to(&pending);
    let tokens: Vec<String> = mails
        .iter()
        .filter(|mail| mail.subject.contains("Confirm your email"))
        .map(|mail| mailed_token(mail, "resend", "/verify-email"))
        .collect();
    assert_eq!(tokens.len(), 3);
    let verified = post(
        &app,
        "resend",
        "/v1/auth/verify-email",
        json!({"token": tokens[1]}),
    )
    .await;
    assert_eq!(verified.status(), StatusCode::OK);
    for token in [&tokens[0], &tokens[2]] {
        let (status, _) = error_code(
            post(
                &app,
                "resend",
                "/v1/auth/verify-email",
                json!({"token": token}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    app.sign_in("resend", &pending, PASSWORD).await;
}

#[tokio::test]
async fn a_verification_token_of_one_tenant_is_refused_at_another() {
    let app = TestApp::spawn().await;
    for slug in ["alpha", "beta"] {
        app.create_tenant(slug).await;
        allow_self_signup(&app, slug).await;
    }
    let email = unique_address("twotenants");
    register(&app, "alpha", &email, PASSWORD).await;
    let mails = app.wait_for_mail(&email, MAIL_WAIT).await;
    let token = mailed_token(&mails[0], "alpha", "/verify-email");
    // Even with a pending user of the same address at beta.
    register(&app, "beta", &email, PASSWORD).await;

    let (status, code) = error_code(
        post(
            &app,
            "beta",
            "/v1/auth/verify-email",
            json!({"token": token}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_token")
    );
    let (status, code) = error_code(login(&app, "beta", &email, PASSWORD).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "email_not_verified")
    );
    // The token still works where it belongs.
    let verified = post(
        &app,
        "alpha",
        "/v1/auth/verify-email",
        json!({"token": token}),
    )
    .await;
    assert_eq!(verified.status(), StatusCode::OK);
}

#[tokio::test]
async fn tenant_create_with_an_admin_email_mails_the_activation_link_and_the_mailed_token_activates(
) {
    let app = TestApp::spawn().await;
    let admin = unique_address("firstadmin");
    let mut out = Vec::new();
    execute(
        crate::cli::parse(&[
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
        .command,
        &app.control,
        &mut out,
    )
    .await
    .unwrap();
    let created: Value = serde_json::from_slice(&out).unwrap();

    let mails = app.wait_for_mail(&admin, MAIL_WAIT).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.contains("Initech"), "{}", mails[0].subject);
    let token = mailed_token(&mails[0], "initech", "/activate");
    assert_eq!(created["activation_token"], token.as_str());

    let activated = post(
        &app,
        "initech",
        "/v1/auth/activate",
        json!({"token": token, "password": PASSWORD}),
    )
    .await;
    assert_eq!(activated.status(), StatusCode::OK);
    app.sign_in("initech", &admin, PASSWORD).await;
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
    assert_eq!(queued_mails(&app, "initech", &admin).await, 1);

    // The operator API mails it too.
    let rest_admin = unique_address("restadmin");
    let response = app
        .operator(reqwest::Method::POST, "/v1/tenants")
        .json(&json!({"slug": "hooli", "admin_email": rest_admin}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let mails = app.wait_for_mail(&rest_admin, MAIL_WAIT).await;
    assert_eq!(
        created["activation_token"],
        mailed_token(&mails[0], "hooli", "/activate").as_str()
    );
}
