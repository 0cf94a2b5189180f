//! The tenant console in a real browser: Debian's Chromium driven by Playwright for Python
//! (`deploy/local/test.sh` installs both and sets `TENANTRY_TEST_BROWSER_PYTHON` and
//! `TENANTRY_TEST_CHROMIUM`). The scripts in `console_browser/` do what a person would; this
//! side starts the stack and then checks, through the API and the audit log, that what the
//! browser showed is what the server holds. Screenshots go to `target/console-screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp};

/// A path from environment variable `name`, which `deploy/local/test.sh` sets.
fn tool(name: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("{name} is not set: deploy/local/test.sh installs the browser tools and sets it")
        })
}

/// Runs `script` (in `console_browser/`) with `arguments`; its JSON summary.
async fn run_script(script: &str, arguments: Value) -> Value {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new(tool("TENANTRY_TEST_BROWSER_PYTHON"))
        .arg(here.join("api/console_browser").join(script))
        .arg(arguments.to_string())
        .output()
        .await
        .expect("the browser script starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{script} printed no summary: {stdout}"))
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
}

#[tokio::test]
async fn a_new_user_signs_up_confirms_by_mail_enrols_totp_and_signs_back_in_in_a_browser() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.allow_self_signup("acme").await;
    let email = unique_address("browser");
    let password = "a browser's long passphrase";
    let summary = run_script(
        "end_user.py",
        json!({
            "base_url": app.data_url,
            "tenant": "acme",
            "chromium": tool("TENANTRY_TEST_CHROMIUM"),
            "maildir": tool("TENANTRY_TEST_MAILDIR"),
            "screenshots": screenshots(),
            "name": "Bea Browser",
            "email": email,
            "password": password,
        }),
    )
    .await;
    assert_eq!(summary["backup_codes"], 10);

    // The server's side: the password the browser chose signs in, and asks for the second
    // factor the browser enrolled.
    let login: Value = app
        .tenant("acme")
        .post("/v1/auth/login")
        .json(&json!({ "email": email, "password": password }))
        .ok()
        .await
        .unwrap();
    assert_eq!(login["mfa_required"], true, "{login}");

    // Each step left its audit event, as the API's would.
    let tenant_id = app.tenant_id("acme").await;
    for action in [
        "auth.register",
        "auth.verify_email",
        "auth.login",
        "mfa.totp_setup",
        "mfa.totp_enable",
        "auth.logout",
        "auth.mfa_verify",
    ] {
        app.wait_for_audit_events(&tenant_id, action, 1, Duration::from_secs(30))
            .await;
    }
}

