//! SSO from the tenant console: the sign-in page's buttons and email discovery start a
//! sign-in that comes back signed in to the console (OIDC and SAML), only in the browser
//! that started it.

use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::console::Browser as ConsoleBrowser;
use tenantry_tests::TestApp;

use super::{
    idp_address, oidc_provider, saml_provider, tenant_base, Browser, OidcProvider, SamlIdp,
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
    let admin = app
        .tenant_with_admin("sso-console", &idp_address("owner"))
        .await;
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
    // A browser gets a page that says why (an API client the JSON error).
    assert!(refused.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        refused.html.contains("data-code=\"sso_other_browser\"")
            && refused.html.contains("started in another browser"),
        "{}",
        refused.html
    );
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
    let admin = app
        .tenant_with_admin("saml-console", &idp_address("owner"))
        .await;
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

/// The set-up wizard's form for `preset`, filled with `fields`, posted; the answer.
async fn save_through_the_wizard(
    browser: &mut ConsoleBrowser,
    preset: &str,
    fields: &[(&str, &str)],
) -> tenantry_tests::console::Page {
    let mut fields = fields.to_vec();
    fields.push(("preset", preset));
    browser
        .submit(
            &format!("/console/admin/sso/new?preset={preset}"),
            "/console/admin/sso",
            &fields,
        )
        .await
}

#[tokio::test]
async fn the_wizard_saves_an_oidc_provider_disabled_its_test_signs_nobody_in_and_enabling_offers_it(
) {
    let app = TestApp::spawn().await;
    let owner_email = idp_address("owner");
    app.tenant_with_admin("wizard", &owner_email).await;
    let mut admin = ConsoleBrowser::new_for(&app, "wizard");
    admin.sign_in(&owner_email, tenantry_tests::PASSWORD).await;
    let idp = OidcProvider::new();
    let client = idp
        .register(&[format!(
            "{}/v1/auth/sso/okta/callback",
            tenant_base("wizard")
        )])
        .await;
    let tester = idp_address("tester");
    idp.set_account(&tester, "Tess Tester", &["engineering"])
        .await;

    let presets = admin.get("/console/admin/sso").await;
    assert!(presets
        .html
        .contains("href=\"/console/admin/sso/new?preset=okta\""));
    let form = admin.get("/console/admin/sso/new?preset=okta").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.html
            .contains("<code>https://wizard.tenantry.test/v1/auth/sso/okta/callback</code>"),
        "{}",
        form.html
    );
    assert!(
        form.html.contains("value=\"email profile groups\""),
        "the preset's scopes"
    );
    // The name comes first: the values to paste into the IdP are made of it.
    let named = admin
        .get("/console/admin/sso/new?preset=okta&name=okta-eu")
        .await;
    assert!(named
        .html
        .contains("<code>https://wizard.tenantry.test/v1/auth/sso/okta-eu/callback</code>"));
    let misnamed = admin
        .get("/console/admin/sso/new?preset=okta&name=Okta%20EU")
        .await;
    assert_eq!(misnamed.status, StatusCode::BAD_REQUEST);
    assert!(
        misnamed.html.contains("id=\"sso-name-error\""),
        "{}",
        misnamed.html
    );
    assert!(
        !misnamed.html.contains("/v1/auth/sso/Okta"),
        "{}",
        misnamed.html
    );

    // Bad input: the form again with the message, nothing saved.
    let bad = save_through_the_wizard(
        &mut admin,
        "okta",
        &[
            ("name", "okta"),
            ("issuer", "not a url"),
            ("client_id", "x"),
            ("email", "email"),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
    assert!(bad.html.contains("id=\"sso-error\""));
    assert!(
        bad.html.contains("value=\"not a url\""),
        "what was typed is kept"
    );
    assert_eq!(
        admin.get("/console/admin/sso/okta").await.status,
        StatusCode::NOT_FOUND
    );

    let saved = save_through_the_wizard(
        &mut admin,
        "okta",
        &[
            ("name", "okta"),
            ("display_name", "Okta"),
            ("issuer", &idp.issuer),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
            ("scopes", "email profile groups"),
            ("email", "email"),
            ("full_name", "name"),
            ("groups", "groups"),
            ("default_role", "member"),
            ("role_mapping", "engineering = admin"),
            ("domains", "corp.example"),
        ],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(saved.location(), Some("/console/admin/sso/okta"));
    let page = admin.get("/console/admin/sso/okta").await;
    assert!(
        page.html.contains("Disabled: nobody signs in with it"),
        "{}",
        page.html
    );

    // Disabled: not offered, and an ordinary sign-in through it is refused.
    let mut visitor = ConsoleBrowser::new_for(&app, "wizard");
    assert!(!visitor
        .get("/console/sign-in")
        .await
        .html
        .contains("/console/sso/okta"));
    assert_eq!(
        visitor.get("/console/sso/okta").await.status,
        StatusCode::NOT_FOUND
    );

    // The test: a real sign-in at the provider, ending on the result page.
    let start = admin.get("/console/admin/sso/okta/test").await;
    assert_eq!(start.status, StatusCode::FOUND, "{}", start.html);
    let callback = Browser::new(&app)
        .sign_in_at_oidc_provider(start.location().unwrap(), &tester, &tenant_base("wizard"))
        .await;
    let tested = admin.get(&at_tenant("wizard", &callback)).await;
    assert_eq!(tested.status, StatusCode::SEE_OTHER, "{}", tested.html);
    let result_page = tested.location().unwrap().to_owned();
    assert!(result_page.starts_with("/console/admin/sso/okta/test-result?result="));
    let result = admin.get(&result_page).await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.html);
    assert!(
        result
            .html
            .contains(&format!("<dd id=\"mapped-email\">{tester}")),
        "{}",
        result.html
    );
    assert!(result.html.contains("<dd id=\"mapped-roles\">admin</dd>"));
    assert!(
        result.html.contains("&#34;groups&#34;"),
        "the received claims are shown"
    );
    assert_eq!(
        app.count_in("wizard", &format!("users WHERE email = '{tester}'"))
            .await,
        0,
        "a test made a user"
    );
    // The result is the admin's: a member cannot read it.
    let member = idp_address("member");
    let owner = app
        .signed_in("wizard", &owner_email, tenantry_tests::PASSWORD)
        .await;
    app.invite_and_activate(&owner, &member, &["member"]).await;
    let mut member_browser = ConsoleBrowser::new_for(&app, "wizard");
    member_browser
        .sign_in(&member, tenantry_tests::PASSWORD)
        .await;
    assert_eq!(
        member_browser.get(&result_page).await.status,
        StatusCode::FORBIDDEN
    );

    // Enabled: offered on the sign-in page, and the same person now signs in for real.
    let enabled = admin
        .submit(
            "/console/admin/sso/okta",
            "/console/admin/sso/okta/enabled",
            &[("enabled", "true")],
        )
        .await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER, "{}", enabled.html);
    assert!(visitor
        .get("/console/sign-in")
        .await
        .html
        .contains("href=\"/console/sso/okta?next=/console\""));
    let start = visitor.get("/console/sso/okta").await;
    let callback = Browser::new(&app)
        .sign_in_at_oidc_provider(start.location().unwrap(), &tester, &tenant_base("wizard"))
        .await;
    let landed = visitor.get(&at_tenant("wizard", &callback)).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.html);
    let home = visitor.get("/console").await;
    assert!(
        home.html.contains("<dd>admin</dd>"),
        "the mapped role: {}",
        home.html
    );
}

