//! Presenting keys: both headers, the secret shown once and stored as a digest, one
//! uniform 401 for keys of other tenants and bad keys, both credentials at once, IP allow-lists.

use super::*;

#[tokio::test]
async fn a_key_works_with_either_header_and_its_secret_is_shown_once_and_stored_as_a_digest() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let created = usage_key(&owner).await;
    let key = created.key.expose();
    assert!(key.starts_with("tnt_"), "{key}");
    assert_eq!(created.view.prefix, &key[4..16]);
    assert_eq!(created.view.status, "active");
    let secret = &key[17..];

    for via in [Via::XApiKey, Via::Bearer] {
        let response = presenting(&app.tenant("acme"), key, via)
            .get("/v1/usage")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{via:?}");
        let usage = response.value();
        assert_eq!(usage["users"]["used"], 1);
        assert_eq!(usage["api_keys"], json!({"used": 1, "limit": 2}));
    }

    // Never shown again: not in the list, not in the key's own view.
    let list_text = owner.get(KEYS).send().await.unwrap().text();
    let one = owner.get(key_path(created.view.id)).send().await.unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let one = one.value();
    assert!(!list_text.contains(secret) && !one.to_string().contains(secret));
    assert!(one.get("key").is_none());
    assert_eq!(one["scopes"], json!(["usage:read"]));
    assert_eq!(one["name"], "usage reader");

    // The tenant's table holds a 32-byte digest, not the secret in any form.
    let schema = app.tenant_schema("acme").await;
    let row = app
        .superuser()
        .await
        .query_one(
            &format!("SELECT secret_hash, row_to_json(k)::text AS stored FROM {schema}.api_keys k"),
            &[],
        )
        .await
        .unwrap();
    let digest: Vec<u8> = row.try_get("secret_hash").unwrap();
    let stored: String = row.try_get("stored").unwrap();
    assert_eq!(digest.len(), 32);
    assert!(!stored.contains(secret) && !stored.contains(key));
    assert_ne!(digest, secret.as_bytes());
}

#[tokio::test]
async fn keys_of_another_tenant_and_bad_keys_get_one_uniform_401() {
    let app = TestApp::spawn().await;
    let acme_owner = app.tenant_with_owner("acme").await;
    let globex_owner = app.tenant_with_owner("globex").await;
    let acme_key = usage_key(&acme_owner).await.key;
    let acme_key = acme_key.expose();
    let globex_key = usage_key(&globex_owner).await.key;
    let globex_key = globex_key.expose();
    assert_eq!(
        usage_with(&app, "acme", acme_key).await.status(),
        StatusCode::OK
    );

    let wrong_secret = format!("{}{}", &acme_key[..17], &globex_key[17..]);
    let mut messages = Vec::new();
    for (slug, key) in [
        ("globex", acme_key),
        ("acme", globex_key),
        ("acme", wrong_secret.as_str()),
        (
            "acme",
            "tnt_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        ("acme", "tnt_short"),
        ("acme", "not a key at all"),
    ] {
        let response = usage_with(&app, slug, key).await;
        assert_eq!(
            response.error_code(),
            (StatusCode::UNAUTHORIZED, "invalid_api_key"),
            "{slug} {key}"
        );
        messages.push(response.error().unwrap().message.clone());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // As a bearer value too.
    let response = app
        .as_bearer("globex", acme_key)
        .get("/v1/usage")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
}

#[tokio::test]
async fn a_key_and_an_access_token_in_one_request_get_400() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let key = usage_key(&owner).await.key;
    let key = key.expose();
    let response = owner
        .get("/v1/usage")
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.error_code(),
        (StatusCode::BAD_REQUEST, "ambiguous_credentials")
    );
    let response = app
        .as_bearer("acme", key)
        .get("/v1/usage")
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_ip_allow_list_admits_only_its_ranges() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let elsewhere = owner
        .api_keys()
        .create(&NewKey::new("office", &["usage:read"]).allowed_ips(&["10.0.0.0/8"]))
        .await
        .unwrap()
        .key;
    let elsewhere = elsewhere.expose();
    let local = owner
        .api_keys()
        .create(
            &NewKey::new("local", &["usage:read"]).allowed_ips(&["127.0.0.0/8", "2001:db8::/32"]),
        )
        .await
        .unwrap();
    assert_eq!(
        local.view.allowed_ips,
        Some(vec!["127.0.0.0/8".to_owned(), "2001:db8::/32".to_owned()])
    );

    for via in [Via::XApiKey, Via::Bearer] {
        let response = presenting(&app.tenant("acme"), elsewhere, via)
            .get("/v1/usage")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.error_code(),
            (StatusCode::FORBIDDEN, "ip_not_allowed"),
            "{via:?}"
        );
    }
    assert_eq!(
        usage_with(&app, "acme", local.key.expose()).await.status(),
        StatusCode::OK
    );
    // A wrong secret learns nothing about the allow-list.
    let wrong = format!("{}{}", &elsewhere[..17], &local.key.expose()[17..]);
    assert_eq!(
        usage_with(&app, "acme", &wrong).await.error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_api_key")
    );
}
