//! SSO for applications: a sign-in an app starts with its redirect URI and PKCE challenge
//! comes back to the app with a one-time code, never with tokens; only the app's verifier
//! exchanges the code, once, within 60 seconds, for the same redirect URI.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::{Client, TestApp};

use super::{idp_address, oidc_provider, saml_provider, tenant_base, Browser, OidcProvider};

const APP: &str = "https://app.example.com/callback";

/// A PKCE verifier and its S256 challenge, as an app makes them.
fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// `/v1/auth/sso/{provider}/start` as an app calls it.
fn app_start(provider: &str, redirect_uri: &str, challenge: &str, state: &str) -> String {
    let mut url = reqwest::Url::parse("http://start.invalid/").unwrap();
    url.set_path(&format!("/v1/auth/sso/{provider}/start"));
    url.query_pairs_mut()
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", state);
    format!("{}?{}", url.path(), url.query().unwrap())
}

/// The query pair `name` of `url`.
fn query_value(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// An OIDC sign-in an app started, through the provider's pages as `login`: where the
/// browser is sent at the end (the app's redirect URI with the code).
async fn app_oidc_sign_in(
    app: &TestApp,
    slug: &str,
    login: &str,
    redirect_uri: &str,
    challenge: &str,
) -> String {
    let browser = Browser::new(app);
    let start = browser
        .tenant_get(
            slug,
            &app_start("corp", redirect_uri, challenge, "app-state-1"),
        )
        .await;
    assert_eq!(start.status(), StatusCode::FOUND, "{}", start.text());
    let callback = browser
        .sign_in_at_oidc_provider(start.header("location").unwrap(), login, &tenant_base(slug))
        .await;
    let landed = browser.follow_to_tenant(slug, &callback).await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER, "{}", landed.text());
    assert_eq!(landed.header("cache-control"), Some("no-store"));
    assert!(
        landed.text().is_empty(),
        "no tokens in the answer: {}",
        landed.text()
    );
    landed.header("location").unwrap().to_owned()
}

async fn allow_app(admin: &Client, uris: &[&str]) {
    admin
        .put_setting("sso-redirects", &json!({ "redirect_uris": uris }))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_app_gets_a_one_time_code_that_only_its_verifier_exchanges_once() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-apps", &idp_address("owner"))
        .await;
    oidc_provider("sso-apps", &admin, "corp", json!({})).await;
    allow_app(&admin, &[APP]).await;
    let login = idp_address("ada");
    OidcProvider::new()
        .set_account(&login, "Ada App", &[])
        .await;
    let acme = app.tenant("sso-apps");

    // The code comes to the app's redirect URI with the app's state; no session yet.
    let sessions_before = app.count_in("sso-apps", "sessions").await;
    let (verifier, challenge) = pkce();
    let landed = app_oidc_sign_in(&app, "sso-apps", &login, APP, &challenge).await;
    assert!(landed.starts_with(&format!("{APP}?code=")), "{landed}");
    assert_eq!(
        query_value(&landed, "state").as_deref(),
        Some("app-state-1")
    );
    let code = query_value(&landed, "code").unwrap();
    assert_eq!(app.count_in("sso-apps", "sessions").await, sessions_before);

    // Another verifier: refused, and the code is spent by the attempt.
    let (other_verifier, _) = pkce();
    let wrong = acme
        .auth()
        .exchange_sso_code(&code, &other_verifier, APP)
        .await
        .unwrap_err();
    assert_eq!(wrong.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(wrong.code(), Some("invalid_grant"));
    let spent = acme
        .auth()
        .exchange_sso_code(&code, &verifier, APP)
        .await
        .unwrap_err();
    assert_eq!(spent.code(), Some("invalid_grant"));

    // Another redirect URI than the start's: refused.
    let (verifier, challenge) = pkce();
    let landed = app_oidc_sign_in(&app, "sso-apps", &login, APP, &challenge).await;
    let code = query_value(&landed, "code").unwrap();
    let elsewhere = acme
        .auth()
        .exchange_sso_code(&code, &verifier, "https://app.example.com/other")
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Some("invalid_grant"));

    // The app's own verifier: the tokens of an SSO session, once.
    let (verifier, challenge) = pkce();
    let landed = app_oidc_sign_in(&app, "sso-apps", &login, APP, &challenge).await;
    let code = query_value(&landed, "code").unwrap();
    // Stored only as its SHA-256, and deleted by the exchange.
    let stored =
        format!("sso_handoff_codes WHERE code_digest = sha256(convert_to('{code}', 'UTF8'))");
    assert_eq!(app.count_in("sso-apps", &stored).await, 1);
    let tokens = acme
        .auth()
        .exchange_sso_code(&code, &verifier, APP)
        .await
        .unwrap();
    assert_eq!(app.count_in("sso-apps", &stored).await, 0);
    let me = acme.with_tokens(tokens.clone()).me().get().await.unwrap();
    assert_eq!(me.email, login);
    let claims = super::claims(tokens.access_token.expose());
    assert_eq!(claims["amr"], json!(["oidc"]), "{claims}");
    assert_eq!(claims["idp"], "corp", "{claims}");
    let again = acme
        .auth()
        .exchange_sso_code(&code, &verifier, APP)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("invalid_grant"));
}

