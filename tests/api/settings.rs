//! Tenant settings: the auth policy (validated, applied to the next sign-in and password
//! change) and signing-key rotation seen by every node.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{Client, TestApp, TestOptions, OWNER_EMAIL, PASSWORD};

const POLICY: &str = "/v1/settings/auth-policy";

#[tokio::test]
async fn an_invalid_policy_is_refused_unchanged_and_a_valid_one_rules_the_next_password_change() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let before = owner.setting("auth-policy").await.unwrap();
    assert_eq!(before["password"]["min_length"], 12);

    for (invalid, reason) in [
        (json!({"password": {"min_length": 4}}), "min_length"),
        (json!({"lockout": {"max_failures": 0}}), "max_failures"),
        (json!({"password": {"min_lenght": 16}}), "unknown field"),
        (json!({"mfa": "sometimes"}), "unknown variant"),
        (json!({"self_signup": "yes"}), "invalid type"),
    ] {
        let answer = owner.put(POLICY).json(&invalid).send().await.unwrap();
        assert_eq!(
            answer.error_code(),
            (StatusCode::BAD_REQUEST, "invalid_policy"),
            "{invalid}"
        );
        let message = &answer.error().unwrap().message;
        assert!(message.contains(reason), "{message}");
    }
    assert_eq!(owner.setting("auth-policy").await.unwrap(), before);

    let mut stricter = before.clone();
    stricter["password"]["min_length"] = json!(20);
    stricter["password"]["require_digit"] = json!(true);
    stricter["password"]["require_uppercase"] = json!(true);
    owner.put_setting("auth-policy", &stricter).await.unwrap();
    assert_eq!(owner.setting("auth-policy").await.unwrap(), stricter);

    // A password the old policy accepted fails the new one, with every broken rule listed.
    let refused = owner
        .me()
        .change_password(PASSWORD, "a long passphrase without")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(refused.code(), Some("password_policy"));
    let details = refused.api().unwrap().details.clone().unwrap_or_default();
    let rules = details["failed_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{details}");
    assert!(rules.contains(&json!("must contain a digit")));
    assert!(rules.contains(&json!("must contain an uppercase letter")));
    let changed = owner
        .post("/v1/me/password")
        .json(&json!({
            "current_password": PASSWORD, "new_password": "A long passphrase with 1 digit",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    // One that passes the rules but is the current password: refused by the history.
    let reused = owner
        .me()
        .change_password(
            "A long passphrase with 1 digit",
            "A long passphrase with 1 digit",
        )
        .await
        .unwrap_err();
    let details = reused.api().unwrap().details.clone().unwrap_or_default();
    assert_eq!(
        details["failed_rules"],
        json!(["must differ from the last 5 passwords"]),
        "{details}"
    );
}

#[tokio::test]
async fn a_policy_requiring_mfa_restricts_the_next_sign_in_and_the_guard_refuses_it() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    owner
        .put_setting("auth-policy", &json!({"mfa": "admins"}))
        .await
        .unwrap();

    let restricted = app.signed_in("acme", OWNER_EMAIL, PASSWORD).await;
    for (method, path) in [
        (Method::GET, "/v1/admin/users"),
        (Method::GET, POLICY),
        (Method::POST, "/v1/settings/signing-keys/rotate"),
    ] {
        assert_eq!(
            restricted
                .call(method, path)
                .send()
                .await
                .unwrap()
                .error_code(),
            (StatusCode::FORBIDDEN, "mfa_enrollment_required"),
            "{path}"
        );
    }
    // The session from before the change is unrestricted and may undo it.
    owner.put_setting("auth-policy", &json!({})).await.unwrap();
    let free = app.signed_in("acme", OWNER_EMAIL, PASSWORD).await;
    let listed = free.get("/v1/admin/users").send().await.unwrap();
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

/// The key ids `tenant` publishes in its JWKS, sorted.
async fn published_kids(tenant: &Client) -> Vec<String> {
    let jwks: Value = tenant.get("/v1/.well-known/jwks.json").ok().await.unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

/// The access token `client` presents now.
async fn access_token(client: &Client) -> String {
    client
        .access_token()
        .await
        .unwrap()
        .unwrap()
        .expose()
        .to_owned()
}

#[tokio::test]
async fn rotation_publishes_a_new_key_on_every_node_and_old_tokens_keep_working() {
    let app = TestApp::spawn().await;
    // The owner's first token, held as it is: it must keep working after the rotation.
    let old_token = access_token(&app.tenant_with_owner("acme").await).await;
    let owner = app.as_bearer("acme", &old_token);
    let old_kid = kid(&old_token);
    let globex_kid = kid(&access_token(&app.tenant_with_owner("globex").await).await);
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    // Both nodes have the old keys cached.
    assert_eq!(
        published_kids(&app.tenant("acme").on(&second)).await,
        vec![old_kid.clone()]
    );
    let me = owner.on(&second).get("/v1/me").send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    let rotated = owner
        .post("/v1/settings/signing-keys/rotate")
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let new_kid = rotated.value()["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    assert_eq!(published_kids(&app.tenant("acme")).await, both);
    let seen = TestApp::eventually(Duration::from_secs(2), || async {
        published_kids(&app.tenant("acme").on(&second)).await == both
    })
    .await;
    assert!(
        seen.is_some(),
        "the second node still publishes the old set"
    );

    // New tokens carry the new kid and are accepted by both nodes; the old token still works.
    let fresh = app
        .sign_in_tokens("acme", OWNER_EMAIL, PASSWORD)
        .await
        .access_token;
    assert_eq!(kid(fresh.expose()), new_kid);
    for url in [app.data_url.as_str(), second.as_str()] {
        for token in [old_token.as_str(), fresh.expose()] {
            let me = app
                .as_bearer("acme", token)
                .on(url)
                .get("/v1/me")
                .send()
                .await
                .unwrap();
            assert_eq!(me.status(), StatusCode::OK, "{url}");
        }
        // Another tenant's keys are not touched.
        assert_eq!(
            published_kids(&app.tenant("globex").on(url)).await,
            vec![globex_kid.clone()]
        );
    }
}