#[tokio::test]
async fn the_wizard_sets_up_saml_from_an_uploaded_metadata_file_and_its_test_shows_the_attributes()
{
    let app = TestApp::spawn().await;
    let owner_email = idp_address("owner");
    app.tenant_with_admin("wizard-saml", &owner_email).await;
    let mut admin = ConsoleBrowser::new_for(&app, "wizard-saml");
    admin.sign_in(&owner_email, tenantry_tests::PASSWORD).await;
    let idp = SamlIdp::new();
    let tester = idp_address("saml-tester");
    idp.set_account(&tester, "Sam Tester", &["auditors"]).await;
    let fields = [
        ("preset", "saml"),
        ("name", "adfs"),
        ("display_name", "Corp ADFS"),
        ("email", "email"),
        ("full_name", "name"),
        ("groups", "groups"),
        ("default_role", "member"),
    ];
    let wizard = "/console/admin/sso/new?preset=saml";
    let form = admin.get(wizard).await;
    assert!(
        form.html.contains("enctype=\"multipart/form-data\"")
            && form.html.contains("type=\"file\" accept=\".xml"),
        "{}",
        form.html
    );

    // Neither a file nor pasted XML; a file that is not text: the form again, nothing saved.
    let empty = admin
        .upload(wizard, "/console/admin/sso", &fields, &[])
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.html);
    assert!(
        empty
            .html
            .contains("upload your provider&#39;s metadata file"),
        "{}",
        empty.html
    );
    assert!(
        empty.html.contains("value=\"Corp ADFS\""),
        "what was typed stays"
    );
    let binary = admin
        .upload(
            wizard,
            "/console/admin/sso",
            &fields,
            &[(
                "idp_metadata_file",
                "metadata.xml",
                vec![0xff, 0xfe, 0x00, 0x3c],
            )],
        )
        .await;
    assert_eq!(binary.status, StatusCode::BAD_REQUEST, "{}", binary.html);
    assert!(
        binary.html.contains("the file is not text"),
        "{}",
        binary.html
    );
    assert_eq!(
        admin.get("/console/admin/sso/adfs").await.status,
        StatusCode::NOT_FOUND
    );

    let saved = admin
        .upload(
            wizard,
            "/console/admin/sso",
            &fields,
            &[(
                "idp_metadata_file",
                "FederationMetadata.xml",
                idp.metadata().await.into_bytes(),
            )],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    // The IdP learns our metadata from the (still disabled) provider's URL.
    let metadata = admin.get("/v1/auth/saml/adfs/metadata").await;
    assert_eq!(metadata.status, StatusCode::OK);
    idp.register_sp(metadata.html).await;

    let start = admin.get("/console/admin/sso/adfs/test").await;
    assert_eq!(start.status, StatusCode::FOUND, "{}", start.html);
    let post = Browser::new(&app)
        .saml_response_from(start.location().unwrap(), &tester, "", "")
        .await;
    let mut form = vec![("SAMLResponse", post.saml_response.as_str())];
    if let Some(relay) = post.relay_state.as_deref() {
        form.push(("RelayState", relay));
    }
    let tested = admin.post_raw("/v1/auth/saml/adfs/acs", &form).await;
    assert_eq!(tested.status, StatusCode::SEE_OTHER, "{}", tested.html);
    let result = admin.get(tested.location().unwrap()).await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.html);
    assert!(
        result
            .html
            .contains(&format!("<dd id=\"mapped-email\">{tester}")),
        "{}",
        result.html
    );
    assert!(
        result
            .html
            .contains("<dd id=\"mapped-groups\">auditors</dd>"),
        "{}",
        result.html
    );
    assert!(result.html.contains("name_id"), "{}", result.html);
}

