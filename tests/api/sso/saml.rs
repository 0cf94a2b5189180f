//! SAML 2.0 sign-ins through the pysaml2 IdP: the working flow, and what the SP must refuse
//! (unsigned, wrongly signed, expired, SHA-1, wrapped, replayed, unsolicited and cross-tenant
//! responses), all with real XML-DSig made by xmlsec1.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::node_process::{free_port, NodeProcess};
use tenantry_tests::TestApp;

use super::*;

#[tokio::test]
async fn saml_sign_in_with_a_signed_response_creates_the_user() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("saml-ok", &idp_address("owner"))
        .await;
    let view = saml_provider(&app, "saml-ok", &admin, "okta", json!({})).await;
    assert_eq!(view["saml_metadata_path"], "/v1/auth/saml/okta/metadata");
    assert_eq!(view["provider"]["allow_idp_initiated"], false);

    // The SP metadata names this tenant's ACS.
    let browser = Browser::new(&app);
    let metadata = browser
        .tenant_get("saml-ok", "/v1/auth/saml/okta/metadata")
        .await
        .text();
    assert!(metadata.contains(&format!("{}/v1/auth/saml/okta/acs", tenant_base("saml-ok"))));
    // Only what the SP serves: no single logout service, no library default URL.
    assert!(!metadata.contains("SingleLogoutService"), "{metadata}");
    assert!(!metadata.contains("localhost"), "{metadata}");

    let login = idp_address("sam");
    SamlIdp::new()
        .set_account(&login, "Sam Auditor", &["auditors"])
        .await;
    let post = browser
        .saml_response("saml-ok", "okta", &login, "", "")
        .await;
    assert_eq!(
        post.acs,
        format!("{}/v1/auth/saml/okta/acs", tenant_base("saml-ok"))
    );
    let response = browser.post_to_acs("saml-ok", "okta", &post, true).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    let tokens = tokens_of(&response);
    let claims = claims(tokens.access_token.expose());
    assert_eq!(claims["amr"], json!(["saml"]));
    assert_eq!(claims["idp"], "okta");
    assert_eq!(claims["roles"], json!(["manager"]));
    let me = app
        .tenant("saml-ok")
        .with_tokens(tokens)
        .me()
        .get()
        .await
        .unwrap();
    assert_eq!(me.email, login);
    assert_eq!(me.display_name, "Sam Auditor");
}

