//! Tenant settings: the auth policy (validated, applied to the next sign-in and password
//! change) and signing-key rotation seen by every node.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{TestApp, TestOptions};

use crate::users_admin::{
    access, call, call_on, error_code, tenant_with_owner, OWNER_EMAIL, PASSWORD,
};

const POLICY: &str = "/v1/settings/auth-policy";

async fn policy(app: &TestApp, token: &str) -> Value {
    let response = call(app, Method::GET, "acme", POLICY, token, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_invalid_policy_is_refused_unchanged_and_a_valid_one_rules_the_next_password_change() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let before = policy(&app, &owner).await;
    assert_eq!(before["password"]["min_length"], 12);

    for (invalid, reason) in [
        (json!({"password": {"min_length": 4}}), "min_length"),
        (json!({"lockout": {"max_failures": 0}}), "max_failures"),
        (json!({"password": {"min_lenght": 16}}), "unknown field"),
        (json!({"mfa": "sometimes"}), "unknown variant"),
        (json!({"self_signup": "yes"}), "invalid type"),
    ] {
        let response = call(
            &app,
            Method::PUT,
            "acme",
            POLICY,
            &owner,
            Some(invalid.clone()),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{invalid}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_policy");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{body}"
        );
    }
    assert_eq!(policy(&app, &owner).await, before);

    let mut stricter = before.clone();
    stricter["password"]["min_length"] = json!(20);
    stricter["password"]["require_digit"] = json!(true);
    stricter["password"]["require_uppercase"] = json!(true);
    let saved = call(
        &app,
        Method::PUT,
        "acme",
        POLICY,
        &owner,
        Some(stricter.clone()),
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);
    assert_eq!(policy(&app, &owner).await, stricter);

    // A password the old policy accepted fails the new one, with every broken rule listed.
    let change = |new: &str| {
        call(
            &app,
            Method::POST,
            "acme",
            "/v1/me/password",
            &owner,
            Some(json!({"current_password": PASSWORD, "new_password": new})),
        )
    };
    let refused = change("a long passphrase without").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "password_policy");
    let rules = body["error"]["details"]["failed_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{body}");
    assert!(rules.contains(&json!("must contain a digit")));
    assert!(rules.contains(&json!("must contain an uppercase letter")));
    assert_eq!(
        change("A long passphrase with 1 digit").await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_policy_requiring_mfa_restricts_the_next_sign_in_and_the_guard_refuses_it() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let saved = call(
        &app,
        Method::PUT,
        "acme",
        POLICY,
        &owner,
        Some(json!({"mfa": "admins"})),
    )
    .await;
    assert_eq!(saved.status(), StatusCode::OK);

    let restricted = access(&app.sign_in("acme", OWNER_EMAIL, PASSWORD).await);
    for (method, path) in [
        (Method::GET, "/v1/admin/users"),
        (Method::GET, POLICY),
        (Method::POST, "/v1/settings/signing-keys/rotate"),
    ] {
        let response = call(&app, method, "acme", path, &restricted, None).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::FORBIDDEN, "mfa_enrollment_required".to_owned()),
            "{path}"
        );
    }
    // The session from before the change is unrestricted and may undo it.
    let undone = call(&app, Method::PUT, "acme", POLICY, &owner, Some(json!({}))).await;
    assert_eq!(undone.status(), StatusCode::OK);
    let free = access(&app.sign_in("acme", OWNER_EMAIL, PASSWORD).await);
    let listed = call(&app, Method::GET, "acme", "/v1/admin/users", &free, None).await;
    assert_eq!(listed.status(), StatusCode::OK);
}

fn kid(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn published_kids(app: &TestApp, url: &str) -> Vec<String> {
    published_kids_of(app, url, "acme").await
}

async fn published_kids_of(app: &TestApp, url: &str, slug: &str) -> Vec<String> {
    let jwks: Value = app
        .http
        .get(format!("{url}/v1/.well-known/jwks.json"))
        .header("X-Tenant", slug)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

#[tokio::test]
async fn rotation_publishes_a_new_key_on_every_node_and_old_tokens_keep_working() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let old_kid = kid(&owner);
    let globex = tenant_with_owner(&app, "globex").await;
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    // Both nodes have the old keys cached.
    assert_eq!(published_kids(&app, &second).await, vec![old_kid.clone()]);
    let me = call_on(&app, &second, Method::GET, "acme", "/v1/me", &owner, None).await;
    assert_eq!(me.status(), StatusCode::OK);

    let rotated = call(
        &app,
        Method::POST,
        "acme",
        "/v1/settings/signing-keys/rotate",
        &owner,
        None,
    )
    .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    assert_eq!(published_kids(&app, &app.data_url).await, both);
    let seen = TestApp::eventually(Duration::from_secs(2), || async {
        published_kids(&app, &second).await == both
    })
    .await;
    assert!(
        seen.is_some(),
        "the second node still publishes the old set"
    );

    // New tokens carry the new kid and are accepted by both nodes; the old token still works.
    let fresh = access(&app.sign_in("acme", OWNER_EMAIL, PASSWORD).await);
    assert_eq!(kid(&fresh), new_kid);
    for url in [app.data_url.as_str(), second.as_str()] {
        for token in [&owner, &fresh] {
            let me = call_on(&app, url, Method::GET, "acme", "/v1/me", token, None).await;
            assert_eq!(me.status(), StatusCode::OK, "{url}");
        }
        // Another tenant's keys are not touched.
        assert_eq!(
            published_kids_of(&app, url, "globex").await,
            vec![kid(&globex)]
        );
    }
}
