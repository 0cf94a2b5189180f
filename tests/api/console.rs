//! The tenant console as a browser meets it, over plain HTTP (`tenantry_tests::console`):
//! cookie sessions backed by the tenant's sessions, CSRF tokens on every form, the content
//! security policy, escaping, tenant isolation of cookies, and the pages our mails link to.
//! The same flows in a real browser are in `console_browser`.

use std::time::Duration;

use reqwest::StatusCode;
use tenantry_tests::console::Browser;
use tenantry_tests::{unique_address, TestApp, OWNER_EMAIL, PASSWORD};

use tenantry_tests::totp::{oathtool, STEP};

const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                      form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A browser signed in to `slug`'s console as its owner.
async fn signed_in_owner(app: &TestApp, slug: &str) -> Browser {
    let mut browser = app.browser(slug);
    let landed = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.html);
    assert_eq!(landed.location(), Some("/console"));
    browser
}

#[tokio::test]
async fn a_browser_signs_in_with_a_password_and_its_cookie_is_its_session_until_sign_out() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let mut browser = app.browser("acme");

    // Signed out, every page but the sign-in ones leads to sign-in, and back afterwards.
    let home = browser.get("/console").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), Some("/console/sign-in"));
    // The first answer, a redirect, already gives the browser its CSRF cookie.
    let csrf_cookie = home.set_cookie("tenantry_csrf").expect("a CSRF cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/console"] {
        assert!(csrf_cookie.contains(part), "{csrf_cookie}");
    }
    // Host-only, and `Secure`: the tests' public scheme is https (plain http leaves it out:
    // unit test in `console::cookies`).
    assert!(!csrf_cookie.contains("Domain"), "{csrf_cookie}");
    assert!(csrf_cookie.contains("Secure"), "{csrf_cookie}");
    let sessions = browser.get("/console/sessions").await;
    assert_eq!(
        sessions.location(),
        Some("/console/sign-in?next=%2Fconsole%2Fsessions")
    );

    let form = browser.get("/console/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(
        form.headers["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
    assert_eq!(form.headers["content-security-policy"], POLICY);
    assert_eq!(form.headers["x-frame-options"], "DENY");
    assert!(
        form.set_cookie("tenantry_csrf").is_none(),
        "a second CSRF cookie"
    );
    assert!(form.html.contains("<label for=\"email\">Email</label>"));

    // A wrong password: the form again, with the message, and no session cookie.
    let csrf_before = browser.cookies["tenantry_csrf"].clone();
    let refused = browser
        .submit(
            "/console/sign-in",
            "/console/sign-in",
            &[("email", OWNER_EMAIL), ("password", "not the password")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.html.contains("invalid email or password"),
        "{}",
        refused.html
    );
    assert!(refused.html.contains(&format!("value=\"{OWNER_EMAIL}\"")));
    assert!(!browser.cookies.contains_key("tenantry_session"));

    let landed = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER);
    let session_cookie = landed.set_cookie("tenantry_session").unwrap();
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    assert_ne!(
        browser.cookies["tenantry_csrf"], csrf_before,
        "a new CSRF cookie at sign-in"
    );
    let home = browser.get("/console").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.html.contains(OWNER_EMAIL), "{}", home.html);

    // The cookie is a credential for the console only: the API does not read it.
    let api = reqwest::Client::new()
        .get(format!("{}/v1/me", app.data_url))
        .header("X-Tenant", "acme")
        .header(
            "Cookie",
            format!("tenantry_session={}", browser.cookies["tenantry_session"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);

    // The console's session is one of the user's sessions, as the API lists them.
    let listed = owner.me().sessions().await.unwrap();
    assert_eq!(listed.len(), 2, "the API client's and the browser's");
    let sessions = browser.get("/console/sessions").await;
    assert!(sessions.html.contains("this browser"));

    // Signing out ends the session itself, not only the cookie.
    let cookie = browser.cookies["tenantry_session"].clone();
    let out = browser.submit("/console", "/console/sign-out", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), Some("/console/sign-in"));
    assert!(!browser.cookies.contains_key("tenantry_session"));
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);
    browser
        .cookies
        .insert("tenantry_session".to_owned(), cookie);
    assert_eq!(
        browser.get("/console").await.status,
        StatusCode::SEE_OTHER,
        "the old cookie still worked after sign-out"
    );
    assert_eq!(owner.me().sessions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_form_without_the_csrf_token_of_its_cookie_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let mut browser = signed_in_owner(&app, "acme").await;
    let mut other = signed_in_owner(&app, "acme").await;
    let sessions = owner.me().sessions().await.unwrap().len();

    let other_token = other.get("/console").await.csrf().unwrap();
    for token in ["", "forged", other_token.as_str()] {
        let refused = browser
            .post_raw("/console/sign-out", &[("csrf", token)])
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "token {token:?}");
        assert!(
            refused.html.contains("csrf_token_invalid"),
            "{}",
            refused.html
        );
        assert_eq!(refused.headers["content-security-policy"], POLICY);
    }
    assert_eq!(browser.get("/console").await.status, StatusCode::OK);
    assert_eq!(owner.me().sessions().await.unwrap().len(), sessions);

    // A browser that never loaded a page has no CSRF cookie: its sign-in is not attempted.
    let mut fresh = app.browser("acme");
    let refused = fresh
        .post_raw(
            "/console/sign-in",
            &[
                ("email", OWNER_EMAIL),
                ("password", PASSWORD),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!fresh.cookies.contains_key("tenantry_session"));
    assert_eq!(owner.me().sessions().await.unwrap().len(), sessions);
}

#[tokio::test]
async fn a_console_cookie_is_worthless_on_another_tenants_host_and_dies_with_its_session() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.tenant_with_owner("globex").await;
    let mut browser = signed_in_owner(&app, "acme").await;

    let elsewhere = browser.on_tenant("globex").get("/console").await;
    assert_eq!(elsewhere.status, StatusCode::SEE_OTHER);
    assert_eq!(elsewhere.location(), Some("/console/sign-in"));

    // Ended from the API (another device): the browser is signed out at its next page.
    let console_session = owner
        .me()
        .sessions()
        .await
        .unwrap()
        .into_iter()
        .find(|session| !session.current)
        .unwrap();
    owner.me().end_session(console_session.id).await.unwrap();
    assert_eq!(browser.get("/console").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_up_follows_the_mailed_link_and_pages_escape_what_users_typed() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.allow_self_signup("acme").await;
    let email = unique_address("newcomer");
    let name = "<script>alert(1)</script> & co";
    let mut browser = app.browser("acme");

    let weak = browser
        .submit(
            "/console/sign-up",
            "/console/sign-up",
            &[
                ("display_name", name),
                ("email", &email),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.html.contains("id=\"password-error\""), "{}", weak.html);
    assert!(
        !weak.html.contains("<script>"),
        "the name came back unescaped"
    );
    assert_eq!(app.queued_mails("acme", &email).await, 0, "half a sign-up");

    let accepted = browser
        .submit(
            "/console/sign-up",
            "/console/sign-up",
            &[
                ("display_name", name),
                ("email", &email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.html);
    let mail = app
        .wait_for_mail(&email, Duration::from_secs(20))
        .await
        .remove(0);
    let token = tenantry_tests::mailed_token(&mail, "acme", "/console/verify-email");

    // The link's page does nothing by itself (mail scanners open links); its button does.
    let link = format!("/console/verify-email?token={token}");
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        browser.sign_in(&email, PASSWORD).await.status,
        StatusCode::FORBIDDEN,
        "signed in before the address was confirmed"
    );
    let confirmed = browser
        .submit(&link, "/console/verify-email", &[("token", &token)])
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.html);
    assert!(confirmed.html.contains("Address confirmed"));
    let again = browser
        .submit(&link, "/console/verify-email", &[("token", &token)])
        .await;
    assert_eq!(
        again.status,
        StatusCode::BAD_REQUEST,
        "a spent link worked twice"
    );

    assert_eq!(
        browser.sign_in(&email, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let home = browser.get("/console").await;
    assert!(
        home.html
            .contains("<h1>&#60;script&#62;alert(1)&#60;/script&#62; &#38; co</h1>"),
        "{}",
        home.html
    );
    assert!(!home.html.contains("<script>"));
}

#[tokio::test]
async fn a_user_enrols_totp_in_the_console_and_then_signs_in_with_a_code() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    app.tenant_with_owner("acme").await;
    let mut browser = signed_in_owner(&app, "acme").await;

    let setup = browser
        .submit("/console/mfa", "/console/mfa/setup", &[])
        .await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.html);
    assert!(setup.html.contains("src=\"data:image/svg+xml;base64,"));
    let marker = "<code id=\"totp-secret\">";
    let start = setup.html.find(marker).unwrap() + marker.len();
    let secret = setup.html[start..start + setup.html[start..].find('<').unwrap()].to_owned();

    let wrong = browser
        .post_raw(
            "/console/mfa/enable",
            &[("code", "000000"), ("csrf", &setup.csrf().unwrap())],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.html);
    let enabled = browser
        .post_raw(
            "/console/mfa/enable",
            &[
                ("code", &oathtool(&secret, clock.now())),
                ("csrf", &setup.csrf().unwrap()),
            ],
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.html);
    assert_eq!(
        enabled.html.matches("<li><code>").count(),
        10,
        "{}",
        enabled.html
    );
    assert!(browser.get("/console").await.html.contains(">on<"));

    browser.submit("/console", "/console/sign-out", &[]).await;
    clock.advance(STEP * 2);
    let challenged = browser.sign_in(OWNER_EMAIL, PASSWORD).await;
    assert_eq!(challenged.status, StatusCode::SEE_OTHER);
    assert!(challenged
        .location()
        .unwrap()
        .starts_with("/console/sign-in/mfa"));
    assert!(!browser.cookies.contains_key("tenantry_session"));
    let refused = browser
        .submit(
            "/console/sign-in/mfa",
            "/console/sign-in/mfa",
            &[("code", "123456")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.html);
    assert!(!browser.cookies.contains_key("tenantry_session"));
    let code = oathtool(&secret, clock.now());
    let landed = browser
        .submit(
            "/console/sign-in/mfa",
            "/console/sign-in/mfa",
            &[("code", &code)],
        )
        .await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.html);
    assert!(browser.cookies.contains_key("tenantry_session"));
    assert!(!browser.cookies.contains_key("tenantry_mfa"));
    assert_eq!(browser.get("/console").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_suspended_tenants_console_says_so() {
    let app = TestApp::spawn().await;
    app.tenant_with_owner("acme").await;
    let mut browser = app.browser("acme");
    assert_eq!(browser.get("/console/sign-in").await.status, StatusCode::OK);
    app.operator_api()
        .tenants()
        .update(
            "acme",
            &tenantry_tests::client::TenantPatch {
                status: Some("suspended".to_owned()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let refused = TestApp::eventually(Duration::from_secs(5), || {
        let mut browser = browser.clone();
        async move { browser.get("/console/sign-in").await.status == StatusCode::FORBIDDEN }
    })
    .await;
    assert!(refused.is_some(), "the suspension did not reach the node");
    let page = browser.get("/console/sign-in").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.html.contains("This account is suspended"),
        "{}",
        page.html
    );
    assert_eq!(page.headers["content-security-policy"], POLICY);
}
