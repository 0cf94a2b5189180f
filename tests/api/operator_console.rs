//! The operator console on the control plane, over plain HTTP: operator accounts sign in
//! (tokens do not open pages, cookies do not open the API), tenants are found by slug or name
//! a page at a time, created with their first admin invited, suspended (the tenant's own
//! console then says so), given quotas, and deleted only after their slug is typed.

use std::time::Duration;

use reqwest::StatusCode;
use shared::email::Email;
use tenantry_tests::console::{Browser, OPERATOR, OPERATOR_PASSWORD};
use tenantry_tests::{unique_address, TestApp};

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_operator_account_signs_in_and_only_its_cookie_opens_the_console() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let mut anonymous = Browser::on_control_plane(&app);
    let refused = anonymous.get("/console").await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert_eq!(refused.location(), Some("/console/sign-in"));
    control_plane::operators::accounts::add(
        &app.control,
        &Email::parse(OPERATOR).unwrap(),
        zeroize::Zeroizing::new(OPERATOR_PASSWORD.to_owned()),
    )
    .await
    .unwrap();
    for (email, password) in [
        (OPERATOR, "wrong password!!"),
        ("nobody@example.com", OPERATOR_PASSWORD),
    ] {
        let wrong = anonymous.sign_in(email, password).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{email}");
        assert!(wrong
            .html
            .contains("invalid email, password or two-factor code"));
    }
    let landed = anonymous.sign_in(OPERATOR, OPERATOR_PASSWORD).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER);
    let list = anonymous.get("/console").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.html);
    assert!(list.html.contains("href=\"/console/tenants/acme\""));
    assert_eq!(
        list.headers["content-security-policy"],
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );

    // The cookie is no API credential, and an operator token opens no page.
    let api = reqwest_client()
        .get(format!("{}/v1/tenants", app.control_url))
        .header(
            "Cookie",
            format!("tenantry_session={}", anonymous.cookies["tenantry_session"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let token_page = app
        .operator_api()
        .client()
        .get("/console")
        .send()
        .await
        .unwrap();
    assert_eq!(token_page.status(), StatusCode::SEE_OTHER);

    // Signed out, the same cookie opens nothing.
    let cookie = anonymous.cookies["tenantry_session"].clone();
    anonymous.submit("/console", "/console/sign-out", &[]).await;
    anonymous
        .cookies
        .insert("tenantry_session".to_owned(), cookie);
    assert_eq!(
        anonymous.get("/console").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn tenants_are_searched_by_slug_or_name_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    for slug in ["alpha-one", "alpha-two", "beta"] {
        app.create_tenant(slug).await;
    }
    let mut browser = Browser::operator(&app).await;
    let found = browser.get("/console?q=alpha").await;
    assert!(found.html.contains("/console/tenants/alpha-one"));
    assert!(found.html.contains("/console/tenants/alpha-two"));
    assert!(!found.html.contains("/console/tenants/beta"));
    let after = browser.get("/console?after=alpha-one").await;
    assert!(!after.html.contains("/console/tenants/alpha-one\""));
    assert!(after.html.contains("/console/tenants/beta"));
    // Names match anywhere, case aside; LIKE's wildcards are plain characters.
    let by_name = browser.get("/console?q=BETA%20DISPLAY").await;
    assert!(
        by_name.html.contains("/console/tenants/beta"),
        "{}",
        by_name.html
    );
    let wildcard = browser.get("/console?q=%25").await;
    assert!(
        wildcard.html.contains("No tenant matches."),
        "{}",
        wildcard.html
    );
}

#[tokio::test]
async fn an_operator_creates_suspends_limits_and_deletes_a_tenant_from_the_console() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::operator(&app).await;
    let admin = unique_address("first-admin");

    let bad = browser
        .submit(
            "/console/tenants/new",
            "/console/tenants",
            &[("slug", "Not A Slug")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
    assert!(bad.html.contains("id=\"tenant-error\""));

    let created = browser
        .submit(
            "/console/tenants/new",
            "/console/tenants",
            &[
                ("slug", "initech"),
                ("name", "Initech"),
                ("admin_email", &admin),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    assert_eq!(created.location(), Some("/console/tenants/initech"));
    assert_eq!(app.tenant_status("initech").await, "active");
    let mails = app.wait_for_mail(&admin, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "the first admin's invitation");

    // Suspended: the tenant's own console says so.
    let mut tenant_browser = app.browser("initech");
    assert_eq!(
        tenant_browser.get("/console/sign-in").await.status,
        StatusCode::OK
    );
    let suspended = browser
        .submit(
            "/console/tenants/initech",
            "/console/tenants/initech/status",
            &[("status", "suspended")],
        )
        .await;
    assert_eq!(
        suspended.status,
        StatusCode::SEE_OTHER,
        "{}",
        suspended.html
    );
    assert_eq!(app.tenant_status("initech").await, "suspended");
    let shown = TestApp::eventually(Duration::from_secs(5), || {
        let mut tenant_browser = tenant_browser.clone();
        async move { tenant_browser.get("/console/sign-in").await.status == StatusCode::FORBIDDEN }
    })
    .await;
    assert!(shown.is_some(), "the tenant's console still served");
    assert!(tenant_browser
        .get("/console/sign-in")
        .await
        .html
        .contains("This account is suspended"));

    // Quotas: a number is kept, a word is refused, empty means the plan's.
    let refused = browser
        .submit(
            "/console/tenants/initech",
            "/console/tenants/initech/quotas",
            &[("max_users", "seven")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let saved = browser
        .submit(
            "/console/tenants/initech",
            "/console/tenants/initech/quotas",
            &[("max_users", "7")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let quotas = app
        .operator_api()
        .tenants()
        .quotas("initech")
        .await
        .unwrap();
    assert_eq!(quotas["overrides"]["max_users"], 7, "{quotas}");

    // Deleting needs the slug typed.
    let kept = browser
        .submit(
            "/console/tenants/initech",
            "/console/tenants/initech/delete",
            &[("confirm", "initec")],
        )
        .await;
    assert_eq!(kept.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.tenant_status("initech").await, "suspended");
    let deleted = browser
        .submit(
            "/console/tenants/initech",
            "/console/tenants/initech/delete",
            &[("confirm", "initech")],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.html);
    assert_eq!(
        browser.get("/console/tenants/initech").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_operator_turns_on_two_factor_and_then_needs_a_fresh_code_to_sign_in() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::operator(&app).await;
    let setup = browser
        .submit("/console/mfa", "/console/mfa/setup", &[])
        .await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.html);
    let marker = "<code id=\"totp-secret\">";
    let start = setup.html.find(marker).unwrap() + marker.len();
    let secret = setup.html[start..start + setup.html[start..].find('<').unwrap()].to_owned();
    // The secret is sealed with the KEK at rest, never stored as it is shown.
    let stored: Vec<u8> = app
        .superuser()
        .await
        .query_one(
            "SELECT totp_secret FROM control.operator_accounts WHERE email = $1",
            &[&OPERATOR],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.len() > 20 + 12, "nonce, ciphertext and tag");

    let now = time::OffsetDateTime::now_utc();
    let wrong = browser
        .post_raw(
            "/console/mfa/enable",
            &[("code", "000000"), ("csrf", &setup.csrf().unwrap())],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let enabled = browser
        .post_raw(
            "/console/mfa/enable",
            &[
                ("code", &tenantry_tests::totp::oathtool(&secret, now)),
                ("csrf", &setup.csrf().unwrap()),
            ],
        )
        .await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER, "{}", enabled.html);
    assert!(browser
        .get("/console/mfa")
        .await
        .html
        .contains("On: signing in asks"));

    let mut other = Browser::on_control_plane(&app);
    let without = other.sign_in(OPERATOR, OPERATOR_PASSWORD).await;
    assert_eq!(without.status, StatusCode::UNAUTHORIZED, "a password alone");
    // The enabling code's step is spent; the next step's code (within the skew) signs in once.
    let next = tenantry_tests::totp::oathtool(&secret, now + time::Duration::seconds(30));
    let fields = [
        ("email", OPERATOR),
        ("password", OPERATOR_PASSWORD),
        ("code", next.as_str()),
    ];
    let signed_in = other
        .submit("/console/sign-in", "/console/sign-in", &fields)
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.html
    );
    let mut third = Browser::on_control_plane(&app);
    let replayed = third
        .submit("/console/sign-in", "/console/sign-in", &fields)
        .await;
    assert_eq!(
        replayed.status,
        StatusCode::UNAUTHORIZED,
        "a code used twice"
    );
}

#[tokio::test]
async fn an_operator_rolls_the_template_out_from_the_console_and_watches_it_finish() {
    let app = TestApp::spawn().await;
    for slug in ["roll-one", "roll-two", "roll-three"] {
        app.create_tenant(slug).await;
    }
    let latest = shared::template::Template::default_template().latest_version();
    // Three tenants the catalog has one version behind (their schemas are current: the roll
    // finds nothing to apply and records them current).
    app.superuser()
        .await
        .execute(
            "UPDATE control.tenants SET template_version = $1 WHERE slug LIKE 'roll-%'",
            &[&(latest - 1)],
        )
        .await
        .unwrap();
    let mut operator = Browser::operator(&app).await;
    let page = operator.get("/console/templates").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("<dd id=\"tenants-behind\">3</dd>"),
        "{}",
        page.html
    );

    let refused = operator
        .submit(
            "/console/templates",
            "/console/templates/rollout",
            &[("concurrency", "0")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert!(refused.html.contains("id=\"rollout-error\""));

    let started = operator
        .submit(
            "/console/templates",
            "/console/templates/rollout",
            &[("concurrency", "2"), ("canary", "1")],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.html);
    let done = format!("Finished: 3 of 3 tenants migrated to version {latest}, 0 failed");
    let watcher = operator.clone();
    let finished = TestApp::eventually(Duration::from_secs(30), || {
        let mut watcher = watcher.clone();
        let done = done.clone();
        async move { watcher.get("/console/templates").await.html.contains(&done) }
    })
    .await;
    assert!(
        finished.is_some(),
        "the roll-out finishes and the page says so"
    );
    let finished = operator.get("/console/templates").await;
    assert!(
        finished.html.contains("<dd id=\"tenants-behind\">0</dd>"),
        "{}",
        finished.html
    );
    assert!(
        !finished.html.contains("http-equiv=\"refresh\""),
        "a finished roll-out's page stops reloading"
    );
}

#[tokio::test]
async fn a_tenants_page_lists_its_sso_providers() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-listed", &unique_address("owner"))
        .await;
    tenantry_tests::idp::oidc_provider("sso-listed", &admin, "corp", serde_json::json!({})).await;
    let mut operator = Browser::operator(&app).await;
    let page = operator.get("/console/tenants/sso-listed").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html
            .contains("<tr><td>corp</td><td>oidc</td><td>Corp SSO</td><td>enabled</td><td>corp.example</td></tr>"),
        "{}",
        page.html
    );
}
