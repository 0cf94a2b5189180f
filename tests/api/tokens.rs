//! Access-token misuse: every forged, altered, expired or misdirected token is refused with
//! 401, including tokens signed with the tenant's own private key (loaded through the KEK, as
//! the data plane does) whose claims are wrong. A control case re-signs an unchanged token
//! with that key and is accepted, so the refusals below are the checks at work, not a broken
//! forging harness.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::tenant::Tenant;
use shared::tenant_context::TenantScope;
use tenantry_tests::{Reply, TestApp, PASSWORD};

/// The tenant's active signing key and its id, unsealed with the tenant's data key.
async fn tenant_key(app: &TestApp, tenant: &Tenant) -> (String, EncodingKey) {
    let keys = app
        .data
        .signing_keys
        .for_tenant(
            &app.data.tenant_db,
            &app.data.data_keys,
            &TenantScope::for_tenant(tenant),
        )
        .await
        .unwrap();
    (keys.active.kid.clone(), keys.active.encoding.clone())
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, kid: &str, key: &EncodingKey) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token assembled by hand: any header, any payload, any signature bytes.
fn assemble(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let part = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    format!(
        "{}.{}.{}",
        part(header),
        part(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// `GET /v1/me` at acme presenting `token`, whatever the answer.
async fn me(app: &TestApp, token: &str) -> Reply {
    app.as_bearer("acme", token)
        .get("/v1/me")
        .send()
        .await
        .unwrap()
}

fn with(claims: &Value, field: &str, value: Value) -> Value {
    let mut changed = claims.clone();
    changed[field] = value;
    changed
}

#[tokio::test]
async fn forged_tampered_expired_and_misdirected_access_tokens_get_401() {
    let app = TestApp::spawn().await;
    let acme = app
        .tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let globex = app
        .tenant_with_active_admin("globex", "gus@globex.example", PASSWORD)
        .await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    app.raise_rate_limits("globex").await;
    let token = app
        .sign_in_tokens("acme", "ada@acme.example", PASSWORD)
        .await
        .access_token
        .expose()
        .to_owned();
    let claims = claims_of(&token);
    let (kid, key) = tenant_key(&app, &acme).await;
    let (globex_kid, globex_key) = tenant_key(&app, &globex).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    // Control: the genuine token, and the same claims re-signed with the tenant's key.
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK);
    assert_eq!(
        me(&app, &sign(&claims, &kid, &key)).await.status(),
        StatusCode::OK
    );

    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
    let forged: Vec<(&str, String)> = vec![
        (
            "alg none, no signature",
            assemble(
                &json!({"alg": "none", "typ": "JWT", "kid": kid}),
                &claims,
                b"",
            ),
        ),
        (
            "alg none, lower and upper case",
            assemble(
                &json!({"alg": "NONE", "typ": "JWT", "kid": kid}),
                &claims,
                b"",
            ),
        ),
        ("no signature at all", {
            let mut parts: Vec<&str> = token.split('.').collect();
            parts[2] = "";
            parts.join(".")
        }),
        ("payload changed after signing (roles escalated)", {
            let signature = token.split('.').nth(2).unwrap();
            let escalated = with(&claims, "roles", json!(["owner", "admin"]));
            let mut parts: Vec<String> = assemble(&header, &escalated, b"")
                .split('.')
                .map(str::to_owned)
                .collect();
            parts[2] = signature.to_owned();
            parts.join(".")
        }),
        (
            "HS256 keyed with the tenant's public key (algorithm confusion)",
            {
                let jwks: Value = app
                    .tenant("acme")
                    .get("/v1/.well-known/jwks.json")
                    .ok()
                    .await
                    .unwrap();
                let public = URL_SAFE_NO_PAD
                    .decode(jwks["keys"][0]["x"].as_str().unwrap())
                    .unwrap();
                let mut hs = Header::new(Algorithm::HS256);
                hs.kid = Some(kid.clone());
                jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(&public)).unwrap()
            },
        ),
        ("unknown kid", sign(&claims, "no-such-key", &key)),
        ("no kid", {
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).unwrap()
        }),
        (
            "another tenant's key under this tenant's kid",
            sign(&claims, &kid, &globex_key),
        ),
        (
            "another tenant's key and kid",
            sign(&claims, &globex_kid, &globex_key),
        ),
        (
            "expired beyond the leeway",
            sign(
                &with(
                    &with(&claims, "exp", json!(now - 120)),
                    "iat",
                    json!(now - 1000),
                ),
                &kid,
                &key,
            ),
        ),
        (
            "wrong audience",
            sign(
                &with(&claims, "aud", json!("https://globex.tenantry.test")),
                &kid,
                &key,
            ),
        ),
        (
            "wrong issuer",
            sign(
                &with(&claims, "iss", json!("https://evil.example")),
                &kid,
                &key,
            ),
        ),
        (
            "another tenant's id",
            sign(&with(&claims, "tid", json!(globex.id)), &kid, &key),
        ),
        ("no expiry", {
            let mut unbounded = claims.clone();
            unbounded.as_object_mut().unwrap().remove("exp");
            sign(&unbounded, &kid, &key)
        }),
        ("garbage", "eyJhbGciOiJFZERTQSJ9.not-json.sig".to_owned()),
    ];
    for (case, token) in forged {
        assert_eq!(
            me(&app, &token).await.error_code(),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "{case}"
        );
    }

    // Validly signed, but naming a session that does not exist, or another user's session.
    let unknown_session = sign(
        &with(&claims, "sid", json!(uuid::Uuid::now_v7())),
        &kid,
        &key,
    );
    let other_user = sign(
        &with(&claims, "sub", json!(uuid::Uuid::now_v7())),
        &kid,
        &key,
    );
    for (case, token) in [
        ("unknown session", unknown_session),
        ("session of another user", other_user),
    ] {
        assert_eq!(
            me(&app, &token).await.error_code(),
            (StatusCode::UNAUTHORIZED, "session_ended"),
            "{case}"
        );
    }

    // A token minted for acme, presented to globex, is refused there.
    let response = app
        .as_bearer("globex", &token)
        .get("/v1/me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
