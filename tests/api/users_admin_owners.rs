//! Users admin, continued: role changes, the owner rules (only owners touch owners, the last
//! active owner stays, even under concurrent demotions), self-protection, MFA reset,
//! deletion, and user ids of other tenants.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp};

use crate::users_admin::{
    access, call, error_code, invite_and_activate, tenant_schema, tenant_with_owner, OWNER_EMAIL,
    PASSWORD,
};

async fn own_id(app: &TestApp, slug: &str, token: &str) -> String {
    let me: Value = call(app, Method::GET, slug, "/v1/me", token, None)
        .await
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_can_neither_touch_an_owner_nor_grant_owner() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let owner_id = own_id(&app, "acme", &owner).await;
    let admin_email = unique_address("admin");
    let member_id =
        invite_and_activate(&app, "acme", &owner, &unique_address("m"), &["member"]).await;
    invite_and_activate(&app, "acme", &owner, &admin_email, &["admin"]).await;
    let admin = access(&app.sign_in("acme", &admin_email, PASSWORD).await);

    let on_owner = format!("/v1/admin/users/{owner_id}");
    let attempts = [
        (Method::POST, format!("{on_owner}/disable"), None),
        (
            Method::PUT,
            format!("{on_owner}/roles"),
            Some(json!({"roles": ["admin"]})),
        ),
        (Method::DELETE, format!("{on_owner}/mfa"), None),
        (Method::DELETE, on_owner.clone(), None),
        (
            Method::PUT,
            format!("/v1/admin/users/{member_id}/roles"),
            Some(json!({"roles": ["owner"]})),
        ),
        (
            Method::POST,
            "/v1/admin/users/invitations".to_owned(),
            Some(json!({"email": unique_address("would-be-owner"), "roles": ["owner"]})),
        ),
    ];
    for (method, path, body) in attempts {
        let response = call(&app, method.clone(), "acme", &path, &admin, body).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::FORBIDDEN, "owner_required".to_owned()),
            "{method} {path}"
        );
    }
    let seen: Value = call(&app, Method::GET, "acme", &on_owner, &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (seen["status"].as_str(), &seen["roles"]),
        (Some("active"), &json!(["owner"]))
    );
    let member: Value = call(
        &app,
        Method::GET,
        "acme",
        &format!("/v1/admin/users/{member_id}"),
        &owner,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(member["roles"], json!(["member"]));

    // The admin may manage non-owners, but not disable or delete themself.
    let admin_id = own_id(&app, "acme", &admin).await;
    for (method, path) in [
        (Method::POST, format!("/v1/admin/users/{admin_id}/disable")),
        (Method::DELETE, format!("/v1/admin/users/{admin_id}")),
    ] {
        let response = call(&app, method, "acme", &path, &admin, None).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::FORBIDDEN, "self_action".to_owned())
        );
    }
    let disabled = call(
        &app,
        Method::POST,
        "acme",
        &format!("/v1/admin/users/{member_id}/disable"),
        &admin,
        None,
    )
    .await;
    assert_eq!(disabled.status(), StatusCode::OK);
}

