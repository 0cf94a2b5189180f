//! The tenant admins' SSO API: who may use it, what it refuses, and that client secrets are
//! sealed and never returned.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::TestApp;

use super::*;

fn oidc_body(name: &str) -> Value {
    json!({
        "name": name,
        "provider": {
            "kind": "oidc",
            "issuer": oidc_issuer(),
            "client_id": "tenantry-test",
        },
        "client_secret": "the-very-secret-client-secret",
        "domains": [{"domain": "Corp.Example"}],
    })
}

#[tokio::test]
async fn admins_manage_providers_and_secrets_stay_sealed() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-admin", &idp_address("owner"))
        .await;

    let created = create_provider(&admin, &oidc_body("corp")).await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    let body = created.text();
    assert!(!body.contains("the-very-secret-client-secret"));
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["has_client_secret"], true);
    assert_eq!(view["kind"], "oidc");
    assert_eq!(
        view["domains"],
        json!([{"domain": "corp.example", "require_sso": false}])
    );

    // Stored sealed (AES-GCM under the tenant's data key), not in clear.
    let sealed: Vec<u8> = app
        .superuser()
        .await
        .query_one(
            "SELECT client_secret FROM tenant_sso_admin.sso_providers WHERE name = 'corp'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!sealed
        .windows(b"very-secret".len())
        .any(|window| window == b"very-secret"));

    let listed = admin.get("/v1/admin/sso").send().await.unwrap().text();
    assert!(listed.contains("\"corp\"") && !listed.contains("very-secret"));

    // Same name again: 409; the domain bound to another provider: 409.
    let again = create_provider(&admin, &oidc_body("corp")).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let other = create_provider(&admin, &oidc_body("corp-two")).await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    assert_eq!(
        other.error_code(),
        (StatusCode::CONFLICT, "sso_domain_taken")
    );
    assert_eq!(app.count_in("sso-admin", "sso_providers").await, 1);

    let deleted = admin.delete("/v1/admin/sso/corp").send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = admin.get("/v1/admin/sso/corp").send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.count_in("sso-admin", "sso_domains").await, 0);
}

#[tokio::test]
async fn bad_provider_configurations_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-bad", &idp_address("owner"))
        .await;
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut bad_name = oidc_body("Corp/../x");
    bad_name["domains"] = json!([]);
    cases.push((
        "a name that is not a URL segment",
        bad_name,
        "invalid_sso_config",
    ));
    let mut plain_http = oidc_body("corp");
    plain_http["provider"]["issuer"] = json!("http://idp.example.com");
    cases.push((
        "an issuer over plain http",
        plain_http,
        "invalid_sso_config",
    ));
    let mut no_secret = oidc_body("corp");
    no_secret.as_object_mut().unwrap().remove("client_secret");
    cases.push((
        "an OIDC provider without a secret",
        no_secret,
        "invalid_sso_config",
    ));
    let mut owner = oidc_body("corp");
    owner["users"] = json!({"role_mapping": {"admins": "owner"}});
    cases.push(("a mapping to owner", owner, "invalid_sso_config"));
    let mut unknown_role = oidc_body("corp");
    unknown_role["users"] = json!({"default_role": "emperor"});
    cases.push(("an unknown role", unknown_role, "unknown_role"));
    let mut unknown_field = oidc_body("corp");
    unknown_field["provider"]["surprise"] = json!(true);
    cases.push(("an unknown field", unknown_field, "invalid_json"));
    let mut bad_domain = oidc_body("corp");
    bad_domain["domains"] = json!([{"domain": "not a domain"}]);
    cases.push(("a bad domain", bad_domain, "invalid_sso_config"));
    cases.push((
        "a SAML provider without a signing certificate",
        json!({
            "name": "saml-nocert",
            "provider": {
                "kind": "saml",
                "idp_entity_id": "https://idp.example.com",
                "idp_sso_url": "https://idp.example.com/sso",
            },
        }),
        "invalid_sso_config",
    ));
    cases.push((
        "SAML metadata without a signing certificate",
        json!({
            "name": "saml-nocert",
            "provider": {
                "kind": "saml",
                "idp_metadata_xml": "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"https://idp.example.com\"><md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"><md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"https://idp.example.com/sso\"/></md:IDPSSODescriptor></md:EntityDescriptor>",
            },
        }),
        "invalid_sso_config",
    ));
    for (case, body, expected) in cases {
        let refused = create_provider(&admin, &body).await;
        assert_eq!(
            refused.error_code(),
            (StatusCode::BAD_REQUEST, expected),
            "{case}: {}",
            refused.text()
        );
    }
    assert_eq!(app.count_in("sso-bad", "sso_providers").await, 0);
}

#[tokio::test]
async fn only_holders_of_sso_permissions_see_or_change_providers() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-rbac", &idp_address("owner"))
        .await;
    // A member signs in through SSO (default role member) and tries the admin API.
    oidc_provider("sso-rbac", &admin, "corp", json!({})).await;
    let signed_in = oidc_sign_in(&app, "sso-rbac", "corp", &idp_address("member")).await;
    let member = session_of(&app, "sso-rbac", &signed_in);
    let listed = member.get("/v1/admin/sso").send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::FORBIDDEN);
    let created = create_provider(&member, &oidc_body("mine")).await;
    assert_eq!(created.status(), StatusCode::FORBIDDEN);
    let anonymous = member
        .anonymous()
        .get("/v1/admin/sso")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.count_in("sso-rbac", "sso_providers").await, 1);
}
