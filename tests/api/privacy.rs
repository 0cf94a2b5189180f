//! Personal data (GDPR): a user's own export, an admin's erasure, the tenant's privacy policy.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp};

use crate::api_keys::{create_key, key_text};
use crate::users_admin::{
    access, call, error_code, invite_and_activate, tenant_with_owner, OWNER_EMAIL, PASSWORD,
};

async fn failed_sign_in(app: &TestApp, slug: &str, email: &str) {
    let response = app
        .tenant_post(
            slug,
            "/v1/auth/login",
            &json!({"email": email, "password": "not the password at all"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_user_exports_their_own_data_and_no_secret() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let email = unique_address("export");
    invite_and_activate(&app, "acme", &owner, &email, &["member", "developer"]).await;
    failed_sign_in(&app, "acme", &email).await;
    let token = access(&app.sign_in("acme", &email, PASSWORD).await);
    let key = create_key(
        &app,
        "acme",
        &token,
        json!({"name": "ci", "scopes": ["records:read"]}),
    )
    .await;

    // One record of theirs and one of the owner's.
    for (who, title) in [(&token, "mine"), (&owner, "not mine")] {
        let created = call(
            &app,
            Method::POST,
            "acme",
            "/v1/collections/notes/records",
            who,
            Some(json!({"title": title})),
        )
        .await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }

    let response = call(&app, Method::GET, "acme", "/v1/me/export", &token, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment"));
    let text = response.text().await.unwrap();
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["user"]["email"], email.as_str());
    assert_eq!(export["tenant"]["slug"], "acme");
    assert_eq!(export["roles"][1]["role"], "member");
    assert_eq!(export["api_keys"][0]["prefix"], key["prefix"]);
    let records = export["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["collection"], "notes");
    assert_eq!(records[0]["data"]["title"], "mine");
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    let outcomes: Vec<&str> = export["sign_in_attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_ne!(outcomes[0], outcomes[1]);
    // Nothing secret, and nothing of another user.
    let key_secret = key_text(&key);
    for secret in [
        key_secret.as_str(),
        "secret_hash",
        "$argon2",
        "password_hash",
        "totp_secret",
        "token_hash",
        OWNER_EMAIL,
    ] {
        assert!(!text.contains(secret), "the export contains {secret}");
    }

    let anonymous = app
        .tenant_get("acme", "/v1/me/export")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// Rows naming `email`: users, sign-in attempts, outbox mail.
async fn traces(db: &tokio_postgres::Client, email: &str) -> Vec<i64> {
    let mut counts = Vec::new();
    for sql in [
        "SELECT count(*) FROM tenant_acme.users WHERE email = $1",
        "SELECT count(*) FROM tenant_acme.login_attempts WHERE email = $1",
        "SELECT count(*) FROM tenant_acme.mail_outbox WHERE to_address = $1",
    ] {
        counts.push(db.query_one(sql, &[&email]).await.unwrap().get::<_, i64>(0));
    }
    counts
}

#[tokio::test]
async fn erasing_a_user_leaves_no_personal_data_behind() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let email = unique_address("erase");
    let id = invite_and_activate(&app, "acme", &owner, &email, &["member"]).await;
    failed_sign_in(&app, "acme", &email).await;
    app.sign_in("acme", &email, PASSWORD).await;
    let db = app.superuser().await;
    let before = traces(&db, &email).await;
    assert!(before.iter().all(|count| *count > 0), "{before:?}");
    let attempts_before: i64 = db
        .query_one("SELECT count(*) FROM tenant_acme.login_attempts", &[])
        .await
        .unwrap()
        .get(0);

    let erased = call(
        &app,
        Method::DELETE,
        "acme",
        &format!("/v1/admin/users/{id}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    assert_eq!(traces(&db, &email).await, [0, 0, 0]);
    // The history keeps its shape (counts for the audit) without the person.
    let anonymous: i64 = db
        .query_one(
            "SELECT count(*) FROM tenant_acme.login_attempts
             WHERE email = 'erased' AND user_id IS NULL AND ip IS NULL AND user_agent IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(anonymous, 2);
    let attempts_after: i64 = db
        .query_one("SELECT count(*) FROM tenant_acme.login_attempts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts_after, attempts_before);
    // The owner's own history is untouched.
    let owners: i64 = db
        .query_one(
            "SELECT count(*) FROM tenant_acme.login_attempts WHERE email = $1",
            &[&OWNER_EMAIL],
        )
        .await
        .unwrap()
        .get(0);
    assert!(owners > 0);
}

#[tokio::test]
async fn the_privacy_policy_is_validated_and_kept_per_tenant() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let other = tenant_with_owner(&app, "globex").await;
    let path = "/v1/settings/privacy";
    let policy: Value = call(&app, Method::GET, "acme", path, &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(policy, json!({"erased_user_records": "reassign"}));
    let changed = call(
        &app,
        Method::PUT,
        "acme",
        path,
        &owner,
        Some(json!({"erased_user_records": "delete"})),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    for bad in [
        json!({"erased_user_records": "shred"}),
        json!({"erased_user_records": "delete", "extra": 1}),
        json!(["delete"]),
    ] {
        let refused = call(&app, Method::PUT, "acme", path, &owner, Some(bad.clone())).await;
        assert_eq!(
            error_code(refused).await,
            (StatusCode::BAD_REQUEST, "invalid_policy".into()),
            "{bad}"
        );
    }
    let kept: Value = call(&app, Method::GET, "acme", path, &owner, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["erased_user_records"], "delete");
    let untouched: Value = call(&app, Method::GET, "globex", path, &other, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(untouched["erased_user_records"], "reassign");
    // A member may not change it.
    let email = unique_address("member");
    invite_and_activate(&app, "acme", &owner, &email, &["member"]).await;
    let member = access(&app.sign_in("acme", &email, PASSWORD).await);
    let refused = call(
        &app,
        Method::PUT,
        "acme",
        path,
        &member,
        Some(json!({"erased_user_records": "reassign"})),
    )
    .await;
    assert_eq!(
        error_code(refused).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
}
