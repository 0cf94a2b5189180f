use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::TestApp;

#[tokio::test]
async fn operator_routes_refuse_missing_and_wrong_tokens() {
    let app = TestApp::spawn().await;
    let url = format!("{}/v1/tenants", app.control_url);
    let missing = app.http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let forged = format!("{}x", app.operator_token);
    for token in ["tnop_not-a-real-token", forged.as_str(), ""] {
        let wrong = app.http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{token}");
    }
    let wrong_scheme = app
        .http
        .get(&url)
        .header("Authorization", format!("Basic {}", app.operator_token))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_scheme.status(), StatusCode::UNAUTHORIZED);
    let create = app
        .http
        .post(&url)
        .json(&json!({"slug": "sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), StatusCode::UNAUTHORIZED);
    let ok = app
        .operator(Method::GET, "/v1/tenants")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
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
    let quotas: Value = app
        .operator(Method::GET, "/v1/tenants/acme/quotas")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quotas["plan"], "free");
    assert_eq!(quotas["effective"]["max_users"], 5);
    assert_eq!(quotas["overrides"]["max_users"], Value::Null);

    let patch = |body: Value| {
        app.operator(Method::PATCH, "/v1/tenants/acme/quotas")
            .json(&body)
            .send()
    };
    let raised: Value = patch(json!({"max_users": 50, "burst": 99}))
        .await
        .unwrap()
        .json()
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
        let refused = patch(bad.clone()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let unchanged: Value = app
        .operator(Method::GET, "/v1/tenants/acme/quotas")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["effective"]["max_users"], 50);
    assert_eq!(unchanged["effective"]["burst"], 99);

    let reset: Value = patch(json!({"max_users": null}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset["effective"]["max_users"], 5);
    assert_eq!(reset["effective"]["burst"], 99);

    let plan: Value = app
        .operator(Method::PATCH, "/v1/tenants/acme")
        .json(&json!({"plan": "enterprise", "name": "Acme Inc"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plan["plan"], "enterprise");
    assert_eq!(plan["name"], "Acme Inc");
    assert_eq!(plan["quotas"]["max_users"], 10000);
    let unknown_plan = app
        .operator(Method::PATCH, "/v1/tenants/acme")
        .json(&json!({"plan": "gold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_plan.status(), StatusCode::BAD_REQUEST);

    let missing = app
        .operator(Method::GET, "/v1/tenants/nobody/quotas")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let not_a_slug = app
        .operator(Method::GET, "/v1/tenants/NOT%20A%20SLUG")
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_slug.status(), StatusCode::NOT_FOUND);
}
