//! The operator's SSO management: `control-plane sso add|list|remove` and
//! `/v1/tenants/{slug}/sso`. A provider the operator adds works for sign-in at the data plane
//! (its secret sealed with the same tenant data key the data plane opens).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::TestApp;

use super::*;

#[tokio::test]
async fn the_operator_adds_lists_and_removes_providers_that_then_sign_users_in() {
    let app = TestApp::spawn().await;
    app.tenant_with_admin("sso-operator", &idp_address("owner"))
        .await;
    let idp = OidcProvider::new();
    let client = idp
        .register(&[format!(
            "{}/v1/auth/sso/corp/callback",
            tenant_base("sso-operator")
        )])
        .await;
    let body = json!({
        "name": "corp",
        "provider": {"kind": "oidc", "issuer": idp.issuer, "client_id": client.client_id},
        "client_secret": client.client_secret,
        "domains": [{"domain": "corp.example", "require_sso": true}],
    });

    // The REST API refuses what the admin API refuses, and adds the provider.
    let mut owner = body.clone();
    owner["users"] = json!({"default_role": "owner"});
    let operator = app.operator_api();
    let refused = operator
        .call(Method::POST, "/v1/tenants/sso-operator/sso")
        .json(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let created = operator
        .call(Method::POST, "/v1/tenants/sso-operator/sso")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    let unknown_tenant = operator
        .call(Method::GET, "/v1/tenants/nobody-here/sso")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_tenant.status(), StatusCode::NOT_FOUND);
    let anonymous = operator
        .client()
        .anonymous()
        .get("/v1/tenants/sso-operator/sso")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The CLI lists it, without the secret.
    let listed = app
        .run_cli(&["control-plane", "sso", "list", "sso-operator"])
        .await
        .unwrap();
    assert!(
        listed.contains("corp\toidc\tenabled\tcorp.example (required)"),
        "{listed}"
    );
    let listed_json = app
        .run_cli(&["control-plane", "sso", "list", "sso-operator", "--json"])
        .await
        .unwrap();
    assert!(!listed_json.contains(&client.client_secret));

    // A user of the bound domain signs in through it at the data plane.
    let response = oidc_sign_in(&app, "sso-operator", "corp", &idp_address("dana")).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());

    // The CLI adds a second provider from a file and removes both.
    let file = std::env::temp_dir().join(format!("tenantry-sso-{}.json", uuid::Uuid::new_v4()));
    let mut second = body.clone();
    second["name"] = json!("corp-two");
    second["domains"] = json!([]);
    std::fs::write(&file, second.to_string()).unwrap();
    let added = app
        .run_cli(&[
            "control-plane",
            "sso",
            "add",
            "sso-operator",
            "--file",
            file.to_str().unwrap(),
        ])
        .await
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(added.contains("corp-two"), "{added}");
    app.run_cli(&["control-plane", "sso", "remove", "sso-operator", "corp-two"])
        .await
        .unwrap();
    let again = app
        .run_cli(&["control-plane", "sso", "remove", "sso-operator", "corp-two"])
        .await;
    let error = format!("{:#}", again.unwrap_err());
    assert!(
        error.contains("no identity provider with this name"),
        "{error}"
    );
    let removed = operator
        .call(Method::DELETE, "/v1/tenants/sso-operator/sso/corp")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let listed: Value = operator
        .call(Method::GET, "/v1/tenants/sso-operator/sso")
        .ok()
        .await
        .unwrap();
    assert_eq!(listed["providers"], json!([]));
}