#[tokio::test]
async fn an_app_start_must_name_an_allowed_redirect_uri_and_an_s256_challenge() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-app-starts", &idp_address("owner"))
        .await;
    oidc_provider("sso-app-starts", &admin, "corp", json!({})).await;
    allow_app(&admin, &[APP, "http://127.0.0.1/callback"]).await;
    let browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let before = app
        .count_in("sso-app-starts", "sso_login_transactions")
        .await;

    let mut refused = vec![
        app_start("corp", "https://evil.example/callback", &challenge, "s"),
        app_start(
            "corp",
            "https://app.example.com/callback/more",
            &challenge,
            "s",
        ),
        app_start("corp", "http://app.example.com/callback", &challenge, "s"),
        app_start("corp", APP, "too-short", "s"),
        format!("/v1/auth/sso/corp/start?redirect_uri={APP}"),
        format!("/v1/auth/sso/corp/start?code_challenge={challenge}&code_challenge_method=S256"),
    ];
    refused.push(
        app_start("corp", APP, &challenge, "s")
            .replace("code_challenge_method=S256", "code_challenge_method=plain"),
    );
    for start in refused {
        let answer = browser.tenant_get("sso-app-starts", &start).await;
        assert_eq!(
            answer.status(),
            StatusCode::BAD_REQUEST,
            "{start}: {}",
            answer.text()
        );
        assert_eq!(answer.code(), Some("invalid_app_return"), "{start}");
    }
    assert_eq!(
        app.count_in("sso-app-starts", "sso_login_transactions")
            .await,
        before,
        "a refused start leaves no transaction"
    );

    // A native app on loopback: any port the system gave it.
    let native = browser
        .tenant_get(
            "sso-app-starts",
            &app_start("corp", "http://127.0.0.1:49152/callback", &challenge, "s"),
        )
        .await;
    assert_eq!(native.status(), StatusCode::FOUND, "{}", native.text());
}

#[tokio::test]
async fn the_redirect_allow_list_takes_only_safe_uris_and_only_from_settings_managers() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-app-list", &idp_address("owner"))
        .await;
    let saved = admin
        .put_setting(
            "sso-redirects",
            &json!({ "redirect_uris": [APP, "com.example.app:/oauth", APP] }),
        )
        .await
        .unwrap();
    // Normalised: sorted, without duplicates.
    assert_eq!(
        saved,
        json!({ "redirect_uris": ["com.example.app:/oauth", APP] })
    );
    for bad in [
        json!({ "redirect_uris": ["http://app.example.com/cb"] }),
        json!({ "redirect_uris": ["https://app.example.com/cb#frag"] }),
        json!({ "redirect_uris": ["javascript:alert(1)"] }),
        json!({ "redirect_uris": [APP], "extra": true }),
        json!({ "redirect_uris": (0..21).map(|n| format!("https://app{n}.example.com/cb")).collect::<Vec<_>>() }),
    ] {
        let refused = admin.put_setting("sso-redirects", &bad).await.unwrap_err();
        assert_eq!(refused.status(), Some(StatusCode::BAD_REQUEST), "{bad}");
    }
    assert_eq!(
        admin.setting("sso-redirects").await.unwrap(),
        saved,
        "nothing changed"
    );

    // A member (signed in by SSO, default role member) may not change it.
    oidc_provider("sso-app-list", &admin, "corp", json!({})).await;
    let signed_in = super::oidc_sign_in(&app, "sso-app-list", "corp", &idp_address("member")).await;
    let member = super::session_of(&app, "sso-app-list", &signed_in);
    let forbidden = member
        .put_setting("sso-redirects", &json!({ "redirect_uris": [] }))
        .await
        .unwrap_err();
    assert_eq!(forbidden.status(), Some(StatusCode::FORBIDDEN));
}

#[tokio::test]
async fn a_saml_sign_in_an_app_started_posts_through_to_the_app_with_a_code() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-app-saml", &idp_address("owner"))
        .await;
    saml_provider(&app, "sso-app-saml", &admin, "adfs", json!({})).await;
    allow_app(&admin, &[APP]).await;
    let login = idp_address("sam");
    super::SamlIdp::new()
        .set_account(&login, "Sam App", &[])
        .await;
    let browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let start = browser
        .tenant_get(
            "sso-app-saml",
            &app_start("adfs", APP, &challenge, "saml-state"),
        )
        .await;
    assert_eq!(start.status(), StatusCode::FOUND, "{}", start.text());
    let post = browser
        .saml_response_from(start.header("location").unwrap(), &login, "", "")
        .await;
    let landed = browser
        .post_to_acs("sso-app-saml", "adfs", &post, true)
        .await;
    assert_eq!(landed.status(), StatusCode::SEE_OTHER, "{}", landed.text());
    let location = landed.header("location").unwrap().to_owned();
    assert_eq!(
        query_value(&location, "state").as_deref(),
        Some("saml-state")
    );
    let code = query_value(&location, "code").unwrap();
    let tokens = app
        .tenant("sso-app-saml")
        .auth()
        .exchange_sso_code(&code, &verifier, APP)
        .await
        .unwrap();
    assert_eq!(
        super::claims(tokens.access_token.expose())["amr"],
        json!(["saml"])
    );
}

#[tokio::test]
async fn a_code_not_exchanged_within_60_seconds_is_worthless() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let admin = app
        .tenant_with_admin("sso-app-late", &idp_address("owner"))
        .await;
    oidc_provider("sso-app-late", &admin, "corp", json!({})).await;
    allow_app(&admin, &[APP]).await;
    let login = idp_address("late");
    OidcProvider::new()
        .set_account(&login, "Lee Late", &[])
        .await;
    let (verifier, challenge) = pkce();
    let landed = app_oidc_sign_in(&app, "sso-app-late", &login, APP, &challenge).await;
    let code = query_value(&landed, "code").unwrap();
    clock.advance(time::Duration::seconds(61));
    let late = app
        .tenant("sso-app-late")
        .auth()
        .exchange_sso_code(&code, &verifier, APP)
        .await
        .unwrap_err();
    assert_eq!(late.code(), Some("invalid_grant"));
}