#[tokio::test]
async fn an_admin_binds_email_domains_requires_sso_and_maps_groups_on_the_providers_page() {
    let app = TestApp::spawn().await;
    let owner_email = idp_address("owner");
    let api = app.tenant_with_admin("sso-domains", &owner_email).await;
    oidc_provider("sso-domains", &api, "corp", json!({})).await;
    let mut admin = ConsoleBrowser::new_for(&app, "sso-domains");
    admin.sign_in(&owner_email, tenantry_tests::PASSWORD).await;
    let page = "/console/admin/sso/corp";
    let action = "/console/admin/sso/corp/sign-in";

    // An unknown role: refused beside the form, what was typed kept, nothing changed.
    let refused = admin
        .submit(
            page,
            action,
            &[
                ("domains", "acme.example"),
                ("require_sso", "on"),
                ("default_role", "member"),
                ("role_mapping", "engineers = no-such-role"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert!(
        refused.html.contains("id=\"sso-error\""),
        "{}",
        refused.html
    );
    assert!(
        refused.html.contains("engineers = no-such-role"),
        "{}",
        refused.html
    );
    let before: serde_json::Value = api.get("/v1/admin/sso/corp").ok().await.unwrap();
    assert!(
        before["domains"]
            .as_array()
            .unwrap()
            .iter()
            .all(|binding| binding["domain"] != "acme.example"),
        "{before}"
    );

    let saved = admin
        .submit(
            page,
            action,
            &[
                ("domains", "acme.example, eu.acme.example"),
                ("require_sso", "on"),
                ("default_role", "member"),
                ("role_mapping", "engineers = admin"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let after: serde_json::Value = api.get("/v1/admin/sso/corp").ok().await.unwrap();
    assert_eq!(
        after["domains"],
        json!([
            { "domain": "acme.example", "require_sso": true },
            { "domain": "eu.acme.example", "require_sso": true },
        ]),
        "{after}"
    );
    assert_eq!(
        after["users"]["role_mapping"],
        json!({ "engineers": "admin" })
    );
    let shown = admin.get(page).await;
    assert!(
        shown
            .html
            .contains("<dd id=\"sso-domains-now\">acme.example (SSO required), eu.acme.example (SSO required)</dd>"),
        "{}",
        shown.html
    );

    // The binding holds: a password sign-in at a bound domain is sent to the provider.
    let password = app
        .tenant("sso-domains")
        .post("/v1/auth/login")
        .json(&json!({ "email": "someone@acme.example", "password": "whatever it is" }))
        .send()
        .await
        .unwrap();
    assert_eq!(password.status(), StatusCode::FORBIDDEN);
    assert_eq!(password.code(), Some("sso_required"));
}

#[tokio::test]
async fn the_providers_page_edits_the_connection_and_a_saml_provider_turned_to_encryption_signs_people_in(
) {
    let app = TestApp::spawn().await;
    let slug = "sso-connection";
    let owner_email = idp_address("owner");
    let api = app.tenant_with_admin(slug, &owner_email).await;
    saml_provider(&app, slug, &api, "corp-saml", json!({})).await;
    oidc_provider(slug, &api, "corp-oidc", json!({})).await;
    let mut admin = ConsoleBrowser::new_for(&app, slug);
    admin.sign_in(&owner_email, tenantry_tests::PASSWORD).await;
    let saml_page = "/console/admin/sso/corp-saml";
    let saml_action = "/console/admin/sso/corp-saml/connection";
    let view = |name: &'static str| {
        let api = &api;
        async move {
            let view: serde_json::Value =
                api.get(format!("/v1/admin/sso/{name}")).ok().await.unwrap();
            view
        }
    };

    // The stored settings show: the provider's choice of NameID, nothing signed or encrypted.
    let page = admin.get(saml_page).await;
    assert!(
        page.html
            .contains("<option value=\"unspecified\" selected>The provider&#39;s choice"),
        "{}",
        page.html
    );
    assert!(!page
        .html
        .contains("name=\"require_encrypted_assertions\" checked"));

    // Bad input: refused beside the form, what was typed kept, nothing changed.
    let before = view("corp-saml").await;
    let refused = admin
        .submit(
            saml_page,
            saml_action,
            &[
                ("email", "email"),
                ("name_id_format", "kerberos"),
                ("require_encrypted_assertions", "on"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert!(refused.html.contains("id=\"sso-connection-error\""));
    assert!(
        refused
            .html
            .contains("name=\"require_encrypted_assertions\" checked"),
        "what was typed is kept"
    );
    assert_eq!(view("corp-saml").await, before);

    // Encryption and persistent NameIDs, with ADFS's attribute names.
    let email_claim = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
    let saved = admin
        .submit(
            saml_page,
            saml_action,
            &[
                ("email", email_claim),
                ("full_name", "name"),
                ("groups", "groups"),
                ("name_id_format", "persistent"),
                ("require_encrypted_assertions", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let after = view("corp-saml").await;
    assert_eq!(after["provider"]["require_encrypted_assertions"], true);
    assert_eq!(after["provider"]["sign_authn_requests"], false);
    assert_eq!(after["provider"]["name_id_format"], "persistent");
    assert_eq!(after["provider"]["attributes"]["email"], email_claim);
    assert_eq!(
        after["domains"], before["domains"],
        "the other form's part stays"
    );
    let page = admin.get(saml_page).await;
    assert!(page
        .html
        .contains("name=\"require_encrypted_assertions\" checked"));
    assert!(
        page.html
            .contains("Our metadata names this provider's certificate, for encrypted"),
        "{}",
        page.html
    );

    // Our metadata now offers a certificate for encryption; the IdP, given it, encrypts, and
    // the person it names (under ADFS's attribute name) is signed in.
    let browser = Browser::new(&app);
    let metadata = browser
        .tenant_get(slug, "/v1/auth/saml/corp-saml/metadata")
        .await
        .text();
    assert!(metadata.contains("use=\"encryption\""), "{metadata}");
    let idp = SamlIdp::new();
    idp.register_sp(metadata).await;
    let login = idp_address("sealed");
    idp.set_account_with(
        &login,
        json!({"name": "Sealed Person", "attribute_names": {"email": email_claim}}),
    )
    .await;
    let post = browser
        .saml_response(slug, "corp-saml", &login, "", "")
        .await;
    let plain = browser.post_to_acs(slug, "corp-saml", &post, true).await;
    assert_eq!(
        plain.error_code(),
        (StatusCode::UNAUTHORIZED, "sso_rejected"),
        "a plain assertion, now that encryption is required"
    );
    let post = browser
        .saml_response(slug, "corp-saml", &login, "encrypted", "")
        .await;
    let sealed = browser.post_to_acs(slug, "corp-saml", &post, true).await;
    assert_eq!(sealed.status(), StatusCode::OK, "{}", sealed.text());

    // OIDC: a JWT signed with our key instead of the secret; the page names our public key.
    let oidc_page = "/console/admin/sso/corp-oidc";
    let oidc_action = "/console/admin/sso/corp-oidc/connection";
    let page = admin.get(oidc_page).await;
    for algorithm in ["RS256", "ES256", "PS256", "EdDSA"] {
        assert!(
            page.html
                .contains(&format!("value=\"{algorithm}\" checked")),
            "{algorithm} is allowed by default: {}",
            page.html
        );
    }
    assert!(!page.html.contains("value=\"RS384\" checked"));
    assert!(!page.html.contains("id=\"sso-jwks\""));
    let keyed = admin
        .submit(
            oidc_page,
            oidc_action,
            &[
                ("email", "email"),
                ("scopes", "email profile"),
                ("token_endpoint_auth", "private_key_jwt"),
                ("id_token_algorithms", "RS256"),
                ("id_token_algorithms", "ES384"),
            ],
        )
        .await;
    assert_eq!(keyed.status, StatusCode::SEE_OTHER, "{}", keyed.html);
    let after = view("corp-oidc").await;
    assert_eq!(after["provider"]["token_endpoint_auth"], "private_key_jwt");
    assert_eq!(
        after["provider"]["id_token_algorithms"],
        json!(["RS256", "ES384"])
    );
    assert_eq!(after["provider"]["scopes"], json!(["email", "profile"]));
    assert_eq!(after["has_client_secret"], false);
    let page = admin.get(oidc_page).await;
    let jwks = format!("{}/v1/auth/sso/corp-oidc/jwks", tenant_base(slug));
    assert!(
        page.html.contains(&format!("<code>{jwks}</code>")),
        "{}",
        page.html
    );
    let published = browser
        .tenant_get(slug, "/v1/auth/sso/corp-oidc/jwks")
        .await;
    assert_eq!(published.status(), StatusCode::OK);

    // No algorithm at all, or back to a secret without giving one: refused, nothing changed.
    for fields in [
        vec![
            ("email", "email"),
            ("token_endpoint_auth", "private_key_jwt"),
        ],
        vec![
            ("email", "email"),
            ("token_endpoint_auth", "client_secret_basic"),
            ("id_token_algorithms", "RS256"),
        ],
    ] {
        let refused = admin.submit(oidc_page, oidc_action, &fields).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
        assert!(refused.html.contains("id=\"sso-connection-error\""));
        assert_eq!(view("corp-oidc").await, after);
    }
    // With a secret, the client is back to it.
    let back = admin
        .submit(
            oidc_page,
            oidc_action,
            &[
                ("email", "email"),
                ("token_endpoint_auth", "client_secret_basic"),
                ("client_secret", "a-new-secret-from-the-idp"),
                ("id_token_algorithms", "RS256"),
            ],
        )
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.html);
    let after = view("corp-oidc").await;
    assert_eq!(after["has_client_secret"], true);
    assert_eq!(
        after["provider"]["token_endpoint_auth"],
        "client_secret_basic"
    );
}
