//! OIDC and OAuth2 sign-ins that should work, through the real oidc-provider.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::client::AuditQuery;
use tenantry_tests::{TestApp, PASSWORD};

use super::*;

#[tokio::test]
async fn oidc_sign_in_creates_the_user_and_gives_tokens_like_a_password_sign_in() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-oidc", &idp_address("owner"))
        .await;
    oidc_provider("sso-oidc", &admin, "corp", json!({})).await;
    let login = idp_address("ada");
    OidcProvider::new()
        .set_account(&login, "Ada Lovelace", &[])
        .await;

    let response = oidc_sign_in(&app, "sso-oidc", "corp", &login).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let tokens = tokens_of(&response);
    let claims = claims(tokens.access_token.expose());
    assert_eq!(claims["amr"], json!(["oidc"]));
    assert_eq!(claims["idp"], "corp");
    assert_eq!(claims["roles"], json!(["member"]));

    // The token is an ordinary Tenantry token: /v1/me answers for the new user.
    let acme = app.tenant("sso-oidc");
    let me = app
        .as_bearer("sso-oidc", tokens.access_token.expose())
        .me()
        .get()
        .await
        .unwrap();
    assert_eq!(me.email, login);
    assert_eq!(me.display_name, "Ada Lovelace");

    // The refresh token works, and the refreshed token still says how the user signed in.
    let refreshed = acme
        .auth()
        .refresh(tokens.refresh_token.expose())
        .await
        .unwrap();
    let claims = super::claims(refreshed.access_token.expose());
    assert_eq!(claims["idp"], "corp");
    assert_eq!(claims["amr"], json!(["oidc"]));

    // The sign-in is in the attempt log; the user has no password.
    assert_eq!(
        app.count_in("sso-oidc",
            &format!("login_attempts WHERE email = '{login}' AND method = 'oidc' AND outcome = 'success'")
        )
        .await,
        1
    );
    let password_login = acme
        .auth()
        .login(&login, "any password at all")
        .await
        .unwrap_err();
    assert_eq!(password_login.status(), Some(StatusCode::UNAUTHORIZED));
}

#[tokio::test]
async fn later_sign_ins_update_the_name_and_the_roles_groups_map_to() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-groups", &idp_address("owner"))
        .await;
    oidc_provider(
        "sso-groups",
        &admin,
        "corp",
        json!({"default_role": "viewer", "role_mapping": {"engineering": "developer"}}),
    )
    .await;
    let idp = OidcProvider::new();
    let login = idp_address("grace");
    idp.set_account(&login, "Grace", &["engineering"]).await;

    let first = tokens_of(&oidc_sign_in(&app, "sso-groups", "corp", &login).await);
    assert_eq!(
        claims(first.access_token.expose())["roles"],
        json!(["developer"])
    );

    // Left the group and changed name at the IdP: the next sign-in follows.
    idp.set_account(&login, "Grace Hopper", &["sales"]).await;
    let second = tokens_of(&oidc_sign_in(&app, "sso-groups", "corp", &login).await);
    assert_eq!(claims(second.access_token.expose())["roles"], json!([]));
    let me = app
        .as_bearer("sso-groups", second.access_token.expose())
        .me()
        .get()
        .await
        .unwrap();
    assert_eq!(me.display_name, "Grace Hopper");
    assert_eq!(
        app.count_in("sso-groups", &format!("users WHERE email = '{login}'"))
            .await,
        1
    );
}

