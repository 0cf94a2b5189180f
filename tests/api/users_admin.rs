//! Users admin (`/v1/admin/users`): the guard, invitations, disable/enable across nodes, role
//! changes, the owner rules, MFA reset, deletion and tenant isolation of user ids.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp, TestOptions};

pub const PASSWORD: &str = "correct horse battery staple";
pub const OWNER_EMAIL: &str = "olga@acme.example";

/// A request to `url` (a data-plane node) for tenant `slug` as the holder of `token`.
pub async fn call_on(
    app: &TestApp,
    url: &str,
    method: Method,
    slug: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .http
        .request(method, format!("{url}{path}"))
        .header("X-Tenant", slug)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// The same on the first node.
pub async fn call(
    app: &TestApp,
    method: Method,
    slug: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    call_on(app, &app.data_url, method, slug, path, token, body).await
}

pub async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

pub fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// Tenant `slug` with an active owner; the owner's access token.
pub async fn tenant_with_owner(app: &TestApp, slug: &str) -> String {
    app.tenant_with_active_admin(slug, OWNER_EMAIL, PASSWORD)
        .await;
    access(&app.sign_in(slug, OWNER_EMAIL, PASSWORD).await)
}

/// Invites `email` with `roles` as the holder of `token`, follows the mailed link's token to
/// activate with [`PASSWORD`]; returns the new user's id.
pub async fn invite_and_activate(
    app: &TestApp,
    slug: &str,
    token: &str,
    email: &str,
    roles: &[&str],
) -> String {
    let response = call(
        app,
        Method::POST,
        slug,
        "/v1/admin/users/invitations",
        token,
        Some(json!({"email": email, "roles": roles})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    let invitation = mailed_token(app, email).await;
    let activated = app
        .tenant_post(
            slug,
            "/v1/auth/activate",
            &json!({"token": invitation, "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), StatusCode::OK);
    user["id"].as_str().unwrap().to_owned()
}

/// The token in the invitation link mailed to `email`.
async fn mailed_token(app: &TestApp, email: &str) -> String {
    let mails = app.wait_for_mail(email, Duration::from_secs(10)).await;
    let body = &mails[0].body;
    let start = body.find("?token=").unwrap() + "?token=".len();
    body[start..].split_whitespace().next().unwrap().to_owned()
}

/// The tenant's schema name, quoted for SQL.
pub async fn tenant_schema(app: &TestApp, slug: &str) -> String {
    let name: String = app
        .superuser()
        .await
        .query_one(
            "SELECT schema_name FROM control.tenants WHERE slug = $1 AND status = 'active'",
            &[&slug],
        )
        .await
        .unwrap()
        .get(0);
    format!("\"{name}\"")
}

#[tokio::test]
async fn a_member_gets_403_naming_the_permission_on_every_admin_endpoint() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let member_email = unique_address("member");
    let member_id = invite_and_activate(&app, "acme", &owner, &member_email, &["member"]).await;
    let member = access(&app.sign_in("acme", &member_email, PASSWORD).await);
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
        let response = call(&app, method.clone(), "acme", &path, &member, body).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden", "{method} {path}");
        assert_eq!(body["error"]["details"]["missing_permission"], permission);
    }
    // Nothing changed: the member is still there, active, with their role.
    let seen: Value = call(&app, Method::GET, "acme", &user, &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["status"], "active");
    assert_eq!(seen["roles"], json!(["member"]));

    // Without a token: 401.
    let anonymous = app
        .tenant_get("acme", "/v1/admin/users")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_invited_user_gets_the_mail_activates_and_signs_in_and_is_listed() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let email = unique_address("Invitee");
    let response = call(
        &app,
        Method::POST,
        "acme",
        "/v1/admin/users/invitations",
        &owner,
        Some(json!({"email": email, "display_name": "Ivy", "roles": ["manager"]})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let invited: Value = response.json().await.unwrap();
    assert_eq!(invited["status"], "invited");
    assert_eq!(invited["roles"], json!(["manager"]));
    assert_eq!(invited["email"], email.to_lowercase());

    let mails = app.wait_for_mail(&email, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]
            .body
            .contains("https://acme.tenantry.test/accept-invitation?token=tnut_"),
        "{}",
        mails[0].body
    );
    // Invited, not yet signed in: the password is not set.
    let early = app
        .tenant_post(
            "acme",
            "/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), StatusCode::UNAUTHORIZED);
    let token = mailed_token(&app, &email).await;
    let activated = app
        .tenant_post(
            "acme",
            "/v1/auth/activate",
            &json!({"token": token, "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), StatusCode::OK);
    let manager = access(&app.sign_in("acme", &email, PASSWORD).await);

    // A manager may read users (users:read) but not change them.
    let page: Value = call(&app, Method::GET, "acme", "/v1/admin/users", &manager, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_null());

    // The same address again: 409, whatever its case.
    let again = call(
        &app,
        Method::POST,
        "acme",
        "/v1/admin/users/invitations",
        &owner,
        Some(json!({"email": email.to_uppercase(), "roles": ["member"]})),
    )
    .await;
    assert_eq!(
        error_code(again).await,
        (StatusCode::CONFLICT, "user_exists".to_owned())
    );
    // Unknown role names: 400, and no user is made.
    let unknown_email = unique_address("unknown-role");
    let unknown = call(
        &app,
        Method::POST,
        "acme",
        "/v1/admin/users/invitations",
        &owner,
        Some(json!({"email": unknown_email, "roles": ["member", "wizard"]})),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_role");
    assert_eq!(body["error"]["details"]["unknown_roles"], json!(["wizard"]));
    // Neither the refused invitation's user nor its mail exists.
    let schema = tenant_schema(&app, "acme").await;
    let left: i64 = app
        .superuser()
        .await
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {schema}.users WHERE email = $1)
                      + (SELECT count(*) FROM {schema}.mail_outbox WHERE to_address = $1)"
            ),
            &[&unknown_email],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);

    // Pages of one, in a stable order, filtered by status.
    for extra in 0..2 {
        let response = call(
            &app,
            Method::POST,
            "acme",
            "/v1/admin/users/invitations",
            &owner,
            Some(json!({"email": unique_address(&format!("extra{extra}")), "roles": []})),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/admin/users?limit=1".to_owned();
    loop {
        let page: Value = call(&app, Method::GET, "acme", &path, &owner, None)
            .await
            .json()
            .await
            .unwrap();
        let users = page["users"].as_array().unwrap();
        assert!(users.len() <= 1);
        seen.extend(
            users
                .iter()
                .map(|user| user["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/admin/users?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4);
    let invited: Value = call(
        &app,
        Method::GET,
        "acme",
        "/v1/admin/users?status=invited",
        &owner,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(invited["users"].as_array().unwrap().len(), 2);
    let bad = call(
        &app,
        Method::GET,
        "acme",
        "/v1/admin/users?status=sleeping",
        &owner,
        None,
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_disabled_users_token_is_refused_at_once_on_another_node_until_re_enabled() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let email = unique_address("disabled");
    let user_id = invite_and_activate(&app, "acme", &owner, &email, &["member"]).await;
    let tokens = app.sign_in("acme", &email, PASSWORD).await;
    let token = access(&tokens);

    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    // The second node has the session cached as live.
    let me = call_on(&app, &second, Method::GET, "acme", "/v1/me", &token, None).await;
    assert_eq!(me.status(), StatusCode::OK);

    let disabled = call(
        &app,
        Method::POST,
        "acme",
        &format!("/v1/admin/users/{user_id}/disable"),
        &owner,
        None,
    )
    .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_eq!(
        disabled.json::<Value>().await.unwrap()["status"],
        "disabled"
    );

    let refused = TestApp::eventually(Duration::from_secs(1), || async {
        call_on(&app, &second, Method::GET, "acme", "/v1/me", &token, None)
            .await
            .status()
            == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused.is_some(), "the second node still accepts the token");
    let refresh = app
        .tenant_post(
            "acme",
            "/v1/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    let login = app
        .tenant_post(
            "acme",
            "/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(login).await,
        (StatusCode::FORBIDDEN, "account_disabled".to_owned())
    );

    let enabled = call(
        &app,
        Method::POST,
        "acme",
        &format!("/v1/admin/users/{user_id}/enable"),
        &owner,
        None,
    )
    .await;
    assert_eq!(enabled.json::<Value>().await.unwrap()["status"], "active");
    let again = access(&app.sign_in("acme", &email, PASSWORD).await);
    let me = call_on(&app, &second, Method::GET, "acme", "/v1/me", &again, None).await;
    assert_eq!(me.status(), StatusCode::OK);
}
