//! OIDC as providers configure it: ID tokens signed with ES256, PS256 or EdDSA as well as
//! RS256 (an explicit allow-list per provider, never HMAC), the client secret sent in the form
//! body where the IdP wants `client_secret_post`, and discovery documents and keys cached per
//! issuer, fetched again when a token names a key the cache lacks (a rotation).

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::{metric_value, metrics_text, TestApp};

use super::*;

/// A provider `name` at `slug` with its own client at the test IdP, registered with
/// `registration` (client metadata) and configured with `settings` (merged into
/// `provider`); what the IdP registered.
async fn provider_with(
    slug: &str,
    admin: &Client,
    name: &str,
    registration: Value,
    settings: Value,
) -> RegisteredClient {
    let idp = OidcProvider::new();
    let client = idp
        .register_with(
            &[format!("{}/v1/auth/sso/{name}/callback", tenant_base(slug))],
            registration,
        )
        .await;
    let mut provider = json!({
        "kind": "oidc",
        "issuer": idp.issuer,
        "client_id": client.client_id,
        "scopes": ["email", "profile"],
    });
    if let (Value::Object(provider), Value::Object(settings)) = (&mut provider, settings) {
        provider.extend(settings);
    }
    let created = create_provider(
        admin,
        &json!({"name": name, "provider": provider, "client_secret": client.client_secret}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    client
}

fn refused(reply: &Reply) {
    assert_eq!(
        reply.error_code(),
        (StatusCode::UNAUTHORIZED, "sso_rejected"),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn id_tokens_signed_with_each_default_algorithm_sign_in_and_others_are_refused() {
    let app = TestApp::spawn().await;
    let slug = "oidc-algs";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;

    // The default list takes what Okta, Entra ID, Google and Keycloak sign with.
    for (name, algorithm) in [
        ("es", "ES256"),
        ("ps", "PS256"),
        ("ed", "EdDSA"),
        ("rs", "RS256"),
    ] {
        provider_with(
            slug,
            &admin,
            name,
            json!({"id_token_signed_response_alg": algorithm}),
            json!({}),
        )
        .await;
        let login = idp_address(name);
        let signed_in = oidc_sign_in(&app, slug, name, &login).await;
        assert_eq!(
            claims(tokens_of(&signed_in).access_token.expose())["amr"],
            json!(["oidc"]),
            "{algorithm}"
        );
    }

    // A provider narrowed to RS256 refuses an ES256 token, and creates no user.
    provider_with(
        slug,
        &admin,
        "rs-only",
        json!({"id_token_signed_response_alg": "ES256"}),
        json!({"id_token_algorithms": ["RS256"]}),
    )
    .await;
    let login = idp_address("narrowed");
    refused(&oidc_sign_in(&app, slug, "rs-only", &login).await);

    // A token signed with the client secret (HS256) is refused whatever the list says: the
    // secret is no key of the issuer's.
    let hmac = provider_with(slug, &admin, "hmac", json!({}), json!({})).await;
    OidcProvider::new()
        .tamper_with(&hmac.client_id, json!({"hmac": true}))
        .await;
    refused(&oidc_sign_in(&app, slug, "hmac", &idp_address("hmac")).await);
    assert_eq!(
        app.count_in(
            slug,
            "users WHERE email LIKE 'narrowed-%' OR email LIKE 'hmac-%'"
        )
        .await,
        0
    );

    // Lists that cannot be right are refused when saved, and nothing is saved.
    for bad in [json!(["HS256"]), json!(["none"]), json!([]), json!("RS256")] {
        let reply = create_provider(
            &admin,
            &json!({"name": "bad-algs", "provider": {"kind": "oidc",
                    "issuer": oidc_issuer(), "client_id": "x", "id_token_algorithms": bad}}),
        )
        .await;
        assert_eq!(
            reply.status(),
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.text()
        );
    }
    assert_eq!(
        app.count_in(slug, "sso_providers WHERE name = 'bad-algs'")
            .await,
        0
    );
}

#[tokio::test]
async fn the_client_secret_goes_where_the_provider_says() {
    let app = TestApp::spawn().await;
    let slug = "oidc-auth";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    let idp = OidcProvider::new();

    // Unset: HTTP Basic, since the test IdP's discovery lists it; set: as set.
    for (name, setting, expected) in [
        ("default", json!({}), "client_secret_basic"),
        (
            "basic",
            json!({"token_endpoint_auth": "client_secret_basic"}),
            "client_secret_basic",
        ),
        (
            "post",
            json!({"token_endpoint_auth": "client_secret_post"}),
            "client_secret_post",
        ),
    ] {
        let registration = json!({"token_endpoint_auth_method": expected});
        let client = provider_with(slug, &admin, name, registration, setting).await;
        tokens_of(&oidc_sign_in(&app, slug, name, &idp_address(name)).await);
        assert_eq!(
            idp.token_auth_of(&client.client_id).await.as_deref(),
            Some(expected),
            "{name}"
        );
    }
    let view: Value = admin.get("/v1/admin/sso/post").ok().await.unwrap();
    assert_eq!(
        view["provider"]["token_endpoint_auth"],
        "client_secret_post"
    );

    // client_secret_jwt is not offered, nor made-up methods: refused when saved.
    for method in ["client_secret_jwt", "tls_client_auth"] {
        let bad = create_provider(
            &admin,
            &json!({"name": "jwt", "provider": {"kind": "oidc", "issuer": oidc_issuer(),
                    "client_id": "x", "token_endpoint_auth": method}}),
        )
        .await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{}", bad.text());
    }
}

/// How many times this node fetched `document` (`discovery`, `jwks`) from OpenID providers.
async fn fetches(app: &TestApp, document: &str) -> f64 {
    let metrics = metrics_text(&app.http, &app.data_url).await;
    metric_value(
        &metrics,
        &format!("tenantry_sso_idp_fetches_total{{document=\"{document}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn discovery_and_keys_are_fetched_once_and_again_when_the_idp_rotates_its_key() {
    let app = TestApp::spawn().await;
    let slug = "oidc-cache";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    app.set_quotas(slug, json!({"max_users": 100})).await;
    let client = provider_with(slug, &admin, "corp", json!({}), json!({})).await;
    let idp = OidcProvider::new();

    // Three sign-ins (a start and a callback each): one discovery, one JWKS.
    for person in ["ann", "bob", "cy"] {
        tokens_of(&oidc_sign_in(&app, slug, "corp", &idp_address(person)).await);
    }
    assert_eq!(fetches(&app, "discovery").await, 1.0);
    assert_eq!(fetches(&app, "jwks").await, 1.0);

    // The IdP publishes a new key and signs with it: the cached keys lack it, so the node
    // fetches them once more and the sign-in works.
    idp.rotate_key().await;
    idp.tamper_with(&client.client_id, json!({"rotated_key": true}))
        .await;
    tokens_of(&oidc_sign_in(&app, slug, "corp", &idp_address("dee")).await);
    assert_eq!(fetches(&app, "discovery").await, 2.0);
    assert_eq!(fetches(&app, "jwks").await, 2.0);

    // A key id nobody publishes, right after: refused, and no third fetch (one forced
    // refresh a minute per issuer).
    idp.tamper_with(
        &client.client_id,
        json!({"kid": "made-up", "foreign_key": true}),
    )
    .await;
    refused(&oidc_sign_in(&app, slug, "corp", &idp_address("eve")).await);
    assert_eq!(fetches(&app, "jwks").await, 2.0);
    // The cached keys still sign people in, without a fetch.
    tokens_of(&oidc_sign_in(&app, slug, "corp", &idp_address("fay")).await);
    assert_eq!(fetches(&app, "discovery").await, 2.0);
    assert_eq!(fetches(&app, "jwks").await, 2.0);
}

#[tokio::test]
async fn a_signed_userinfo_is_verified_and_read() {
    let app = TestApp::spawn().await;
    let slug = "oidc-jwt-userinfo";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    // The IdP answers userinfo as a JWT (`application/jwt`) signed with its key; the name is
    // only there (the ID token carries the subject alone).
    provider_with(
        slug,
        &admin,
        "signed",
        json!({"userinfo_signed_response_alg": "RS256"}),
        json!({}),
    )
    .await;
    let login = idp_address("signed");
    OidcProvider::new()
        .set_account(&login, "Signed Person", &[])
        .await;
    let signed_in = oidc_sign_in(&app, slug, "signed", &login).await;
    let me: Value = session_of(&app, slug, &signed_in)
        .get("/v1/me")
        .ok()
        .await
        .unwrap();
    assert_eq!(me["display_name"], "Signed Person", "{me}");
}

#[tokio::test]
async fn an_oauth2_provider_with_an_emails_endpoint_gives_the_primary_verified_address() {
    let app = TestApp::spawn().await;
    let slug = "oauth-emails";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    let idp = OidcProvider::new();
    let client = idp
        .register(&[format!("{}/v1/auth/sso/hub/callback", tenant_base(slug))])
        .await;
    // GitHub's shape: userinfo without an address (no `email` scope), and a list at
    // /user/emails: an unverified one first, the primary verified one, a verified secondary.
    let created = create_provider(
        &admin,
        &json!({"name": "hub", "provider": {
            "kind": "oauth2",
            "authorization_url": format!("{}/auth", idp.issuer),
            "token_url": format!("{}/token", idp.issuer),
            "userinfo_url": format!("{}/me", idp.issuer),
            "emails_url": format!("{}/__github/user/emails", idp.issuer),
            "client_id": client.client_id,
            "scopes": ["openid", "profile"],
            "claims": {"subject": "sub", "email": "email", "name": "name"}},
            "client_secret": client.client_secret}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    let login = idp_address("octo");
    idp.set_account(&login, "Octo Cat", &[]).await;
    tokens_of(&oidc_sign_in(&app, slug, "hub", &login).await);
    assert_eq!(
        app.count_in(
            slug,
            &format!("users WHERE email = '{login}' AND email_verified_at IS NOT NULL")
        )
        .await,
        1
    );
    assert_eq!(
        app.count_in(
            slug,
            "users WHERE email LIKE '%unverified-%' OR email LIKE 'secondary-%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_private_key_jwt_provider_signs_its_token_requests_with_a_key_only_it_holds() {
    let app = TestApp::spawn().await;
    let slug = "oidc-pkjwt";
    let admin = app.tenant_with_admin(slug, &idp_address("owner")).await;
    let idp = OidcProvider::new();
    let browser = Browser::new(&app);
    let redirect = |name: &str| format!("{}/v1/auth/sso/{name}/callback", tenant_base(slug));
    let provider = |name: &str, client_id: &str| {
        json!({"name": name, "provider": {"kind": "oidc", "issuer": idp.issuer,
               "client_id": client_id, "scopes": ["email", "profile"],
               "token_endpoint_auth": "private_key_jwt"}})
    };

    // Saved first (the key is made then), its public key read, a client registered at the
    // IdP with that key, the provider told the client id.
    let mut keys = Vec::new();
    for name in ["signed", "other"] {
        let created = create_provider(&admin, &provider(name, "to-be-registered")).await;
        assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
        let view = created.value();
        assert_eq!(view["has_client_secret"], false);
        let jwks = browser
            .tenant_get(slug, view["client_jwks_path"].as_str().unwrap())
            .await;
        assert_eq!(jwks.status(), StatusCode::OK, "{}", jwks.text());
        let jwks = jwks.value();
        let key = &jwks["keys"][0];
        assert_eq!(
            (key["kty"].as_str(), key["alg"].as_str()),
            (Some("RSA"), Some("RS256"))
        );
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "a private part: {key}"
        );
        keys.push(jwks);
    }
    // "signed" registers its own key; "other" registers signed's key, not its own.
    for (name, jwks) in [("signed", &keys[0]), ("other", &keys[0])] {
        let client = idp
            .register_with(
                &[redirect(name)],
                json!({"token_endpoint_auth_method": "private_key_jwt",
                       "token_endpoint_auth_signing_alg": "RS256", "jwks": jwks}),
            )
            .await;
        let replaced = admin
            .put(format!("/v1/admin/sso/{name}"))
            .json(&provider(name, &client.client_id))
            .send()
            .await
            .unwrap();
        assert_eq!(replaced.status(), StatusCode::OK, "{}", replaced.text());
        if name == "signed" {
            tokens_of(&oidc_sign_in(&app, slug, name, &idp_address("pk")).await);
            assert_eq!(
                idp.token_auth_of(&client.client_id).await.as_deref(),
                Some("private_key_jwt")
            );
        } else {
            // Its own key does not match what the IdP holds: the token request is refused.
            refused(&oidc_sign_in(&app, slug, name, &idp_address("nokey")).await);
        }
    }
    // The key survived the replace: the published key is still the one registered.
    let again = browser
        .tenant_get(slug, "/v1/auth/sso/signed/jwks")
        .await
        .value();
    assert_eq!(again, keys[0]);

    // No client secret with private_key_jwt; no JWKS for a provider without it.
    let mut with_secret = provider("secret", "x");
    with_secret["client_secret"] = json!("s3cret");
    let refused_secret = create_provider(&admin, &with_secret).await;
    assert_eq!(
        refused_secret.status(),
        StatusCode::BAD_REQUEST,
        "{}",
        refused_secret.text()
    );
    oidc_provider(slug, &admin, "plain", json!({})).await;
    let none = browser.tenant_get(slug, "/v1/auth/sso/plain/jwks").await;
    assert_eq!(none.status(), StatusCode::NOT_FOUND);
}
