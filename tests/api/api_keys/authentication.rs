//! Presenting keys: both headers, the secret shown once and stored as a digest, one
//! uniform 401 for keys of other tenants and bad keys, both credentials at once, IP allow-lists.

use super::*;

#[tokio::test]
async fn a_key_works_with_either_header_and_its_secret_is_shown_once_and_stored_as_a_digest() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let created = usage_key(&app, "acme", &owner).await;
    let key = key_text(&created);
    assert!(key.starts_with("tnt_"), "{key}");
    assert_eq!(created["prefix"].as_str().unwrap(), &key[4..16]);
    assert_eq!(created["status"], "active");
    let secret = &key[17..];

    for via in [Via::XApiKey, Via::Bearer] {
        let response = with_key_on(
            &app,
            &app.data_url,
            Method::GET,
            "acme",
            "/v1/usage",
            &key,
            via,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{via:?}");
        let usage: Value = response.json().await.unwrap();
        assert_eq!(usage["users"]["used"], 1);
        assert_eq!(usage["api_keys"], json!({"used": 1, "limit": 2}));
    }

    // Never shown again: not in the list, not in the key's own view.
    let list = call(&app, Method::GET, "acme", KEYS, &owner, None).await;
    let list_text = list.text().await.unwrap();
    let one = call(&app, Method::GET, "acme", &key_path(&created), &owner, None).await;
    assert_eq!(one.status(), StatusCode::OK);
    let one: Value = one.json().await.unwrap();
    assert!(!list_text.contains(secret) && !one.to_string().contains(secret));
    assert!(one.get("key").is_none());
    assert_eq!(one["scopes"], json!(["usage:read"]));
    assert_eq!(one["name"], "usage reader");

    // The tenant's table holds a 32-byte digest, not the secret in any form.
    let schema = tenant_schema(&app, "acme").await;
    let row = app
        .superuser()
        .await
        .query_one(
            &format!("SELECT secret_hash, row_to_json(k)::text FROM {schema}.api_keys k"),
            &[],
        )
        .await
        .unwrap();
    let digest: Vec<u8> = row.get(0);
    let stored: String = row.get(1);
    assert_eq!(digest.len(), 32);
    assert!(!stored.contains(secret) && !stored.contains(&key));
    assert_ne!(digest, secret.as_bytes());
}

#[tokio::test]
async fn keys_of_another_tenant_and_bad_keys_get_one_uniform_401() {
    let app = TestApp::spawn().await;
    let acme_owner = tenant_with_owner(&app, "acme").await;
    let globex_owner = tenant_with_owner(&app, "globex").await;
    let acme_key = key_text(&usage_key(&app, "acme", &acme_owner).await);
    let globex_key = key_text(&usage_key(&app, "globex", &globex_owner).await);
    assert_eq!(
        usage_with(&app, "acme", &acme_key).await.status(),
        StatusCode::OK
    );

    let wrong_secret = format!("{}{}", &acme_key[..17], &globex_key[17..]);
    let mut messages = Vec::new();
    for (slug, key) in [
        ("globex", acme_key.as_str()),
        ("acme", globex_key.as_str()),
        ("acme", wrong_secret.as_str()),
        (
            "acme",
            "tnt_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        ("acme", "tnt_short"),
        ("acme", "not a key at all"),
    ] {
        let response = usage_with(&app, slug, key).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{slug} {key}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key", "{slug} {key}");
        messages.push(body["error"]["message"].as_str().unwrap().to_owned());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // As a bearer value too.
    let response = with_key_on(
        &app,
        &app.data_url,
        Method::GET,
        "globex",
        "/v1/usage",
        &acme_key,
        Via::Bearer,
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".to_owned())
    );
}

#[tokio::test]
async fn a_key_and_an_access_token_in_one_request_get_400() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let key = key_text(&usage_key(&app, "acme", &owner).await);
    let response = app
        .tenant_get("acme", "/v1/usage")
        .header("X-API-Key", &key)
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::BAD_REQUEST, "ambiguous_credentials".to_owned())
    );
    let response = app
        .tenant_get("acme", "/v1/usage")
        .header("X-API-Key", &key)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_ip_allow_list_admits_only_its_ranges() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let elsewhere = key_text(
        &create_key(
            &app,
            "acme",
            &owner,
            json!({"name": "office", "scopes": ["usage:read"], "allowed_ips": ["10.0.0.0/8"]}),
        )
        .await,
    );
    let local = create_key(
        &app,
        "acme",
        &owner,
        json!({"name": "local", "scopes": ["usage:read"], "allowed_ips": ["127.0.0.0/8", "2001:db8::/32"]}),
    )
    .await;
    assert_eq!(
        local["allowed_ips"],
        json!(["127.0.0.0/8", "2001:db8::/32"])
    );

    for via in [Via::XApiKey, Via::Bearer] {
        let response = with_key_on(
            &app,
            &app.data_url,
            Method::GET,
            "acme",
            "/v1/usage",
            &elsewhere,
            via,
        )
        .await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::FORBIDDEN, "ip_not_allowed".to_owned())
        );
    }
    assert_eq!(
        usage_with(&app, "acme", &key_text(&local)).await.status(),
        StatusCode::OK
    );
    // A wrong secret learns nothing about the allow-list.
    let wrong = format!("{}{}", &elsewhere[..17], &key_text(&local)[17..]);
    assert_eq!(
        error_code(usage_with(&app, "acme", &wrong).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_api_key".to_owned())
    );
}
