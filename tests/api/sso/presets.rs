//! The identity-provider presets (`GET /v1/admin/sso/presets`, and the console wizard that
//! fills its form from them): a provider made from each preset signs people in, with their
//! name and groups mapped, when the local IdP sends what that product sends by default —
//! the OIDC provider its standard claims, the SAML IdP each product's attribute names.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::TestApp;

use super::*;

/// The preset `key` from the list.
fn preset<'a>(presets: &'a Value, key: &str) -> &'a Value {
    presets["presets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|preset| preset["key"] == key)
        .unwrap_or_else(|| panic!("no preset {key}"))
}

#[tokio::test]
async fn a_provider_made_from_each_preset_signs_people_in_with_their_name_and_groups() {
    let app = TestApp::spawn().await;
    let slug = "sso-presets";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    app.set_quotas(slug, json!({"max_users": 100})).await;
    let presets: Value = admin.get("/v1/admin/sso/presets").ok().await.unwrap();
    let keys: Vec<&str> = presets["presets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|preset| preset["key"].as_str().unwrap())
        .collect();
    for expected in [
        "okta",
        "entra",
        "google",
        "keycloak",
        "entra-saml",
        "adfs",
        "keycloak-saml",
        "oidc",
        "saml",
    ] {
        assert!(keys.contains(&expected), "{keys:?}");
    }
    let users = json!({"role_mapping": {"auditors": "manager"}});

    // OpenID Connect presets: the standard claims, as the test provider sends them.
    let oidc = OidcProvider::new();
    for key in ["okta", "entra", "google", "keycloak", "oidc"] {
        let chosen = preset(&presets, key);
        assert_eq!(chosen["saml"], false);
        let client = oidc
            .register(&[format!("{}/v1/auth/sso/{key}/callback", tenant_base(slug))])
            .await;
        let scopes: Vec<&str> = chosen["scopes"].as_str().unwrap().split(' ').collect();
        let created = create_provider(
            &admin,
            &json!({"name": key, "provider": {"kind": "oidc", "issuer": oidc.issuer,
                    "client_id": client.client_id,
                    "scopes": scopes.iter().chain(&["groups"]).collect::<Vec<_>>(),
                    "claims": {"email": chosen["email"], "name": chosen["name"],
                               "groups": chosen["groups"]}},
                    "client_secret": client.client_secret, "users": users}),
        )
        .await;
        assert_eq!(
            created.status(),
            StatusCode::CREATED,
            "{key}: {}",
            created.text()
        );
        let login = idp_address(key);
        oidc.set_account(&login, &format!("Person of {key}"), &["auditors"])
            .await;
        let signed_in = oidc_sign_in(&app, slug, key, &login).await;
        let claims = claims(tokens_of(&signed_in).access_token.expose());
        assert_eq!(claims["roles"], json!(["manager"]), "{key}");
        let me: Value = session_of(&app, slug, &signed_in)
            .get("/v1/me")
            .ok()
            .await
            .unwrap();
        assert_eq!(
            me["display_name"],
            format!("Person of {key}"),
            "{key}: {me}"
        );
    }

    // SAML presets: the test IdP sends the attributes under each product's names.
    let idp = SamlIdp::new();
    let browser = Browser::new(&app);
    for key in ["entra-saml", "adfs", "keycloak-saml", "saml"] {
        let chosen = preset(&presets, key);
        assert_eq!(chosen["saml"], true);
        let attributes = json!({"email": chosen["email"], "name": chosen["name"],
                                "groups": chosen["groups"]});
        saml_provider(&app, slug, &admin, key, json!({"attributes": attributes})).await;
        let login = idp_address(key);
        idp.set_account_with(
            &login,
            json!({"name": format!("Person of {key}"), "groups": ["auditors"],
                   "attribute_names": attributes}),
        )
        .await;
        // ADFS often sends a transient NameID: the user is then known by the address.
        let variant = if key == "adfs" { "transient" } else { "" };
        let post = browser.saml_response(slug, key, &login, variant, "").await;
        let signed_in = browser.post_to_acs(slug, key, &post, true).await;
        let claims = claims(tokens_of(&signed_in).access_token.expose());
        assert_eq!(claims["roles"], json!(["manager"]), "{key}");
        let me: Value = session_of(&app, slug, &signed_in)
            .get("/v1/me")
            .ok()
            .await
            .unwrap();
        assert_eq!(me["email"], login.as_str(), "{key}: {me}");
        assert_eq!(
            me["display_name"],
            format!("Person of {key}"),
            "{key}: {me}"
        );
    }

    // The list is for admins; the name is reserved.
    let member = app
        .tenant(slug)
        .anonymous()
        .get("/v1/admin/sso/presets")
        .send()
        .await
        .unwrap();
    assert_eq!(member.status(), StatusCode::UNAUTHORIZED);
    let taken = create_provider(
        &admin,
        &json!({"name": "presets", "provider": {"kind": "oidc", "issuer": oidc_issuer(),
                "client_id": "x"}}),
    )
    .await;
    assert_eq!(taken.status(), StatusCode::BAD_REQUEST, "{}", taken.text());
}
