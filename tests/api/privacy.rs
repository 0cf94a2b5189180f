//! Personal data (GDPR): a user's own export, an admin's erasure, a user's own erasure, the
//! tenant's privacy policy.

use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::client::NewKey;
use tenantry_tests::{unique_address, TestApp, OWNER_EMAIL, PASSWORD};

async fn failed_sign_in(app: &TestApp, slug: &str, email: &str) {
    let refused = app
        .tenant(slug)
        .auth()
        .login(email, "not the password at all")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::UNAUTHORIZED));
}

#[tokio::test]
async fn a_user_exports_their_own_data_and_no_secret() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let email = unique_address("export");
    app.invite_and_activate(&owner, &email, &["member", "developer"])
        .await;
    failed_sign_in(&app, "acme", &email).await;
    let user = app.signed_in("acme", &email, PASSWORD).await;
    let key = user
        .api_keys()
        .create(&NewKey::new("ci", &["records:read"]))
        .await
        .unwrap();

    // One record of theirs and one of the owner's.
    for (who, title) in [(&user, "mine"), (&owner, "not mine")] {
        who.records("notes")
            .create(&json!({"title": title}))
            .await
            .unwrap();
    }

    // Read as it comes, for its headers and to search its text for secrets.
    let response = user.get("/v1/me/export").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment"));
    let text = response.text();
    let export = response.value();
    assert_eq!(export["user"]["email"], email.as_str());
    assert_eq!(export["tenant"]["slug"], "acme");
    assert_eq!(export["roles"][1]["role"], "member");
    assert_eq!(export["api_keys"][0]["prefix"], key.view.prefix);
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
    for secret in [
        key.key.expose(),
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
        .tenant("acme")
        .get("/v1/me/export")
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
    let owner = app.tenant_with_owner("acme").await;
    let email = unique_address("erase");
    let id = app.invite_and_activate(&owner, &email, &["member"]).await;
    failed_sign_in(&app, "acme", &email).await;
    app.signed_in("acme", &email, PASSWORD).await;
    let db = app.superuser().await;
    let before = traces(&db, &email).await;
    assert!(before.iter().all(|count| *count > 0), "{before:?}");
    let attempts_before: i64 = db
        .query_one("SELECT count(*) FROM tenant_acme.login_attempts", &[])
        .await
        .unwrap()
        .get(0);

    owner.users().delete(id).await.unwrap();
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
    let owner = app.tenant_with_owner("acme").await;
    let other = app.tenant_with_owner("globex").await;
    let policy = owner.setting("privacy").await.unwrap();
    assert_eq!(policy, json!({"erased_user_records": "reassign"}));
    owner
        .put_setting("privacy", &json!({"erased_user_records": "delete"}))
        .await
        .unwrap();
    for bad in [
        json!({"erased_user_records": "shred"}),
        json!({"erased_user_records": "delete", "extra": 1}),
        json!(["delete"]),
    ] {
        let refused = owner
            .put("/v1/settings/privacy")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused.error_code(),
            (StatusCode::BAD_REQUEST, "invalid_policy"),
            "{bad}"
        );
    }
    let kept = owner.setting("privacy").await.unwrap();
    assert_eq!(kept["erased_user_records"], "delete");
    let untouched = other.setting("privacy").await.unwrap();
    assert_eq!(untouched["erased_user_records"], "reassign");
    // A member may not change it.
    let email = unique_address("member");
    app.invite_and_activate(&owner, &email, &["member"]).await;
    let member = app.signed_in("acme", &email, PASSWORD).await;
    let refused = member
        .put_setting("privacy", &json!({"erased_user_records": "reassign"}))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(StatusCode::FORBIDDEN), Some("forbidden"))
    );
}

#[tokio::test]
async fn a_user_erases_their_own_account_with_a_fresh_sign_in_and_their_address_typed() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let owner = app.tenant_with_owner("acme").await;
    let email = unique_address("self-erase");
    let id = app.invite_and_activate(&owner, &email, &["member"]).await;
    let user = app.signed_in("acme", &email, PASSWORD).await;
    let record = user
        .records("notes")
        .create(&json!({ "text": "mine" }))
        .await
        .unwrap();

    // Another address typed: refused, nothing changed.
    let wrong = user.me().erase(OWNER_EMAIL).await.unwrap_err();
    assert_eq!(wrong.code(), Some("invalid_input"));
    assert_eq!(user.me().get().await.unwrap().email, email);

    // A sign-in older than ten minutes: refused; a fresh one erases.
    clock.advance(time::Duration::minutes(11));
    let stale = user.me().erase(&email).await.unwrap_err();
    assert_eq!(stale.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(stale.code(), Some("recent_sign_in_required"));
    let fresh = app.signed_in("acme", &email, PASSWORD).await;
    fresh.me().erase(&email.to_uppercase()).await.unwrap();

    // Gone: the user, their sessions (both tokens refused), their traces; their record kept
    // by the tenant's default policy, now the owner's.
    assert_eq!(
        owner.users().get(id).await.unwrap_err().status(),
        Some(StatusCode::NOT_FOUND)
    );
    for session in [&user, &fresh] {
        let refused = session.me().get().await.unwrap_err();
        assert_eq!(refused.status(), Some(StatusCode::UNAUTHORIZED));
    }
    let db = app.superuser().await;
    assert_eq!(traces(&db, &email).await, [0, 0, 0]);
    let kept = owner.records("notes").get(record.id).await.unwrap();
    assert_eq!(kept.data["text"], "mine");
    let me = owner.me().get().await.unwrap();
    assert_eq!(kept.owner_id, Some(me.id), "the owner keeps the record");
}

#[tokio::test]
async fn the_last_owner_cannot_erase_themselves() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let refused = owner.me().erase(OWNER_EMAIL).await.unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::CONFLICT));
    assert_eq!(refused.code(), Some("last_owner"));
    assert_eq!(owner.me().get().await.unwrap().email, OWNER_EMAIL);
}

#[tokio::test]
async fn a_user_renames_themselves_within_the_rules() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let renamed = owner.me().rename("  Ada Lovelace  ").await.unwrap();
    assert_eq!(renamed.display_name, "Ada Lovelace");
    for bad in ["", "   ", "tab\there", &"x".repeat(201)] {
        let refused = owner.me().rename(bad).await.unwrap_err();
        assert_eq!(refused.code(), Some("invalid_input"), "{bad:?}");
    }
    assert_eq!(owner.me().get().await.unwrap().display_name, "Ada Lovelace");
}