#[tokio::test]
async fn a_tenant_admin_invites_a_user_makes_an_api_key_for_curl_and_finds_both_in_the_audit_view()
{
    let app = TestApp::spawn().await;
    app.tenant_with_owner("acme").await;
    let invitee = unique_address("invitee");
    let summary = run_script(
        "admin.py",
        json!({
            "base_url": app.data_url,
            "tenant": "acme",
            "chromium": tool("TENANTRY_TEST_CHROMIUM"),
            "screenshots": screenshots(),
            "email": tenantry_tests::OWNER_EMAIL,
            "password": tenantry_tests::PASSWORD,
            "invitee": invitee,
        }),
    )
    .await;
    assert_eq!(summary["curl_status"], 200);
    assert!(
        summary["exported_lines"].as_u64().unwrap() >= 3,
        "{summary}"
    );
    // The invitation the browser sent is real: its mail went out.
    let mails = app.wait_for_mail(&invitee, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
}

#[tokio::test]
async fn an_operator_creates_suspends_and_limits_a_tenant_in_a_browser() {
    let app = TestApp::spawn().await;
    let email = "ops@tenantry.example";
    let password = "an operator's long passphrase";
    control_plane::operators::accounts::add(
        &app.control,
        &shared::email::Email::parse(email).unwrap(),
        zeroize::Zeroizing::new(password.to_owned()),
    )
    .await
    .unwrap();
    let admin = unique_address("umbrella-admin");
    let summary = run_script(
        "platform_operator.py",
        json!({
            "control_url": app.control_url,
            "data_url": app.data_url,
            "chromium": tool("TENANTRY_TEST_CHROMIUM"),
            "screenshots": screenshots(),
            "email": email,
            "password": password,
            "slug": "umbrella",
            "admin_email": admin,
        }),
    )
    .await;
    assert_eq!(summary["suspended_page"], true);
    // What the browser did is what the catalog holds.
    assert_eq!(app.tenant_status("umbrella").await, "suspended");
    let quotas = app
        .operator_api()
        .tenants()
        .quotas("umbrella")
        .await
        .unwrap();
    assert_eq!(quotas["overrides"]["max_users"], 25, "{quotas}");
    assert_eq!(
        app.wait_for_mail(&admin, Duration::from_secs(10))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_tenant_admin_sets_up_oidc_and_saml_in_the_wizard_and_new_people_sign_in_with_them_in_a_browser(
) {
    use tenantry_tests::idp::{idp_address, oidc_issuer, saml_idp_url, OidcProvider, SamlIdp};
    let app = TestApp::spawn().await;
    let admin_email = idp_address("owner");
    let admin = app.tenant_with_admin("sso-browser", &admin_email).await;
    let oidc = OidcProvider::new();
    let saml = SamlIdp::new();
    let (oidc_tester, oidc_user) = (idp_address("oidc-tester"), idp_address("oidc-newcomer"));
    oidc.set_account(&oidc_tester, "Olga Tester", &["engineers"])
        .await;
    oidc.set_account(&oidc_user, "Otto Newcomer", &[]).await;
    // The SAML provider's people are at a domain of their own, bound to it in the wizard.
    let saml_domain = format!(
        "saml-{}.example",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let (saml_tester, saml_user) = (
        format!("sam-tester@{saml_domain}"),
        format!("sara-newcomer@{saml_domain}"),
    );
    saml.set_account(&saml_tester, "Sam Tester", &[]).await;
    saml.set_account(&saml_user, "Sara Newcomer", &[]).await;

    let summary = run_script(
        "sso_admin.py",
        json!({
            "data_url": app.data_url,
            "tenant": "sso-browser",
            "chromium": tool("TENANTRY_TEST_CHROMIUM"),
            "screenshots": screenshots(),
            "admin_email": admin_email,
            "admin_password": tenantry_tests::PASSWORD,
            "oidc_issuer": oidc_issuer(),
            "saml_idp": saml_idp_url(),
            "saml_domain": saml_domain,
            "oidc_tester": oidc_tester,
            "oidc_user": oidc_user,
            "saml_tester": saml_tester,
            "saml_user": saml_user,
        }),
    )
    .await;
    assert_eq!(summary["providers_enabled"], 2, "{summary}");

    // The server's side: both providers enabled, the SAML one bound to its domain; the two
    // newcomers are users who signed in by SSO; the testers are not users at all.
    let providers: Value = admin.get("/v1/admin/sso").ok().await.unwrap();
    let enabled: Vec<&str> = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|provider| provider["enabled"] == true)
        .map(|provider| provider["name"].as_str().unwrap())
        .collect();
    assert_eq!(enabled, ["adfs", "corp"], "{providers}");
    let page = admin.users().list(None, None, None).await.unwrap();
    let emails: Vec<&str> = page.users.iter().map(|user| user.email.as_str()).collect();
    for newcomer in [&oidc_user, &saml_user] {
        assert!(
            emails.contains(&newcomer.as_str()),
            "{newcomer} not in {emails:?}"
        );
    }
    for tester in [&oidc_tester, &saml_tester] {
        assert!(
            !emails.contains(&tester.as_str()),
            "the test sign-in made {tester} a user"
        );
    }
}
