//! Users admin, continued: role changes, the owner rules (only owners touch owners, the last
//! active owner stays, even under concurrent demotions), self-protection, MFA reset,
//! deletion, and user ids of other tenants.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{send, unique_address, Client, Reply, TestApp, OWNER_EMAIL, PASSWORD};

#[tokio::test]
async fn an_admin_can_neither_touch_an_owner_nor_grant_owner() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let owner_id = owner.me().get().await.unwrap().id;
    let admin_email = unique_address("admin");
    let member_id = app
        .invite_and_activate(&owner, &unique_address("m"), &["member"])
        .await;
    app.invite_and_activate(&owner, &admin_email, &["admin"])
        .await;
    let admin = app.signed_in("acme", &admin_email, PASSWORD).await;

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
        let answer = send(&admin, method.clone(), &path, body).await;
        assert_eq!(
            answer.error_code(),
            (StatusCode::FORBIDDEN, "owner_required"),
            "{method} {path}"
        );
    }
    let seen = owner.users().get(owner_id).await.unwrap();
    assert_eq!(
        (seen.status.as_str(), seen.roles),
        ("active", vec!["owner".to_owned()])
    );
    let member = owner.users().get(member_id).await.unwrap();
    assert_eq!(member.roles, ["member"]);

    // The admin may manage non-owners, but not disable or delete themself.
    let admin_id = admin.me().get().await.unwrap().id;
    for (method, path) in [
        (Method::POST, format!("/v1/admin/users/{admin_id}/disable")),
        (Method::DELETE, format!("/v1/admin/users/{admin_id}")),
    ] {
        assert_eq!(
            send(&admin, method, &path, None).await.error_code(),
            (StatusCode::FORBIDDEN, "self_action")
        );
    }
    let disabled = admin
        .post(format!("/v1/admin/users/{member_id}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
}

async fn active_owners(app: &TestApp, schema: &str) -> i64 {
    app.superuser()
        .await
        .query_one(
            &format!(
                "SELECT count(*) AS owners FROM {schema}.users u
                 JOIN {schema}.user_roles r ON r.user_id = u.id
                 WHERE r.role_name = 'owner' AND u.status = 'active'"
            ),
            &[],
        )
        .await
        .unwrap()
        .try_get("owners")
        .unwrap()
}

/// `PUT /v1/admin/users/{id}/roles` making user `id` an admin, as `caller`; whatever the
/// answer.
async fn demote(caller: &Client, id: uuid::Uuid) -> Reply {
    caller
        .put(format!("/v1/admin/users/{id}/roles"))
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_last_active_owner_stays_even_when_two_owners_demote_each_other_at_once() {
    let app = TestApp::spawn().await;
    let first = app.tenant_with_owner("acme").await;
    // Not about limits: once hashing got fast, this many writes hit the free plan's burst.
    app.raise_rate_limits("acme").await;
    let first_id = first.me().get().await.unwrap().id;
    let schema = app.tenant_schema("acme").await;

    // Alone: no self-demotion, and no disabling or deleting oneself.
    assert_eq!(
        demote(&first, first_id).await.error_code(),
        (StatusCode::CONFLICT, "last_owner")
    );

    for round in 0..3 {
        let email = unique_address(&format!("co-owner{round}"));
        let second_id = app.invite_and_activate(&first, &email, &["owner"]).await;
        let second = app.signed_in("acme", &email, PASSWORD).await;
        assert_eq!(active_owners(&app, &schema).await, 2);

        let (a, b) = tokio::join!(demote(&first, second_id), demote(&second, first_id));
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
            second
                .users()
                .set_roles(first_id, &[json!("owner")])
                .await
                .unwrap();
        }
        let removed = first
            .delete(format!("/v1/admin/users/{second_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    }

    // With a disabled co-owner, the first is still the last active one: no demotion.
    let email = unique_address("dormant-owner");
    let dormant = app.invite_and_activate(&first, &email, &["owner"]).await;
    assert_eq!(
        first.users().disable(dormant).await.unwrap().status,
        "disabled"
    );
    let dormant_refused = app
        .tenant("acme")
        .auth()
        .login(&email, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(dormant_refused.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(
        demote(&first, first_id).await.error_code(),
        (StatusCode::CONFLICT, "last_owner")
    );
    assert_eq!(active_owners(&app, &schema).await, 1);
}

#[tokio::test]
async fn an_mfa_reset_clears_the_enrolment_backup_codes_and_challenges() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let user_id = app
        .invite_and_activate(&owner, &unique_address("mfa"), &["member"])
        .await;
    let schema = app.tenant_schema("acme").await;
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
    assert!(owner.users().get(user_id).await.unwrap().mfa_enabled);

    let reset = owner
        .delete(format!("/v1/admin/users/{user_id}/mfa"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(reset.value()["mfa_enabled"], false);
    let row = database
        .query_one(
            &format!(
                "SELECT totp_secret IS NULL AND totp_key_version IS NULL AND totp_enabled_at IS NULL
                        AND totp_last_step IS NULL AS cleared,
                        (SELECT count(*) FROM {schema}.backup_codes WHERE user_id = u.id)
                            AS backup_codes,
                        (SELECT count(*) FROM {schema}.mfa_challenges WHERE user_id = u.id)
                            AS challenges
                 FROM {schema}.users u WHERE id = '{user_id}'"
            ),
            &[],
        )
        .await
        .unwrap();
    assert!(row.try_get::<_, bool>("cleared").unwrap());
    assert_eq!(
        (
            row.try_get::<_, i64>("backup_codes").unwrap(),
            row.try_get::<_, i64>("challenges").unwrap()
        ),
        (0, 0)
    );
}

#[tokio::test]
async fn a_deleted_user_is_gone_with_their_sessions_and_their_address_is_free() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let email = unique_address("leaver");
    let user_id = app.invite_and_activate(&owner, &email, &["member"]).await;
    let tokens = app.sign_in_tokens("acme", &email, PASSWORD).await;
    let leaver = app.as_bearer("acme", tokens.access_token.expose());
    let path = format!("/v1/admin/users/{user_id}");

    let deleted = owner.delete(&path).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let me = leaver.get("/v1/me").send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        owner.get(&path).send().await.unwrap().error_code(),
        (StatusCode::NOT_FOUND, "user_not_found")
    );
    let login = app
        .tenant("acme")
        .auth()
        .login(&email, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(login.status(), Some(StatusCode::UNAUTHORIZED));
    let again = owner
        .post("/v1/admin/users/invitations")
        .json(&json!({"email": email, "roles": ["member"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn user_ids_of_another_tenant_or_not_ids_at_all_are_404() {
    let app = TestApp::spawn().await;
    let acme = app.tenant_with_owner("acme").await;
    let globex = app.tenant_with_owner("globex").await;
    // Eighteen writes in a burst: more than the free plan's write burst.
    app.raise_rate_limits("acme").await;
    let globex_user = app
        .invite_and_activate(&globex, &unique_address("g"), &["member"])
        .await
        .to_string();
    let globex_owner = globex.me().get().await.unwrap().id.to_string();

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
            assert_eq!(
                send(&acme, method.clone(), &path, body).await.error_code(),
                (StatusCode::NOT_FOUND, "user_not_found"),
                "{method} {path}"
            );
        }
    }
    // Globex's users are untouched.
    let users = globex.users().list(None, None, None).await.unwrap().users;
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|user| user.status == "active"));
    assert!(users.iter().any(|user| user.email == OWNER_EMAIL));
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
    let owner = app.tenant_with_owner("acme").await;
    let email = unique_address("promoted");
    let user_id = app.invite_and_activate(&owner, &email, &["member"]).await;
    // Held as its tokens: the test refreshes the session itself, once, to read the new token.
    let tokens = app.sign_in_tokens("acme", &email, PASSWORD).await;
    assert_eq!(
        claims(tokens.access_token.expose())["roles"],
        json!(["member"])
    );
    let promoted = app.as_bearer("acme", tokens.access_token.expose());
    let list = || async { promoted.get("/v1/admin/users").send().await.unwrap() };
    assert_eq!(list().await.status(), StatusCode::FORBIDDEN);

    let roles = format!("/v1/admin/users/{user_id}/roles");
    let changed = owner
        .put(&roles)
        .json(&json!({"roles": ["manager", "member", "manager"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(changed.value()["roles"], json!(["manager", "member"]));
    // The guard reads the roles held now, so the old token already lists users.
    assert_eq!(list().await.status(), StatusCode::OK);
    let refreshed = app
        .tenant("acme")
        .auth()
        .refresh(tokens.refresh_token.expose())
        .await
        .unwrap();
    assert_eq!(
        claims(refreshed.access_token.expose())["roles"],
        json!(["manager", "member"])
    );

    // And a demotion takes effect at once too, before the token expires.
    let demoted = owner.users().set_roles(user_id, &[]).await.unwrap();
    assert!(demoted.roles.is_empty());
    assert_eq!(list().await.status(), StatusCode::FORBIDDEN);
    let unknown = owner
        .put(&roles)
        .json(&json!({"roles": ["root"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.error_code(),
        (StatusCode::BAD_REQUEST, "unknown_role")
    );
}
