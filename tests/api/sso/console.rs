//! SSO from the tenant console: the sign-in page's buttons and email discovery start a
//! sign-in that comes back signed in to the console (OIDC and SAML), only in the browser
//! that started it.

use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::console::Browser as ConsoleBrowser;
use tenantry_tests::TestApp;

use super::{
    idp_address, oidc_provider, saml_provider, tenant_base, tenant_with_admin, Browser,
    OidcProvider, SamlIdp,
};

/// The path of a URL at `slug`'s host.
fn at_tenant(slug: &str, url: &str) -> String {
    url.strip_prefix(&tenant_base(slug))
        .unwrap_or_else(|| panic!("{url} is not at {slug}'s host"))
        .to_owned()
}

#[tokio::test]
async fn an_oidc_sign_in_started_in_the_console_lands_signed_in_only_in_the_browser_that_started_it(
) {
    let app = TestApp::spawn().await;
    let admin = tenant_with_admin(&app, "sso-console", &idp_address("owner")).await;
    oidc_provider("sso-console", &admin, "corp", json!({})).await;
    let login = idp_address("ada");
    OidcProvider::new()
        .set_account(&login, "Ada Lovelace", &[])
        .await;
    let mut browser = ConsoleBrowser::new_for(&app, "sso-console");

    // The sign-in page offers the provider; email discovery finds it too.
    let page = browser.get("/console/sign-in").await;
    assert!(
        page.html
            .contains("href=\"/console/sso/corp?next=/console\""),
        "{}",
        page.html
    );
    assert!(page.html.contains("Continue with Corp SSO"));
    let found = browser
        .submit(
            "/console/sso",
            "/console/sso",
            &[("email", "someone@corp.example")],
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.html);
    assert!(found.html.contains(
        "id=\"continue-sso\" href=\"/console/sso/corp?login_hint=someone%40corp.example"
    ));
    let unknown = browser
        .submit(
            "/console/sso",
            "/console/sso",
            &[("email", "someone@elsewhere.example")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let start = browser
        .get("/console/sso/corp?next=%2Fconsole%2Fsessions")
        .await;
    assert_eq!(start.status, StatusCode::FOUND, "{}", start.html);
    let sso_cookie = start.set_cookie("tenantry_sso").unwrap();
    for part in [
        "HttpOnly",
        "Path=/v1/auth",
        "SameSite=None",
        "Secure",
        "Max-Age=600",
    ] {
        assert!(sso_cookie.contains(part), "{sso_cookie}");
    }
    let idp = Browser::new(&app);
    let callback = idp
        .sign_in_at_oidc_provider(
            start.location().unwrap(),
            &login,
            &tenant_base("sso-console"),
        )
        .await;
    let callback = at_tenant("sso-console", &callback);

    // Delivered in another browser (an attacker's link in a victim's browser): refused.
    let mut other = ConsoleBrowser::new_for(&app, "sso-console");
    other.get("/console/sign-in").await;
    let refused = other.get(&callback).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    assert!(refused.html.contains("sso_other_browser"));
    assert!(!other.cookies.contains_key("tenantry_session"));

    // The transaction is spent by that attempt: the starting browser starts again.
    let start = browser
        .get("/console/sso/corp?next=%2Fconsole%2Fsessions")
        .await;
    let callback = idp
        .sign_in_at_oidc_provider(
            start.location().unwrap(),
            &login,
            &tenant_base("sso-console"),
        )
        .await;
    let landed = browser.get(&at_tenant("sso-console", &callback)).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.html);
    assert_eq!(landed.location(), Some("/console/sessions"));
    assert!(browser.cookies.contains_key("tenantry_session"));
    assert!(
        !browser.cookies.contains_key("tenantry_sso"),
        "the SSO cookie outlived its use"
    );
    let home = browser.get("/console").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.html.contains(&login));
    assert!(home.html.contains("<dd>oidc</dd>"), "{}", home.html);
}

#[tokio::test]
async fn a_saml_sign_in_started_in_the_console_lands_signed_in() {
    let app = TestApp::spawn().await;
    let admin = tenant_with_admin(&app, "saml-console", &idp_address("owner")).await;
    saml_provider(&app, "saml-console", &admin, "okta", json!({})).await;
    let login = idp_address("grace");
    SamlIdp::new()
        .set_account(&login, "Grace Hopper", &[])
        .await;
    let mut browser = ConsoleBrowser::new_for(&app, "saml-console");

    let start = browser.get("/console/sso/okta").await;
    assert_eq!(start.status, StatusCode::FOUND, "{}", start.html);
    let idp = Browser::new(&app);
    let post = idp
        .saml_response_from(start.location().unwrap(), &login, "", "")
        .await;
    let mut form = vec![("SAMLResponse", post.saml_response.as_str())];
    if let Some(relay) = post.relay_state.as_deref() {
        form.push(("RelayState", relay));
    }
    let landed = browser.post_raw("/v1/auth/saml/okta/acs", &form).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.html);
    assert_eq!(landed.location(), Some("/console"));
    let home = browser.get("/console").await;
    assert!(home.html.contains(&login), "{}", home.html);
}