async fn active_owners(app: &TestApp, schema: &str) -> i64 {
    app.superuser()
        .await
        .query_one(
            &format!(
                "SELECT count(*) FROM {schema}.users u JOIN {schema}.user_roles r ON r.user_id = u.id
                 WHERE r.role_name = 'owner' AND u.status = 'active'"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_last_active_owner_stays_even_when_two_owners_demote_each_other_at_once() {
    let app = TestApp::spawn().await;
    let first = tenant_with_owner(&app, "acme").await;
    // Not about limits: once hashing got fast, this many writes hit the free plan's burst.
    app.raise_rate_limits("acme").await;
    let first_id = own_id(&app, "acme", &first).await;
    let schema = tenant_schema(&app, "acme").await;

    // Alone: no self-demotion, and no disabling or deleting oneself.
    let demote_self = call(
        &app,
        Method::PUT,
        "acme",
        &format!("/v1/admin/users/{first_id}/roles"),
        &first,
        Some(json!({"roles": ["admin"]})),
    )
    .await;
    assert_eq!(
        error_code(demote_self).await,
        (StatusCode::CONFLICT, "last_owner".to_owned())
    );

    for round in 0..3 {
        let email = unique_address(&format!("co-owner{round}"));
        let second_id = invite_and_activate(&app, "acme", &first, &email, &["owner"]).await;
        let second = access(&app.sign_in("acme", &email, PASSWORD).await);
        assert_eq!(active_owners(&app, &schema).await, 2);

        let demote_second = format!("/v1/admin/users/{second_id}/roles");
        let demote_first = format!("/v1/admin/users/{first_id}/roles");
        let (a, b) = tokio::join!(
            call(
                &app,
                Method::PUT,
                "acme",
                &demote_second,
                &first,
                Some(json!({"roles": ["admin"]}))
            ),
            call(
                &app,
                Method::PUT,
                "acme",
                &demote_first,
                &second,
                Some(json!({"roles": ["admin"]}))
            ),
        );
        let statuses = [a.status(), b.status()];
        assert_eq!(
            statuses
                .iter()
                .filter(|status| **status == StatusCode::OK)
                .count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(active_owners(&app, &schema).await, 1);
        if b.status() == StatusCode::OK {
            // The second owner won: make the first an owner again for the next round.
            let back = call(
                &app,
                Method::PUT,
                "acme",
                &format!("/v1/admin/users/{first_id}/roles"),
                &second,
                Some(json!({"roles": ["owner"]})),
            )
            .await;
            assert_eq!(back.status(), StatusCode::OK);
        }
        let removed = call(
            &app,
            Method::DELETE,
            "acme",
            &format!("/v1/admin/users/{second_id}"),
            &first,
            None,
        )
        .await;
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    }

    // With a disabled co-owner, the first is still the last active one: no demotion.
    let email = unique_address("dormant-owner");
    let dormant = invite_and_activate(&app, "acme", &first, &email, &["owner"]).await;
    let disabled = call(
        &app,
        Method::POST,
        "acme",
        &format!("/v1/admin/users/{dormant}/disable"),
        &first,
        None,
    )
    .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    let dormant_token_refused = app
        .tenant_post(
            "acme",
            "/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(dormant_token_refused.status(), StatusCode::FORBIDDEN);
    let demote = call(
        &app,
        Method::PUT,
        "acme",
        &format!("/v1/admin/users/{first_id}/roles"),
        &first,
        Some(json!({"roles": ["admin"]})),
    )
    .await;
    assert_eq!(
        error_code(demote).await,
        (StatusCode::CONFLICT, "last_owner".to_owned())
    );
    assert_eq!(active_owners(&app, &schema).await, 1);
}

#[tokio::test]
async fn an_mfa_reset_clears_the_enrolment_backup_codes_and_challenges() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let user_id =
        invite_and_activate(&app, "acme", &owner, &unique_address("mfa"), &["member"]).await;
    let schema = tenant_schema(&app, "acme").await;
    let database = app.superuser().await;
    database
        .batch_execute(&format!(
            "UPDATE {schema}.users SET totp_secret = '\\x0102', totp_key_version = 1,
                 totp_enabled_at = now(), totp_last_step = 42 WHERE id = '{user_id}';
             INSERT INTO {schema}.backup_codes (user_id, code_hash) VALUES ('{user_id}', '\\x01'), ('{user_id}', '\\x02');
             INSERT INTO {schema}.mfa_challenges (token_hash, user_id, expires_at)
                 VALUES ('\\x03', '{user_id}', now() + interval '5 minutes');"
        ))
        .await
        .unwrap();
    let path = format!("/v1/admin/users/{user_id}");
    let before: Value = call(&app, Method::GET, "acme", &path, &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["mfa_enabled"], true);

    let reset = call(
        &app,
        Method::DELETE,
        "acme",
        &format!("{path}/mfa"),
        &owner,
        None,
    )
    .await;
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(reset.json::<Value>().await.unwrap()["mfa_enabled"], false);
    let row = database
        .query_one(
            &format!(
                "SELECT totp_secret IS NULL AND totp_key_version IS NULL AND totp_enabled_at IS NULL
                        AND totp_last_step IS NULL,
                        (SELECT count(*) FROM {schema}.backup_codes WHERE user_id = u.id),
                        (SELECT count(*) FROM {schema}.mfa_challenges WHERE user_id = u.id)
                 FROM {schema}.users u WHERE id = '{user_id}'"
            ),
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!((row.get::<_, i64>(1), row.get::<_, i64>(2)), (0, 0));
}

#[tokio::test]
async fn a_deleted_user_is_gone_with_their_sessions_and_their_address_is_free() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let email = unique_address("leaver");
    let user_id = invite_and_activate(&app, "acme", &owner, &email, &["member"]).await;
    let token = access(&app.sign_in("acme", &email, PASSWORD).await);
    let path = format!("/v1/admin/users/{user_id}");

    let deleted = call(&app, Method::DELETE, "acme", &path, &owner, None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let me = call(&app, Method::GET, "acme", "/v1/me", &token, None).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let gone = call(&app, Method::GET, "acme", &path, &owner, None).await;
    assert_eq!(
        error_code(gone).await,
        (StatusCode::NOT_FOUND, "user_not_found".to_owned())
    );
    let login = app
        .tenant_post(
            "acme",
            "/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    let again = call(
        &app,
        Method::POST,
        "acme",
        "/v1/admin/users/invitations",
        &owner,
        Some(json!({"email": email, "roles": ["member"]})),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn user_ids_of_another_tenant_or_not_ids_at_all_are_404() {
    let app = TestApp::spawn().await;
    let acme = tenant_with_owner(&app, "acme").await;
    let globex = tenant_with_owner(&app, "globex").await;
    // Eighteen writes in a burst: more than the free plan's write burst.
    app.raise_rate_limits("acme").await;
    let globex_user =
        invite_and_activate(&app, "globex", &globex, &unique_address("g"), &["member"]).await;
    let globex_owner = own_id(&app, "globex", &globex).await;

    for id in [globex_user.as_str(), globex_owner.as_str(), "not-a-uuid"] {
        let path = format!("/v1/admin/users/{id}");
        for (method, path, body) in [
            (Method::GET, path.clone(), None),
            (Method::POST, format!("{path}/disable"), None),
            (Method::POST, format!("{path}/enable"), None),
            (
                Method::PUT,
                format!("{path}/roles"),
                Some(json!({"roles": ["member"]})),
            ),
            (Method::DELETE, format!("{path}/mfa"), None),
            (Method::DELETE, path.clone(), None),
        ] {
            let response = call(&app, method.clone(), "acme", &path, &acme, body).await;
            assert_eq!(
                error_code(response).await,
                (StatusCode::NOT_FOUND, "user_not_found".to_owned()),
                "{method} {path}"
            );
        }
    }
    // Globex's users are untouched.
    let page: Value = call(
        &app,
        Method::GET,
        "globex",
        "/v1/admin/users",
        &globex,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let users = page["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|user| user["status"] == "active"));
    assert!(users.iter().any(|user| user["email"] == OWNER_EMAIL));
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_role_change_applies_to_the_guard_at_once_and_shows_in_the_next_token() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let email = unique_address("promoted");
    let user_id = invite_and_activate(&app, "acme", &owner, &email, &["member"]).await;
    let tokens = app.sign_in("acme", &email, PASSWORD).await;
    let token = access(&tokens);
    assert_eq!(claims(&token)["roles"], json!(["member"]));
    let list = || call(&app, Method::GET, "acme", "/v1/admin/users", &token, None);
    assert_eq!(list().await.status(), StatusCode::FORBIDDEN);

    let roles = format!("/v1/admin/users/{user_id}/roles");
    let changed = call(
        &app,
        Method::PUT,
        "acme",
        &roles,
        &owner,
        Some(json!({"roles": ["manager", "member", "manager"]})),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        changed.json::<Value>().await.unwrap()["roles"],
        json!(["manager", "member"])
    );
    // The guard reads the roles held now, so the old token already lists users.
    assert_eq!(list().await.status(), StatusCode::OK);
    let refreshed: Value = app
        .tenant_post(
            "acme",
            "/v1/auth/refresh",
            &json!({"refresh_token": tokens["refresh_token"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(&access(&refreshed))["roles"],
        json!(["manager", "member"])
    );

    // And a demotion takes effect at once too, before the token expires.
    let demoted = call(
        &app,
        Method::PUT,
        "acme",
        &roles,
        &owner,
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(demoted.status(), StatusCode::OK);
    assert_eq!(list().await.status(), StatusCode::FORBIDDEN);
    let unknown = call(
        &app,
        Method::PUT,
        "acme",
        &roles,
        &owner,
        Some(json!({"roles": ["root"]})),
    )
    .await;
    assert_eq!(
        error_code(unknown).await,
        (StatusCode::BAD_REQUEST, "unknown_role".to_owned())
    );
}
