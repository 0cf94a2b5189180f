//! What a key may do: never more than its creator holds (at creation, rotation and request
//! time), never the user-only admin endpoints, and who may manage keys at all.

use super::*;

#[tokio::test]
async fn nobody_gives_a_key_more_than_they_hold() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let developer_email = unique_address("developer");
    app.invite_and_activate(&owner, &developer_email, &["developer"])
        .await;
    let developer = app.signed_in("acme", &developer_email, PASSWORD).await;

    for scopes in [
        vec!["usage:read"],
        vec!["records:read", "users:manage"],
        vec!["*:*"],
        vec!["records.invoices:read", "telemetry:write", "*:read"],
    ] {
        let refused = developer
            .api_keys()
            .create(&NewKey::new("too much", &scopes))
            .await
            .unwrap_err();
        let refusal = refused.api().unwrap();
        assert_eq!(
            (refusal.status, refusal.code.as_str()),
            (StatusCode::FORBIDDEN, "scope_not_held"),
            "{scopes:?}"
        );
        let missing = refusal.details.as_ref().unwrap()["scopes"]
            .as_array()
            .unwrap();
        assert_eq!(missing.len(), 1, "{refusal}");
        assert!(refusal.message.contains(missing[0].as_str().unwrap()));
    }
    assert!(owner.api_keys().list().await.unwrap().is_empty());
    // What the developer holds, they may give.
    developer
        .api_keys()
        .create(&NewKey::new(
            "ingest",
            &["telemetry:write", "records.invoices:read"],
        ))
        .await
        .unwrap();

    // Nor may they rotate (and so obtain) a key wider than themself.
    let owners_key = usage_key(&owner).await;
    let refused = developer
        .api_keys()
        .rotate(owners_key.view.id)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(StatusCode::FORBIDDEN), Some("scope_not_held"))
    );
    assert_eq!(
        usage_with(&app, "acme", owners_key.key.expose())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_key_loses_what_its_creator_loses() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let admin_email = unique_address("admin");
    let admin_id = app
        .invite_and_activate(&owner, &admin_email, &["admin"])
        .await;
    let admin = app.signed_in("acme", &admin_email, PASSWORD).await;
    let key = usage_key(&admin).await.key;
    let key = key.expose();
    assert_eq!(usage_with(&app, "acme", key).await.status(), StatusCode::OK);
    let refused_soon = || async {
        TestApp::eventually(Duration::from_secs(1), || async {
            usage_with(&app, "acme", key).await.status() == StatusCode::FORBIDDEN
        })
        .await
        .is_some()
    };

    // Demoted to developer (no usage:read): the key loses usage:read.
    owner
        .users()
        .set_roles(admin_id, &[json!("developer")])
        .await
        .unwrap();
    assert!(refused_soon().await, "the key kept what its creator lost");
    let body = usage_with(&app, "acme", key).await.value();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["details"]["missing_permission"], "usage:read");

    // Promoted again, then disabled: a disabled creator's keys can do nothing.
    owner
        .users()
        .set_roles(admin_id, &[json!("admin")])
        .await
        .unwrap();
    let back = TestApp::eventually(Duration::from_secs(1), || async {
        usage_with(&app, "acme", key).await.status() == StatusCode::OK
    })
    .await;
    assert!(back.is_some());
    owner.users().disable(admin_id).await.unwrap();
    assert!(refused_soon().await, "a disabled creator's key still works");
}

#[tokio::test]
async fn keys_get_403_user_required_on_admin_endpoints_and_403_beyond_their_scopes() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let wide = owner
        .api_keys()
        .create(&NewKey::new(
            "wide",
            &["api_keys:manage", "users:manage", "records:read"],
        ))
        .await
        .unwrap()
        .key;
    let wide = wide.expose();
    for (method, path) in [
        (Method::GET, KEYS),
        (Method::POST, KEYS),
        (Method::GET, "/v1/admin/users"),
        (Method::GET, "/v1/me"),
    ] {
        for via in [Via::XApiKey, Via::Bearer] {
            let key = presenting(&app.tenant("acme"), wide, via);
            let mut request = key.call(method.clone(), path);
            if method == Method::POST {
                request = request.json(&json!({"name": "child", "scopes": ["records:read"]}));
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.error_code(),
                (StatusCode::FORBIDDEN, "user_required"),
                "{method} {path} {via:?}"
            );
        }
    }
    assert_eq!(owner.api_keys().list().await.unwrap().len(), 1);

    // A key without usage:read is refused on the one endpoint keys may use here.
    let body = usage_with(&app, "acme", wide).await.value();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["details"]["missing_permission"], "usage:read");
}

#[tokio::test]
async fn the_key_admin_needs_api_keys_manage_and_ids_of_another_tenant_are_not_found() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let globex_owner = app.tenant_with_owner("globex").await;
    let globex_key = usage_key(&globex_owner).await;
    let member_email = unique_address("member");
    app.invite_and_activate(&owner, &member_email, &["member"])
        .await;
    let member = app.signed_in("acme", &member_email, PASSWORD).await;

    let body = member.get(KEYS).send().await.unwrap().value();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        body["error"]["details"]["missing_permission"],
        "api_keys:manage"
    );
    let response = app.tenant("acme").get(KEYS).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // globex's key id names nothing in acme, for reading, rotating or revoking.
    let path = key_path(globex_key.view.id);
    for method in [Method::GET, Method::DELETE] {
        let response = owner.call(method, &path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let response = owner.post(format!("{path}/rotate")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        usage_with(&app, "globex", globex_key.key.expose())
            .await
            .status(),
        StatusCode::OK
    );
}