#[tokio::test]
async fn an_existing_password_user_is_linked_only_when_the_tenant_allows_it() {
    let app = TestApp::spawn().await;
    let owner = idp_address("owner");
    let admin = app.tenant_with_admin("sso-link", &owner).await;
    // A second, password user of the same address as an IdP account.
    let login = idp_address("linus");
    let invited = admin.users().invite(&login, &["member"]).await.unwrap();
    oidc_provider("sso-link", &admin, "corp", json!({})).await;

    let refused = oidc_sign_in(&app, "sso-link", "corp", &login).await;
    assert_eq!(
        refused.error_code(),
        (StatusCode::CONFLICT, "sso_account_exists")
    );
    assert_eq!(app.count_in("sso-link", "sso_identities").await, 0);

    // The tenant opts in: the same sign-in now lands on the existing user.
    let mut provider: Value = admin.get("/v1/admin/sso/corp").ok().await.unwrap();
    let replaced = admin
        .put("/v1/admin/sso/corp")
        .json(&json!({
            "name": "corp",
            "provider": provider["provider"].take(),
            "users": {"link_existing_users": true},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK, "{}", replaced.text());
    let linked = oidc_sign_in(&app, "sso-link", "corp", &login).await;
    assert_eq!(linked.status(), StatusCode::OK, "{}", linked.text());
    let tokens = tokens_of(&linked);
    let subject = claims(tokens.access_token.expose())["sub"].clone();
    assert_eq!(subject, invited.id.to_string());
}

#[tokio::test]
async fn oauth2_provider_signs_users_in_through_its_userinfo() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-oauth", &idp_address("owner"))
        .await;
    let idp = OidcProvider::new();
    let client = idp
        .register(&[format!(
            "{}/v1/auth/sso/hub/callback",
            tenant_base("sso-oauth")
        )])
        .await;
    let created = create_provider(
        &admin,
        &json!({
            "name": "hub",
            "provider": {
                "kind": "oauth2",
                "authorization_url": format!("{}/auth", idp.issuer),
                "token_url": format!("{}/token", idp.issuer),
                "userinfo_url": format!("{}/me", idp.issuer),
                "client_id": client.client_id,
                "scopes": ["openid", "email", "profile"],
                "claims": {"subject": "sub", "email": "email", "name": "name"},
            },
            "client_secret": client.client_secret,
        }),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    let login = idp_address("octo");
    idp.set_account(&login, "Octo Cat", &[]).await;

    let response = oidc_sign_in(&app, "sso-oauth", "hub", &login).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    let tokens = tokens_of(&response);
    let claims = claims(tokens.access_token.expose());
    assert_eq!(claims["amr"], json!(["oauth2"]));
    assert_eq!(claims["idp"], "hub");
    assert_eq!(
        app.count_in(
            "sso-oauth",
            &format!("users WHERE email = '{login}' AND display_name = 'Octo Cat'")
        )
        .await,
        1
    );
}

#[tokio::test]
async fn discovery_names_the_provider_and_required_sso_refuses_passwords() {
    let app = TestApp::spawn().await;
    // The owner's address is at the domain that will require SSO.
    let owner = idp_address("owner");
    let admin = app.tenant_with_admin("sso-disc", &owner).await;
    oidc_provider("sso-disc", &admin, "corp", json!({})).await;

    let disc = app.tenant("sso-disc");
    let discover = |email: String| {
        let disc = &disc;
        async move {
            let reply = disc
                .post("/v1/auth/sso/discover")
                .json(&json!({"email": email}))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), StatusCode::OK);
            reply.value()
        }
    };
    let found = discover("someone@CORP.example".to_owned()).await;
    assert_eq!(found["sso"], true);
    assert_eq!(found["provider"], "corp");
    assert_eq!(found["start_url"], "/v1/auth/sso/corp/start");
    assert_eq!(found["sso_required"], false);
    assert_eq!(
        discover("someone@elsewhere.example".to_owned()).await["sso"],
        false
    );
    let bad = disc
        .post("/v1/auth/sso/discover")
        .json(&json!({"email": "not an address"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // Passwords still work until the domain requires SSO.
    app.signed_in("sso-disc", &owner, PASSWORD).await;
    let mut provider: Value = admin.get("/v1/admin/sso/corp").ok().await.unwrap();
    let replaced = admin
        .put("/v1/admin/sso/corp")
        .json(&json!({
            "name": "corp",
            "provider": provider["provider"].take(),
            "domains": [{"domain": "corp.example", "require_sso": true}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK, "{}", replaced.text());
    assert_eq!(discover(owner.clone()).await["sso_required"], true);

    let refused = disc.auth().login(&owner, PASSWORD).await.unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(StatusCode::FORBIDDEN), Some("sso_required"))
    );
    let details = refused.api().unwrap().details.clone().unwrap_or_default();
    assert_eq!(details["start_url"], "/v1/auth/sso/corp/start");
    // Refusals do not count toward the lockout: still refused for SSO, not locked.
    for _ in 0..6 {
        let again = disc.auth().login(&owner, "wrong").await.unwrap_err();
        assert_eq!(again.status(), Some(StatusCode::FORBIDDEN));
    }
}

#[tokio::test]
async fn a_first_sso_sign_in_in_a_full_tenant_is_refused_and_creates_no_user() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-full", &idp_address("owner"))
        .await;
    oidc_provider("sso-full", &admin, "corp", json!({})).await;
    // One seat, taken by the admin.
    app.operator_api()
        .tenants()
        .set_quotas("sso-full", &json!({"max_users": 1}))
        .await
        .unwrap();
    let key = data_plane::tenancy::resolve::TenantKey::Slug(
        shared::tenant::TenantSlug::parse("sso-full").unwrap(),
    );
    let applied = TestApp::eventually(std::time::Duration::from_secs(1), || async {
        app.data
            .registry
            .lookup(&key)
            .await
            .ok()
            .flatten()
            .is_some_and(|served| served.quotas.max_users == 1)
    })
    .await;
    assert!(applied.is_some(), "the data plane did not reload the quota");
    let login = idp_address("newcomer");
    OidcProvider::new()
        .set_account(&login, "New Comer", &[])
        .await;

    let refused = oidc_sign_in(&app, "sso-full", "corp", &login).await;
    assert_eq!(
        refused.error_code(),
        (StatusCode::FORBIDDEN, "quota_exceeded")
    );
    assert_eq!(refused.value()["error"]["details"]["quota"], "max_users");
    assert_eq!(app.count_in("sso-full", "users").await, 1);
    assert_eq!(app.count_in("sso-full", "sso_identities").await, 0);
}

#[tokio::test]
async fn sso_provider_changes_and_sso_sign_ins_are_audited() {
    let app = TestApp::spawn().await;
    let admin = app
        .tenant_with_admin("sso-audit", &idp_address("owner"))
        .await;
    let tenant = app.tenant_id("sso-audit").await;
    oidc_provider("sso-audit", &admin, "corp", json!({})).await;
    let login = idp_address("grace");
    OidcProvider::new()
        .set_account(&login, "Grace Hopper", &[])
        .await;
    let response = oidc_sign_in(&app, "sso-audit", "corp", &login).await;
    assert_eq!(response.status(), StatusCode::OK);

    let limit = std::time::Duration::from_secs(10);
    assert_eq!(
        app.wait_for_audit_events(&tenant, "sso.create", 1, limit)
            .await,
        (1, 1)
    );
    // The callback is a GET, and it signs a user in: it is audited like a password sign-in.
    assert_eq!(
        app.wait_for_audit_events(&tenant, "auth.sso_login", 1, limit)
            .await,
        (1, 1)
    );
    let page = admin
        .audit(&AuditQuery {
            action: Some("auth.sso_login".to_owned()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let event = &page.events[0];
    assert_eq!(event.result, "success");
    assert_eq!(event.resource["type"], "sso_provider");
    assert_eq!(event.resource["id"], "corp");
    assert_eq!(event.http["method"], "GET");
}
