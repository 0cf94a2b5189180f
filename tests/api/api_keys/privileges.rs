//! What a key may do: never more than its creator holds (at creation, rotation and request
//! time), never the user-only admin endpoints, and who may manage keys at all.

use super::*;

#[tokio::test]
async fn nobody_gives_a_key_more_than_they_hold() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let developer_email = unique_address("developer");
    invite_and_activate(&app, "acme", &owner, &developer_email, &["developer"]).await;
    let developer = access(&app.sign_in("acme", &developer_email, PASSWORD).await);

    for scopes in [
        json!(["usage:read"]),
        json!(["records:read", "users:manage"]),
        json!(["*:*"]),
        json!(["records.invoices:read", "telemetry:write", "*:read"]),
    ] {
        let response = call(
            &app,
            Method::POST,
            "acme",
            KEYS,
            &developer,
            Some(json!({"name": "too much", "scopes": scopes})),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{scopes}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "scope_not_held");
        let missing = body["error"]["details"]["scopes"].as_array().unwrap();
        assert_eq!(missing.len(), 1, "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(missing[0].as_str().unwrap()));
    }
    assert!(listed(&app, "acme", &owner).await.is_empty());
    // What the developer holds, they may give.
    create_key(
        &app,
        "acme",
        &developer,
        json!({"name": "ingest", "scopes": ["telemetry:write", "records.invoices:read"]}),
    )
    .await;

    // Nor may they rotate (and so obtain) a key wider than themself.
    let owners_key = usage_key(&app, "acme", &owner).await;
    let response = call(
        &app,
        Method::POST,
        "acme",
        &format!("{}/rotate", key_path(&owners_key)),
        &developer,
        None,
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::FORBIDDEN, "scope_not_held".to_owned())
    );
    assert_eq!(
        usage_with(&app, "acme", &key_text(&owners_key))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_key_loses_what_its_creator_loses() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let admin_email = unique_address("admin");
    let admin_id = invite_and_activate(&app, "acme", &owner, &admin_email, &["admin"]).await;
    let admin = access(&app.sign_in("acme", &admin_email, PASSWORD).await);
    let key = key_text(&usage_key(&app, "acme", &admin).await);
    assert_eq!(
        usage_with(&app, "acme", &key).await.status(),
        StatusCode::OK
    );
    let refused_soon = || async {
        TestApp::eventually(Duration::from_secs(1), || async {
            usage_with(&app, "acme", &key).await.status() == StatusCode::FORBIDDEN
        })
        .await
        .is_some()
    };

    // Demoted to developer (no usage:read): the key loses usage:read.
    let user = format!("/v1/admin/users/{admin_id}");
    let demoted = call(
        &app,
        Method::PUT,
        "acme",
        &format!("{user}/roles"),
        &owner,
        Some(json!({"roles": ["developer"]})),
    )
    .await;
    assert_eq!(demoted.status(), StatusCode::OK);
    assert!(refused_soon().await, "the key kept what its creator lost");
    let body: Value = usage_with(&app, "acme", &key).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["details"]["missing_permission"], "usage:read");

    // Promoted again, then disabled: a disabled creator's keys can do nothing.
    let promoted = call(
        &app,
        Method::PUT,
        "acme",
        &format!("{user}/roles"),
        &owner,
        Some(json!({"roles": ["admin"]})),
    )
    .await;
    assert_eq!(promoted.status(), StatusCode::OK);
    let back = TestApp::eventually(Duration::from_secs(1), || async {
        usage_with(&app, "acme", &key).await.status() == StatusCode::OK
    })
    .await;
    assert!(back.is_some());
    let disabled = call(
        &app,
        Method::POST,
        "acme",
        &format!("{user}/disable"),
        &owner,
        None,
    )
    .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    assert!(refused_soon().await, "a disabled creator's key still works");
}

#[tokio::test]
async fn keys_get_403_user_required_on_admin_endpoints_and_403_beyond_their_scopes() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let wide = key_text(
        &create_key(
            &app,
            "acme",
            &owner,
            json!({"name": "wide", "scopes": ["api_keys:manage", "users:manage", "records:read"]}),
        )
        .await,
    );
    for (method, path) in [
        (Method::GET, KEYS.to_owned()),
        (Method::POST, KEYS.to_owned()),
        (Method::GET, "/v1/admin/users".to_owned()),
        (Method::GET, "/v1/me".to_owned()),
    ] {
        for via in [Via::XApiKey, Via::Bearer] {
            let mut request = app
                .http
                .request(method.clone(), format!("{}{path}", app.data_url))
                .header("X-Tenant", "acme");
            request = match via {
                Via::XApiKey => request.header("X-API-Key", &wide),
                Via::Bearer => request.bearer_auth(&wide),
            };
            if method == Method::POST {
                request = request.json(&json!({"name": "child", "scopes": ["records:read"]}));
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                error_code(response).await,
                (StatusCode::FORBIDDEN, "user_required".to_owned()),
                "{method} {path} {via:?}"
            );
        }
    }
    assert_eq!(listed(&app, "acme", &owner).await.len(), 1);

    // A key without usage:read is refused on the one endpoint keys may use here.
    let response = usage_with(&app, "acme", &wide).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["details"]["missing_permission"], "usage:read");
}

#[tokio::test]
async fn the_key_admin_needs_api_keys_manage_and_ids_of_another_tenant_are_not_found() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let globex_owner = tenant_with_owner(&app, "globex").await;
    let globex_key = usage_key(&app, "globex", &globex_owner).await;
    let member_email = unique_address("member");
    invite_and_activate(&app, "acme", &owner, &member_email, &["member"]).await;
    let member = access(&app.sign_in("acme", &member_email, PASSWORD).await);

    let response = call(&app, Method::GET, "acme", KEYS, &member, None).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        body["error"]["details"]["missing_permission"],
        "api_keys:manage"
    );
    let response = app.tenant_get("acme", KEYS).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // globex's key id names nothing in acme, for reading, rotating or revoking.
    let path = key_path(&globex_key);
    for method in [Method::GET, Method::DELETE] {
        let response = call(&app, method, "acme", &path, &owner, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let response = call(
        &app,
        Method::POST,
        "acme",
        &format!("{path}/rotate"),
        &owner,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        usage_with(&app, "globex", &key_text(&globex_key))
            .await
            .status(),
        StatusCode::OK
    );
}
