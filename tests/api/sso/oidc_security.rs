//! What an OIDC sign-in must refuse: wrong or replayed `state`, a replayed code, ID tokens for
//! another audience or from another issuer, with another nonce, expired or signed by a key the
//! provider does not publish, and one tenant's sign-in finished at another tenant.

use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::TestApp;

use super::*;

fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(key, old)| {
            let new = if key == name {
                value.to_owned()
            } else {
                old.into_owned()
            };
            (key.into_owned(), new)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

#[tokio::test]
async fn a_callback_state_works_once_and_only_as_issued() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-state", &idp_address("owner"))
        .await;
    oidc_provider("sso-state", &admin, "corp", json!({})).await;
    let login = idp_address("eve");
    let browser = Browser::new(&app);
    let authorize = browser.start("sso-state", "corp").await;
    let callback = browser
        .sign_in_at_oidc_provider(&authorize, &login, &tenant_base("sso-state"))
        .await;

    // A state we never issued, and none at all.
    let forged = with_query_param(&callback, "state", "forged-state-value");
    let reply = browser.follow_to_tenant("sso-state", &forged).await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_sso_state")
    );
    let reply = browser
        .tenant_get("sso-state", "/v1/auth/sso/corp/callback?code=abc")
        .await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_sso_state")
    );
    assert_eq!(
        app.count_in("sso-state", &format!("users WHERE email = '{login}'"))
            .await,
        0
    );

    // The real one works once…
    let first = browser.follow_to_tenant("sso-state", &callback).await;
    assert_eq!(first.status(), StatusCode::OK, "{}", first.text());
    // …and the same callback again (a replay of state and code) is refused.
    let reply = browser.follow_to_tenant("sso-state", &callback).await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_sso_state")
    );

    // The spent code with a fresh, valid state: the IdP refuses the code (used, and PKCE
    // bound to another verifier), so the sign-in fails.
    let fresh_authorize = browser.start("sso-state", "corp").await;
    let fresh_callback = browser
        .sign_in_at_oidc_provider(&fresh_authorize, &login, &tenant_base("sso-state"))
        .await;
    let old_code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == "code")
        .unwrap()
        .1
        .into_owned();
    let replayed_code = with_query_param(&fresh_callback, "code", &old_code);
    let reply = browser.follow_to_tenant("sso-state", &replayed_code).await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::UNAUTHORIZED, "sso_rejected")
    );
    assert!(
        app.count_in(
            "sso-state",
            "login_attempts WHERE method = 'oidc' AND outcome = 'invalid_state'"
        )
        .await
            >= 2
    );
}

#[tokio::test]
async fn id_tokens_that_fail_any_check_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-idtoken", &idp_address("owner"))
        .await;
    let client = oidc_provider("sso-idtoken", &admin, "corp", json!({})).await;
    let idp = OidcProvider::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cases = [
        ("another audience", json!({"aud": "someone-else"}), false),
        (
            "another issuer",
            json!({"iss": "http://127.0.0.1:1/evil"}),
            false,
        ),
        (
            "another nonce",
            json!({"nonce": "not-the-nonce-we-sent"}),
            false,
        ),
        (
            "expired",
            json!({"exp": now - 600, "iat": now - 1200}),
            false,
        ),
        ("signed by another key", json!({}), true),
    ];
    for (case, claims, foreign_key) in cases {
        let login = idp_address("mallory");
        idp.tamper(&client.client_id, claims, foreign_key).await;
        let reply = oidc_sign_in(&app, "sso-idtoken", "corp", &login).await;
        assert_eq!(
            reply.error_code(),
            (StatusCode::UNAUTHORIZED, "sso_rejected"),
            "an ID token with {case} was not refused"
        );
        assert_eq!(
            app.count_in("sso-idtoken", &format!("users WHERE email = '{login}'"))
                .await,
            0,
            "{case} created a user"
        );
    }
    // The same flow without tampering succeeds: the refusals were the checks, not the setup.
    let reply = oidc_sign_in(&app, "sso-idtoken", "corp", &idp_address("alice")).await;
    assert_eq!(reply.status(), StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn a_sign_in_started_at_one_tenant_cannot_finish_at_another() {
    let app = TestApp::spawn().await;
    let admin_a = app
        .tenant_with_admin("sso-tenant-a", &idp_address("owner"))
        .await;
    let admin_b = app
        .tenant_with_admin("sso-tenant-b", &idp_address("owner"))
        .await;
    oidc_provider("sso-tenant-a", &admin_a, "corp", json!({})).await;
    oidc_provider("sso-tenant-b", &admin_b, "corp", json!({})).await;
    let login = idp_address("trudy");
    let browser = Browser::new(&app);
    let authorize = browser.start("sso-tenant-a", "corp").await;
    let callback = browser
        .sign_in_at_oidc_provider(&authorize, &login, &tenant_base("sso-tenant-a"))
        .await;

    // Tenant A's callback, delivered to tenant B's provider of the same name.
    let path = callback.strip_prefix(&tenant_base("sso-tenant-a")).unwrap();
    let reply = browser.tenant_get("sso-tenant-b", path).await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_sso_state")
    );
    assert_eq!(
        app.count_in("sso-tenant-b", &format!("users WHERE email = '{login}'"))
            .await,
        0
    );

    // At A it still works: B's refusal spent nothing of A's.
    let signed_in = browser.follow_to_tenant("sso-tenant-a", &callback).await;
    // A's token is not accepted at B.
    let tokens = tokens_of(&signed_in);
    let at_b = app
        .as_bearer("sso-tenant-b", tokens.access_token.expose())
        .get("/v1/me")
        .send()
        .await
        .unwrap();
    assert_eq!(at_b.status(), StatusCode::UNAUTHORIZED);
}