#[tokio::test]
async fn saml_providers_from_a_certificate_or_a_metadata_url_work() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("saml-cert", &idp_address("owner"))
        .await;
    let idp = SamlIdp::new();
    let created = create_provider(
        &admin,
        &json!({
            "name": "corp-saml",
            "provider": {
                "kind": "saml",
                "idp_entity_id": format!("{}/metadata", idp.url),
                "idp_sso_url": format!("{}/sso/redirect", idp.url),
                "idp_certificate": idp.certificate().await,
            },
        }),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    let browser = Browser::new(&app);
    let metadata = browser
        .tenant_get("saml-cert", "/v1/auth/saml/corp-saml/metadata")
        .await
        .text();
    idp.register_sp(metadata).await;
    browser
        .saml_sign_in("saml-cert", "corp-saml", &idp_address("cert"))
        .await;

    // The metadata URL form: fetched once when saved, the copy kept (and shown).
    let created = create_provider(
        &admin,
        &json!({
            "name": "by-url",
            "provider": {"kind": "saml", "idp_metadata_url": format!("{}/metadata", idp.url)},
        }),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    let view = created.value();
    assert!(view["provider"]["idp_metadata_xml"]
        .as_str()
        .unwrap()
        .contains("X509Certificate"));
    let metadata = browser
        .tenant_get("saml-cert", "/v1/auth/saml/by-url/metadata")
        .await
        .text();
    idp.register_sp(metadata).await;
    browser
        .saml_sign_in("saml-cert", "by-url", &idp_address("url"))
        .await;
    // A URL that does not answer with metadata is refused at configuration time.
    let refused = create_provider(
        &admin,
        &json!({
            "name": "broken",
            "provider": {"kind": "saml", "idp_metadata_url": format!("{}/nothing-here", idp.url)},
        }),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn forged_or_stale_saml_responses_are_refused_and_the_log_says_why() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("saml-forged", &idp_address("owner"))
        .await;
    saml_provider(&app, "saml-forged", &admin, "okta", json!({})).await;
    // A node process of its own, whose log the test reads.
    let node = NodeProcess::start(&app, free_port(), &[]).await;
    let browser = Browser::at(&node.url);
    for (variant, logged) in [
        (
            "unsigned",
            "missing signature: neither the Response nor its Assertion is signed",
        ),
        (
            "foreign_key",
            "wrong key: signed with a certificate other than the provider's",
        ),
        ("expired", "expired"),
        (
            "sha1",
            "disallowed signature algorithm http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        ),
    ] {
        let refusal = Refusal {
            slug: "saml-forged",
            provider: "okta",
            variant,
            logged,
        };
        refusal
            .assert(&app, &browser, &node, &idp_address(variant))
            .await;
    }
    assert!(
        app.count_in(
            "saml-forged",
            "login_attempts WHERE method = 'saml' AND outcome = 'rejected'"
        )
        .await
            >= 4
    );
    // A genuine response still works: the refusals were the checks.
    browser
        .saml_sign_in("saml-forged", "okta", &idp_address("genuine"))
        .await;
}

#[tokio::test]
async fn a_response_with_an_injected_assertion_anywhere_is_refused_and_signs_nobody_in() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("saml-xsw", &idp_address("owner"))
        .await;
    saml_provider(&app, "saml-xsw", &admin, "okta", json!({})).await;
    let browser = Browser::new(&app);
    let attacker = idp_address("attacker");
    let victim = idp_address("ceo");
    // An unsigned copy naming the victim before the signed assertion, after it, and in the
    // Response's Extensions: the signed one alone would pass, the response does not.
    for variant in ["wrapped", "wrapped_after", "wrapped_extensions"] {
        let post = browser
            .saml_response("saml-xsw", "okta", &attacker, variant, &victim)
            .await;
        let reply = browser.post_to_acs("saml-xsw", "okta", &post, true).await;
        assert_eq!(
            reply.error_code(),
            (StatusCode::UNAUTHORIZED, "sso_rejected"),
            "{variant}: {}",
            reply.text()
        );
    }
    for who in [&attacker, &victim] {
        assert_eq!(
            app.count_in("saml-xsw", &format!("users WHERE email = '{who}'"))
                .await,
            0,
            "{who}"
        );
    }
    // The same flow without the injection signs the attacker in: the refusals were the
    // extra assertion's.
    browser.saml_sign_in("saml-xsw", "okta", &attacker).await;
}

#[tokio::test]
async fn a_saml_response_is_good_once_and_only_where_it_was_asked_for() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("saml-replay", &idp_address("owner"))
        .await;
    let admin_b = app
        .tenant_with_admin("saml-replay-b", &idp_address("owner"))
        .await;
    saml_provider(&app, "saml-replay", &admin, "okta", json!({})).await;
    saml_provider(&app, "saml-replay-b", &admin_b, "okta", json!({})).await;
    saml_provider(
        &app,
        "saml-replay",
        &admin,
        "open",
        json!({"allow_idp_initiated": true}),
    )
    .await;
    let browser = Browser::new(&app);

    // Tenant A's response at tenant B's ACS (same provider name): refused, with or without
    // its RelayState.
    let login = idp_address("replay");
    let post = browser
        .saml_response("saml-replay", "okta", &login, "", "")
        .await;
    for relay in [true, false] {
        let reply = browser
            .post_to_acs("saml-replay-b", "okta", &post, relay)
            .await;
        assert_eq!(
            reply.error_code(),
            (StatusCode::BAD_REQUEST, "invalid_sso_state")
        );
    }
    assert_eq!(
        app.count_in("saml-replay-b", &format!("users WHERE email = '{login}'"))
            .await,
        0
    );

    // Unsolicited (no RelayState): refused while IdP-initiated sign-in is off (the default).
    let reply = browser
        .post_to_acs("saml-replay", "okta", &post, false)
        .await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_sso_state")
    );

    // Once, then never again.
    let first = browser
        .post_to_acs("saml-replay", "okta", &post, true)
        .await;
    assert_eq!(first.status(), StatusCode::OK, "{}", first.text());
    let reply = browser
        .post_to_acs("saml-replay", "okta", &post, true)
        .await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_sso_state")
    );

    // Where IdP-initiated sign-in is allowed, the assertion id is what stops a replay.
    let post = browser
        .saml_response("saml-replay", "open", &idp_address("open"), "", "")
        .await;
    let first = browser
        .post_to_acs("saml-replay", "open", &post, false)
        .await;
    assert_eq!(first.status(), StatusCode::OK, "{}", first.text());
    let reply = browser
        .post_to_acs("saml-replay", "open", &post, false)
        .await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::UNAUTHORIZED, "sso_rejected")
    );
    assert_eq!(
        app.count_in(
            "saml-replay",
            "login_attempts WHERE outcome = 'replayed_assertion'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_malformed_acs_post_is_a_clear_400() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("saml-bad", &idp_address("owner"))
        .await;
    saml_provider(&app, "saml-bad", &admin, "okta", json!({})).await;
    let browser = Browser::new(&app);
    let missing = browser
        .tenant_post_form("saml-bad", "/v1/auth/saml/okta/acs", &[("RelayState", "x")])
        .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let garbage = browser
        .tenant_post_form(
            "saml-bad",
            "/v1/auth/saml/okta/acs",
            &[("SAMLResponse", "%%%not base64"), ("RelayState", "unknown")],
        )
        .await;
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let unknown = browser
        .tenant_post_form(
            "saml-bad",
            "/v1/auth/saml/nobody/acs",
            &[("SAMLResponse", "eA==")],
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// A response the SP must refuse: the IdP's `variant` (deploy/local/idp/saml_idp.py) for a
/// sign-in at `slug` through `provider`, and what the log must say of it.
struct Refusal<'a> {
    slug: &'a str,
    provider: &'a str,
    variant: &'a str,
    logged: &'a str,
}

impl Refusal<'_> {
    /// Signs in as `login` with the variant: 401 `sso_rejected`, no user made, and `node`'s
    /// log says why.
    async fn assert(&self, app: &TestApp, browser: &Browser, node: &NodeProcess, login: &str) {
        let Self {
            slug,
            provider,
            variant,
            logged,
        } = self;
        let post = browser
            .saml_response(slug, provider, login, variant, "")
            .await;
        let reply = browser.post_to_acs(slug, provider, &post, true).await;
        assert_eq!(
            reply.error_code(),
            (StatusCode::UNAUTHORIZED, "sso_rejected"),
            "{variant:?} was not refused"
        );
        assert_eq!(
            app.count_in(slug, &format!("users WHERE email = '{login}'"))
                .await,
            0,
            "{variant:?} created a user"
        );
        let said = TestApp::eventually(std::time::Duration::from_secs(5), || async {
            node.log_text().contains(logged)
        })
        .await;
        assert!(
            said.is_some(),
            "the log does not say {logged:?}:\n{}",
            node.log_text()
        );
    }
}

/// The user id a SAML sign-in at `slug` through `provider` as `login` signed in (`variant`:
/// the IdP's, see deploy/local/idp/saml_idp.py), asserted to succeed.
async fn saml_user(
    browser: &Browser,
    slug: &str,
    provider: &str,
    login: &str,
    variant: &str,
) -> String {
    let post = browser
        .saml_response(slug, provider, login, variant, "")
        .await;
    let reply = browser.post_to_acs(slug, provider, &post, true).await;
    claims(tokens_of(&reply).access_token.expose())["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The subjects provider `name` of tenant `slug` has linked.
async fn linked_subjects(app: &TestApp, slug: &str, name: &str) -> Vec<String> {
    let schema = format!("tenant_{}", slug.replace('-', "_"));
    app.superuser()
        .await
        .query(
            &format!(
                "SELECT i.subject FROM \"{schema}\".sso_identities i \
                 JOIN \"{schema}\".sso_providers p ON p.id = i.provider_id \
                 WHERE p.name = $1 ORDER BY i.subject"
            ),
            &[&name],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("subject"))
        .collect()
}

#[tokio::test]
async fn transient_name_ids_sign_users_in_by_a_stable_attribute_and_persistent_ones_by_the_name_id()
{
    let app = TestApp::spawn().await;
    let slug = "saml-nameid";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    app.set_quotas(slug, json!({"max_users": 100})).await;
    // The IdP answers each AuthnRequest's NameIDPolicy as IdPs do (transient: a new random
    // value each time; persistent: a stable opaque one), or always transient (variant).
    saml_provider(
        &app,
        slug,
        &admin,
        "shib",
        json!({"name_id_format": "transient"}),
    )
    .await;
    saml_provider(&app, slug, &admin, "adfs", json!({})).await;
    saml_provider(
        &app,
        slug,
        &admin,
        "okta",
        json!({"name_id_format": "persistent"}),
    )
    .await;
    saml_provider(
        &app,
        slug,
        &admin,
        "strict",
        json!({"name_id_format": "transient", "subject_attribute": "employeeNumber"}),
    )
    .await;
    let browser = Browser::new(&app);

    // Transient, asked for: two sign-ins, one user, one identity — by the email attribute.
    let ann = idp_address("ann");
    let first = saml_user(&browser, slug, "shib", &ann, "").await;
    assert_eq!(saml_user(&browser, slug, "shib", &ann, "").await, first);
    assert_eq!(linked_subjects(&app, slug, "shib").await, vec![ann.clone()]);

    // Transient though the request left the format to the IdP (ADFS's way): the same.
    let bob = idp_address("bob");
    let first = saml_user(&browser, slug, "adfs", &bob, "transient").await;
    assert_eq!(
        saml_user(&browser, slug, "adfs", &bob, "transient").await,
        first
    );
    assert_eq!(linked_subjects(&app, slug, "adfs").await, vec![bob.clone()]);

    // Persistent: the NameID itself, stable and not the address.
    let cy = idp_address("cy");
    let first = saml_user(&browser, slug, "okta", &cy, "").await;
    assert_eq!(saml_user(&browser, slug, "okta", &cy, "").await, first);
    let subjects = linked_subjects(&app, slug, "okta").await;
    assert_eq!(subjects.len(), 1);
    assert!(
        !subjects[0].contains('@') && subjects[0].len() == 32,
        "{subjects:?}"
    );

    // Transient, and the attribute that should identify the user is not sent: refused,
    // nobody signed in or created.
    let dee = idp_address("dee");
    let post = browser.saml_response(slug, "strict", &dee, "", "").await;
    let refused = browser.post_to_acs(slug, "strict", &post, true).await;
    assert_eq!(
        refused.status(),
        StatusCode::UNAUTHORIZED,
        "{}",
        refused.text()
    );
    assert_eq!(
        app.count_in(slug, &format!("users WHERE email = '{dee}'"))
            .await,
        0
    );
    assert!(linked_subjects(&app, slug, "strict").await.is_empty());

    // A format that does not exist is refused when saved.
    let bad = create_provider(
        &admin,
        &json!({"name": "bad-format", "provider": {"kind": "saml",
                "idp_metadata_xml": SamlIdp::new().metadata().await,
                "name_id_format": "kerberos"}}),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{}", bad.text());
}

#[tokio::test]
async fn samlify_a_second_saml_implementation_signs_people_in_and_its_forgeries_are_refused() {
    let app = TestApp::spawn().await;
    let slug = "saml-samlify";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    let idp = SamlIdp::samlify();
    let created = create_provider(
        &admin,
        &json!({"name": "samlify", "provider": {"kind": "saml",
                "idp_metadata_xml": idp.metadata().await}}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    let browser = Browser::new(&app);
    idp.register_sp(
        browser
            .tenant_get(slug, "/v1/auth/saml/samlify/metadata")
            .await
            .text(),
    )
    .await;

    // xml-crypto's signature (not libxmlsec1's) verifies; the NameID is the address.
    let ann = idp_address("ann");
    let user = saml_user(&browser, slug, "samlify", &ann, "").await;
    assert_eq!(
        app.count_in(
            slug,
            &format!("users WHERE id = '{user}' AND email = '{ann}'")
        )
        .await,
        1
    );

    // Signed by a key the provider does not have, or changed after signing: refused, and
    // nobody is signed in or created.
    let victim = idp_address("victim");
    for variant in ["foreign_key", "tampered"] {
        let login = idp_address(variant);
        let post = browser
            .saml_response(slug, "samlify", &login, variant, &victim)
            .await;
        let reply = browser.post_to_acs(slug, "samlify", &post, true).await;
        assert_eq!(
            reply.error_code(),
            (StatusCode::UNAUTHORIZED, "sso_rejected"),
            "{variant}: {}",
            reply.text()
        );
    }
    assert_eq!(
        app.count_in(slug, &format!("users WHERE email IN ('{victim}')"))
            .await
            + app
                .count_in(slug, "users WHERE email LIKE 'foreign_key-%'")
                .await,
        0
    );
}

#[tokio::test]
async fn an_idp_that_takes_requests_only_by_http_post_gets_them_posted_and_signed() {
    let app = TestApp::spawn().await;
    let slug = "saml-post-binding";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    let idp = SamlIdp::samlify();
    let metadata = idp.post_only_metadata().await;
    assert!(
        metadata.contains("HTTP-POST") && !metadata.contains("HTTP-Redirect"),
        "{metadata}"
    );
    let created = create_provider(
        &admin,
        &json!({"name": "posted", "provider": {"kind": "saml",
                "idp_metadata_xml": metadata, "sign_authn_requests": true}}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    let browser = Browser::new(&app);
    idp.register_sp(
        browser
            .tenant_get(slug, "/v1/auth/saml/posted/metadata")
            .await
            .text(),
    )
    .await;

    // The start answers a page whose form posts the request to the IdP, and whose policy
    // lets the form go there and nowhere else.
    let page = browser.tenant_get(slug, "/v1/auth/sso/posted/start").await;
    assert_eq!(page.status(), StatusCode::OK, "{}", page.text());
    let policy = page.header("content-security-policy").unwrap().to_owned();
    assert!(
        policy.contains("form-action http://127.0.0.1:18094;")
            && policy.contains("script-src 'sha256-"),
        "{policy}"
    );
    let (action, fields) = Browser::posted_form(&page.text());
    assert_eq!(action, format!("{}/sso/post", idp.url));
    let request = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&fields[0].1)
            .unwrap(),
    )
    .unwrap();
    assert!(request.contains("SignatureValue"), "{request}");

    // The IdP checks the enveloped signature with the certificate in our metadata; the
    // response it sends back signs the person in.
    let post = browser
        .saml_response_posted(&action, &fields, &idp_address("ann"))
        .await
        .unwrap();
    let reply = browser.post_to_acs(slug, "posted", &post, true).await;
    assert_eq!(reply.status(), StatusCode::OK, "{}", reply.text());

    // A request changed after it was signed does not verify: the IdP refuses it.
    let page = browser.tenant_get(slug, "/v1/auth/sso/posted/start").await;
    let (action, mut fields) = Browser::posted_form(&page.text());
    let request = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&fields[0].1)
            .unwrap(),
    )
    .unwrap();
    let changed = request.replacen("ForceAuthn", "IsPassive", 1);
    let changed = if changed == request {
        request.replacen("Version=\"2.0\"", "Version=\"2.0\" ForceAuthn=\"true\"", 1)
    } else {
        changed
    };
    assert_ne!(changed, request);
    fields[0].1 = base64::engine::general_purpose::STANDARD.encode(changed);
    let refused = browser
        .saml_response_posted(&action, &fields, &idp_address("ann"))
        .await
        .unwrap_err();
    assert_eq!(refused.0, StatusCode::BAD_REQUEST, "{}", refused.1);
}

#[tokio::test]
async fn signed_authn_requests_verify_at_an_idp_that_checks_them_and_a_changed_one_does_not() {
    let app = TestApp::spawn().await;
    let slug = "saml-signed-requests";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    // The samlify IdP checks the signature of every request whose SP metadata says its
    // requests are signed, with the certificate in that metadata.
    let idp = SamlIdp::samlify();
    let created = create_provider(
        &admin,
        &json!({"name": "signed", "provider": {"kind": "saml",
                "idp_metadata_xml": idp.metadata().await, "sign_authn_requests": true}}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.value()["has_client_secret"], false);
    let browser = Browser::new(&app);
    let metadata = browser
        .tenant_get(slug, "/v1/auth/saml/signed/metadata")
        .await
        .text();
    assert!(
        metadata.contains("AuthnRequestsSigned=\"true\""),
        "{metadata}"
    );
    // The key signs, and (as any key of a provider's) is offered for encryption too.
    assert!(
        metadata.contains("use=\"signing\"") && metadata.contains("use=\"encryption\""),
        "{metadata}"
    );
    idp.register_sp(metadata.clone()).await;

    let start = browser.start(slug, "signed").await;
    assert!(
        start.contains("&Signature=") && start.contains("&SigAlg="),
        "{start}"
    );
    saml_user(&browser, slug, "signed", &idp_address("ann"), "").await;

    // A request changed on the way (its RelayState) no longer verifies: the IdP refuses it.
    let start = browser.start(slug, "signed").await;
    let relay = start
        .split('&')
        .find(|pair| pair.starts_with("RelayState="))
        .unwrap()
        .to_owned();
    let changed = start.replace(&relay, "RelayState=somebody-elses");
    let refused = reqwest::get(&changed).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // The key survives a replace that keeps signing; turned off, the metadata says so.
    let mut body = json!({"name": "signed", "provider": {"kind": "saml",
        "idp_metadata_xml": idp.metadata().await, "sign_authn_requests": true}});
    let again = replaced_metadata(&admin, &browser, slug, &body).await;
    // The same certificate (the document also carries a validUntil of now + 48 h, which moves
    // with the clock).
    let certificate = |xml: &str| {
        let start = xml.find("<ds:X509Certificate>").expect("a certificate");
        let end = xml.find("</ds:X509Certificate>").expect("a certificate");
        xml[start..end].to_owned()
    };
    assert_eq!(certificate(&again), certificate(&metadata));
    body["provider"]["sign_authn_requests"] = json!(false);
    let unsigned = replaced_metadata(&admin, &browser, slug, &body).await;
    assert!(
        unsigned.contains("AuthnRequestsSigned=\"false\""),
        "{unsigned}"
    );
    assert!(!unsigned.contains("X509Certificate"), "{unsigned}");
    assert!(!browser.start(slug, "signed").await.contains("Signature="));
}

/// Replaces the provider `body` names at `slug` with `body` (asserted to succeed); its SP
/// metadata then.
async fn replaced_metadata(
    admin: &Client,
    browser: &Browser,
    slug: &str,
    body: &serde_json::Value,
) -> String {
    let name = body["name"].as_str().unwrap();
    let replaced = admin
        .put(format!("/v1/admin/sso/{name}"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK, "{}", replaced.text());
    browser
        .tenant_get(slug, &format!("/v1/auth/saml/{name}/metadata"))
        .await
        .text()
}

/// The `<md:KeyDescriptor use="…">` blocks of SP metadata, by use.
fn key_uses(metadata: &str) -> Vec<String> {
    metadata
        .split("<md:KeyDescriptor use=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn encrypted_assertions_from_two_implementations_sign_people_in_and_weak_or_unsigned_ones_do_not(
) {
    let app = TestApp::spawn().await;
    let slug = "saml-encrypted";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    let view = saml_provider(
        &app,
        slug,
        &admin,
        "sealed",
        json!({"require_encrypted_assertions": true}),
    )
    .await;
    assert_eq!(view["provider"]["require_encrypted_assertions"], true);
    assert_eq!(view["has_client_secret"], false);
    // A node process of its own, whose log the test reads.
    let node = NodeProcess::start(&app, free_port(), &[]).await;
    let browser = Browser::at(&node.url);

    // The metadata offers the provider's certificate for encryption only (requests are not
    // signed), with the algorithms the SP decrypts, GCM first.
    let metadata = browser
        .tenant_get(slug, "/v1/auth/saml/sealed/metadata")
        .await
        .text();
    assert_eq!(key_uses(&metadata), ["encryption"], "{metadata}");
    assert!(
        metadata.contains("AuthnRequestsSigned=\"false\"")
            && metadata.find("xmlenc11#aes256-gcm") < metadata.find("xmlenc#aes256-cbc"),
        "{metadata}"
    );

    // xmlsec1 (through pysaml2): a signed assertion encrypted with AES-256-CBC in an unsigned
    // Response (Entra ID's and ADFS's shape), and an unsigned one encrypted with AES-128-GCM
    // in a signed Response.
    for variant in ["encrypted", "encrypted_signed_response"] {
        let login = idp_address(variant);
        let user = saml_user(&browser, slug, "sealed", &login, variant).await;
        assert_eq!(
            app.count_in(slug,
                &format!("users WHERE id = '{user}' AND email = '{login}' AND display_name = 'User {login}'")
            )
            .await,
            1,
            "{variant}"
        );
    }

    // Refused, and the log says why: an assertion in plain text (the provider requires
    // encryption), one nobody signed (anyone can encrypt to our public key), Triple DES,
    // RSA PKCS#1 v1.5 key transport, and cipher text changed after the Response was signed.
    for (variant, logged) in [
        ("", "this one came in plain text"),
        (
            "encrypted_unsigned",
            "missing signature: neither the Response nor its Assertion is signed",
        ),
        (
            "encrypted_3des",
            "Triple DES (xmlenc#tripledes-cbc) is refused",
        ),
        (
            "encrypted_rsa15",
            "RSA PKCS#1 v1.5 (xmlenc#rsa-1_5) is refused",
        ),
        (
            "encrypted_tampered",
            "the encrypted assertion does not decrypt",
        ),
    ] {
        let refusal = Refusal {
            slug,
            provider: "sealed",
            variant,
            logged,
        };
        let login = idp_address(&format!("refused{variant}"));
        refusal.assert(&app, &browser, &node, &login).await;
    }

    // npm samlify (xml-encryption: its KeyInfo in the default namespace), signing the
    // assertion and then encrypting it with AES-256-CBC, or AES-256-GCM.
    let samlify = SamlIdp::samlify();
    let created = create_provider(
        &admin,
        &json!({"name": "samlify-sealed", "provider": {"kind": "saml",
                "idp_metadata_xml": samlify.metadata().await,
                "require_encrypted_assertions": true}}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    samlify
        .register_sp(
            browser
                .tenant_get(slug, "/v1/auth/saml/samlify-sealed/metadata")
                .await
                .text(),
        )
        .await;
    for variant in ["encrypted", "encrypted_gcm"] {
        let login = idp_address(&format!("samlify-{variant}"));
        let user = saml_user(&browser, slug, "samlify-sealed", &login, variant).await;
        assert_eq!(
            app.count_in(
                slug,
                &format!("users WHERE id = '{user}' AND email = '{login}'")
            )
            .await,
            1,
            "{variant}"
        );
    }

    // Encryption turned off: the key is gone with it, and an IdP that still encrypts to the
    // old certificate is refused.
    let mut body = json!({"name": "sealed", "provider": {"kind": "saml",
        "idp_metadata_xml": SamlIdp::new().metadata().await}});
    let plain = replaced_metadata(&admin, &browser, slug, &body).await;
    assert!(key_uses(&plain).is_empty(), "{plain}");
    let keyless = Refusal {
        slug,
        provider: "sealed",
        variant: "encrypted",
        logged: "the provider has no key to open it",
    };
    keyless
        .assert(&app, &browser, &node, &idp_address("keyless"))
        .await;
    // And back on: a new key, in new metadata.
    body["provider"]["require_encrypted_assertions"] = json!(true);
    let renewed = replaced_metadata(&admin, &browser, slug, &body).await;
    assert_eq!(key_uses(&renewed), ["encryption"]);
    assert_ne!(
        renewed.split("X509Certificate>").nth(1),
        metadata.split("X509Certificate>").nth(1)
    );
}
