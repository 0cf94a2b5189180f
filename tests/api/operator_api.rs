use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::client::TenantPatch;
use tenantry_tests::{Client, TestApp};

#[tokio::test]
async fn operator_routes_refuse_missing_and_wrong_tokens() {
    let app = TestApp::spawn().await;
    let anonymous = Client::with_http(app.http.clone(), &app.control_url);
    let missing = anonymous.get("/v1/tenants").send().await.unwrap();
    assert_eq!(
        missing.error_code(),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let forged = format!("{}x", app.operator_token);
    for token in ["tnop_not-a-real-token", forged.as_str(), ""] {
        let wrong = anonymous
            .with_bearer(token)
            .get("/v1/tenants")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{token}");
    }
    let wrong_scheme = anonymous
        .get("/v1/tenants")
        .header("Authorization", &format!("Basic {}", app.operator_token))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_scheme.status(), StatusCode::UNAUTHORIZED);
    let create = anonymous
        .post("/v1/tenants")
        .json(&json!({"slug": "sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), StatusCode::UNAUTHORIZED);
    app.operator_api().tenants().list().await.unwrap();
    let stored: i64 = app
        .superuser()
        .await
        .query_one("SELECT count(*) FROM control.operator_tokens WHERE token_hash = convert_to($1, 'UTF8')", &[&app.operator_token])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "the token must not be stored in clear");
    assert_eq!(app.tenant_count("sneaky").await, 0);
}

#[tokio::test]
async fn quotas_start_at_the_plan_defaults_and_take_validated_overrides() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let operator = app.operator_api();
    let tenants = operator.tenants();
    let quotas = tenants.quotas("acme").await.unwrap();
    assert_eq!(quotas["plan"], "free");
    assert_eq!(quotas["effective"]["max_users"], 5);
    assert_eq!(quotas["overrides"]["max_users"], Value::Null);

    let raised = tenants
        .set_quotas("acme", &json!({"max_users": 50, "burst": 99}))
        .await
        .unwrap();
    assert_eq!(raised["effective"]["max_users"], 50);
    assert_eq!(raised["effective"]["burst"], 99);

    for bad in [
        json!({"max_users": -1}),
        json!({"max_seats": 3}),
        json!({"burst": "lots"}),
        json!({"burst": 1e12}),
    ] {
        let refused = tenants.set_quotas("acme", &bad).await.unwrap_err();
        assert_eq!(refused.status(), Some(StatusCode::BAD_REQUEST), "{bad}");
    }
    let unchanged = tenants.quotas("acme").await.unwrap();
    assert_eq!(unchanged["effective"]["max_users"], 50);
    assert_eq!(unchanged["effective"]["burst"], 99);

    let reset = tenants
        .set_quotas("acme", &json!({"max_users": null}))
        .await
        .unwrap();
    assert_eq!(reset["effective"]["max_users"], 5);
    assert_eq!(reset["effective"]["burst"], 99);

    let changed = tenants
        .update(
            "acme",
            &TenantPatch {
                plan: Some("enterprise".to_owned()),
                name: Some("Acme Inc".to_owned()),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.plan, "enterprise");
    assert_eq!(changed.name, "Acme Inc");
    assert_eq!(changed.quotas.unwrap()["max_users"], 10000);
    let unknown_plan = tenants
        .update(
            "acme",
            &TenantPatch {
                plan: Some("gold".to_owned()),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(unknown_plan.status(), Some(StatusCode::BAD_REQUEST));

    let missing = tenants.quotas("nobody").await.unwrap_err();
    assert_eq!(missing.status(), Some(StatusCode::NOT_FOUND));
    let not_a_slug = tenants.get("NOT A SLUG").await.unwrap_err();
    assert_eq!(not_a_slug.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn the_tenant_list_comes_a_page_at_a_time_and_searches_slugs_and_names() {
    let app = TestApp::spawn().await;
    for slug in ["alpha", "beta", "gamma"] {
        app.create_tenant(slug).await;
    }
    let operator = app.operator_api();
    let tenants = operator.tenants();
    let first = tenants.page("", "", 2).await.unwrap();
    let slugs = |page: &tenantry_tests::client::TenantPage| {
        page.tenants
            .iter()
            .map(|tenant| tenant.slug.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(slugs(&first), ["alpha", "beta"]);
    assert_eq!(first.next_after.as_deref(), Some("beta"));
    let last = tenants.page("", "beta", 2).await.unwrap();
    assert_eq!(slugs(&last), ["gamma"]);
    assert_eq!(last.next_after, None);
    assert_eq!(
        slugs(&tenants.page("GAM", "", 10).await.unwrap()),
        ["gamma"]
    );
    assert_eq!(
        tenants.list().await.unwrap().len(),
        3,
        "list() follows the pages"
    );

    for bad in [
        "/v1/tenants?limit=0",
        "/v1/tenants?limit=1001",
        "/v1/tenants?limit=ten",
        "/v1/tenants?unknown=1",
    ] {
        let refused = app
            .operator_api()
            .call(reqwest::Method::GET, bad)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let long = tenants.page(&"x".repeat(101), "", 10).await.unwrap_err();
    assert_eq!(long.code(), Some("invalid_input"));
}
