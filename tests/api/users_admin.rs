//! Users admin (`/v1/admin/users`): the guard, invitations, disable/enable across nodes, role
//! changes, the owner rules, MFA reset, deletion and tenant isolation of user ids.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tenantry_tests::client::UserStatus;
use tenantry_tests::{mailed_token, send, unique_address, TestApp, TestOptions, PASSWORD};

#[tokio::test]
async fn a_member_gets_403_naming_the_permission_on_every_admin_endpoint() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let member_email = unique_address("member");
    let member_id = app
        .invite_and_activate(&owner, &member_email, &["member"])
        .await;
    let member = app.signed_in("acme", &member_email, PASSWORD).await;
    let user = format!("/v1/admin/users/{member_id}");

    let endpoints = [
        (
            Method::GET,
            "/v1/admin/users".to_owned(),
            None,
            "users:read",
        ),
        (Method::GET, user.clone(), None, "users:read"),
        (
            Method::POST,
            "/v1/admin/users/invitations".to_owned(),
            Some(json!({"email": unique_address("nobody"), "roles": []})),
            "users:manage",
        ),
        (
            Method::POST,
            format!("{user}/disable"),
            None,
            "users:manage",
        ),
        (Method::POST, format!("{user}/enable"), None, "users:manage"),
        (
            Method::PUT,
            format!("{user}/roles"),
            Some(json!({"roles": ["admin"]})),
            "users:manage",
        ),
        (Method::DELETE, format!("{user}/mfa"), None, "users:manage"),
        (Method::DELETE, user.clone(), None, "users:manage"),
        (
            Method::GET,
            "/v1/settings/auth-policy".to_owned(),
            None,
            "settings:manage",
        ),
        (
            Method::PUT,
            "/v1/settings/auth-policy".to_owned(),
            Some(json!({})),
            "settings:manage",
        ),
        (
            Method::POST,
            "/v1/settings/signing-keys/rotate".to_owned(),
            None,
            "settings:manage",
        ),
    ];
    for (method, path, body, permission) in endpoints {
        let answer = send(&member, method.clone(), &path, body).await;
        assert_eq!(
            answer.error_code(),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{method} {path}"
        );
        assert_eq!(
            answer.error().unwrap().details.as_ref().unwrap()["missing_permission"],
            permission
        );
    }
    // Nothing changed: the member is still there, active, with their role.
    let seen = owner.users().get(member_id).await.unwrap();
    assert_eq!(seen.status, "active");
    assert_eq!(seen.roles, ["member"]);

    // Without a token: 401.
    let anonymous = app
        .tenant("acme")
        .get("/v1/admin/users")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_invited_user_gets_the_mail_activates_and_signs_in_and_is_listed() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let email = unique_address("Invitee");
    let response = owner
        .post("/v1/admin/users/invitations")
        .json(&json!({"email": email, "display_name": "Ivy", "roles": ["manager"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let invited: tenantry_tests::client::User = response.json().unwrap();
    assert_eq!(invited.status, "invited");
    assert_eq!(invited.roles, ["manager"]);
    assert_eq!(invited.email, email.to_lowercase());

    let mails = app.wait_for_mail(&email, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]
            .body
            .contains("https://acme.tenantry.test/console/accept-invitation?token=tnut_"),
        "{}",
        mails[0].body
    );
    // Invited, not yet signed in: the password is not set.
    let acme = app.tenant("acme");
    let early = acme.auth().login(&email, PASSWORD).await.unwrap_err();
    assert_eq!(early.status(), Some(StatusCode::UNAUTHORIZED));
    let token = mailed_token(&mails[0], "acme", "/console/accept-invitation");
    acme.auth().activate(&token, PASSWORD).await.unwrap();
    let manager = app.signed_in("acme", &email, PASSWORD).await;

    // A manager may read users (users:read) but not change them.
    let page = manager.users().list(None, None, None).await.unwrap();
    assert_eq!(page.users.len(), 2);
    assert!(page.next_cursor.is_none());

    // The same address again: 409, whatever its case.
    let again = owner
        .users()
        .invite(&email.to_uppercase(), &["member"])
        .await
        .unwrap_err();
    assert_eq!(again.status(), Some(StatusCode::CONFLICT));
    assert_eq!(again.code(), Some("user_exists"));
    // Unknown role names: 400, and no user is made.
    let unknown_email = unique_address("unknown-role");
    let unknown = owner
        .post("/v1/admin/users/invitations")
        .json(&json!({"email": unknown_email, "roles": ["member", "wizard"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.error_code(),
        (StatusCode::BAD_REQUEST, "unknown_role")
    );
    assert_eq!(
        unknown.error().unwrap().details.as_ref().unwrap()["unknown_roles"],
        json!(["wizard"])
    );
    // Neither the refused invitation's user nor its mail exists.
    let schema = app.tenant_schema("acme").await;
    let left: i64 = app
        .superuser()
        .await
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {schema}.users WHERE email = $1)
                      + (SELECT count(*) FROM {schema}.mail_outbox WHERE to_address = $1) AS left"
            ),
            &[&unknown_email],
        )
        .await
        .unwrap()
        .try_get("left")
        .unwrap();
    assert_eq!(left, 0);

    // Pages of one, in a stable order, filtered by status.
    for extra in 0..2 {
        owner
            .users()
            .invite(&unique_address(&format!("extra{extra}")), &[])
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = owner.users().list(None, Some(1), cursor).await.unwrap();
        assert!(page.users.len() <= 1);
        seen.extend(page.users.iter().map(|user| user.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4);
    let invited = owner
        .users()
        .list(Some(UserStatus::Invited), None, None)
        .await
        .unwrap();
    assert_eq!(invited.users.len(), 2);
    let bad = owner
        .get("/v1/admin/users?status=sleeping")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_disabled_users_token_is_refused_at_once_on_another_node_until_re_enabled() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let email = unique_address("disabled");
    let user_id = app.invite_and_activate(&owner, &email, &["member"]).await;
    // Held as its tokens: the refused refresh below is the test's own.
    let tokens = app.sign_in_tokens("acme", &email, PASSWORD).await;

    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let on_second = app
        .as_bearer("acme", tokens.access_token.expose())
        .on(&second);
    // The second node has the session cached as live.
    let me = on_second.get("/v1/me").send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    let disabled = owner.users().disable(user_id).await.unwrap();
    assert_eq!(disabled.status, "disabled");

    let refused = TestApp::eventually(Duration::from_secs(1), || async {
        on_second.get("/v1/me").send().await.unwrap().status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused.is_some(), "the second node still accepts the token");
    let acme = app.tenant("acme");
    let refresh = acme
        .auth()
        .refresh(tokens.refresh_token.expose())
        .await
        .unwrap_err();
    assert_eq!(refresh.status(), Some(StatusCode::UNAUTHORIZED));
    let login = acme
        .post("/v1/auth/login")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.error_code(),
        (StatusCode::FORBIDDEN, "account_disabled")
    );

    let enabled = owner.users().enable(user_id).await.unwrap();
    assert_eq!(enabled.status, "active");
    let again = app.signed_in("acme", &email, PASSWORD).await.on(&second);
    let me = again.get("/v1/me").send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
}
