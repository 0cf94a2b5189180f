//! The input rules both planes share (docs/limits.md, "Request hygiene"): a JSON body only as
//! `application/json` (parameters allowed; records' PATCH also takes merge patch's own type),
//! no key named twice in any JSON body, and request headers capped (431). Every refusal is
//! the JSON envelope with a request id, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp};

use super::{checked, tenant_request};

const OWNER: &str = "olga@acme.example";
const PASSWORD: &str = "correct horse battery staple";

/// JSON in all but name: each was admitted by actix's JSON extractor, none is
/// `application/json`.
const JSON_BY_ANOTHER_NAME: [&str; 4] = [
    "application/vnd.api+json",
    "text/json",
    "application/merge-patch+json",
    "application/problem+json",
];

/// Tenant `slug` with an active owner; the owner's access token.
async fn owner_of(app: &TestApp, slug: &str) -> String {
    app.tenant_with_active_admin(slug, OWNER, PASSWORD).await;
    app.sign_in(slug, OWNER, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A data-plane request for `slug` as `token`, with a raw body of `content_type`.
async fn send_raw(
    app: &TestApp,
    method: Method,
    slug: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> reqwest::Response {
    tenant_request(app, method, slug, path)
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn get_json(app: &TestApp, slug: &str, path: &str, token: &str) -> Value {
    tenant_request(app, Method::GET, slug, path)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn user_count(app: &TestApp, slug: &str, token: &str) -> usize {
    get_json(app, slug, "/v1/admin/users", token).await["users"]
        .as_array()
        .unwrap()
        .len()
}

async fn records_in(app: &TestApp, slug: &str, token: &str, collection: &str) -> Vec<Value> {
    let page = get_json(
        app,
        slug,
        &format!("/v1/collections/{collection}/records"),
        token,
    )
    .await;
    page["records"].as_array().cloned().unwrap_or_default()
}

fn unsupported() -> (StatusCode, String) {
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type".to_owned(),
    )
}

/// Asserts a 400 `invalid_json` that names `key` as the one repeated; returns the details.
async fn refused_for_duplicate(response: reqwest::Response, key: &str) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_json", "{body}");
    assert_eq!(body["error"]["details"]["duplicate_key"], key, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("\"{key}\" appears twice")),
        "{body}"
    );
    body["error"]["details"].clone()
}

#[tokio::test]
async fn json_endpoints_of_both_planes_take_only_application_json_with_or_without_parameters() {
    let app = TestApp::spawn().await;
    let owner = owner_of(&app, "acme").await;
    app.raise_rate_limits("acme").await;
    let login = json!({"email": OWNER, "password": PASSWORD}).to_string();
    let invitation = json!({"email": unique_address("typed"), "roles": []}).to_string();
    let record = json!({"title": "first"}).to_string();
    let records = "/v1/collections/notes/records";

    for content_type in JSON_BY_ANOTHER_NAME {
        let response = tenant_request(&app, Method::POST, "acme", "/v1/auth/login")
            .header("content-type", content_type)
            .body(login.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            checked(response).await,
            unsupported(),
            "login, {content_type}"
        );
        let response = send_raw(
            &app,
            Method::POST,
            "acme",
            "/v1/admin/users/invitations",
            &owner,
            content_type,
            &invitation,
        )
        .await;
        assert_eq!(
            checked(response).await,
            unsupported(),
            "invite, {content_type}"
        );
        let response = send_raw(
            &app,
            Method::POST,
            "acme",
            records,
            &owner,
            content_type,
            &record,
        )
        .await;
        assert_eq!(
            checked(response).await,
            unsupported(),
            "record, {content_type}"
        );
        let response = app
            .operator(Method::POST, "/v1/tenants")
            .header("content-type", content_type)
            .body(json!({"slug": "beta"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(
            checked(response).await,
            unsupported(),
            "tenant, {content_type}"
        );
    }
    assert_eq!(user_count(&app, "acme", &owner).await, 1, "no user invited");
    assert_eq!(app.tenant_count("beta").await, 0, "no tenant created");

    // `application/json` with parameters, in any case, is JSON.
    let response = tenant_request(&app, Method::POST, "acme", "/v1/auth/login")
        .header("content-type", "application/json; charset=utf-8")
        .body(login)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = send_raw(
        &app,
        Method::POST,
        "acme",
        "/v1/admin/users/invitations",
        &owner,
        "Application/JSON; charset=UTF-8",
        &invitation,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = send_raw(
        &app,
        Method::POST,
        "acme",
        records,
        &owner,
        "application/json;charset=utf-8",
        &record,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = app
        .operator(Method::POST, "/v1/tenants")
        .header("content-type", "application/json; charset=utf-8")
        .body(json!({"slug": "beta"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(user_count(&app, "acme", &owner).await, 2);
    assert_eq!(records_in(&app, "acme", &owner, "notes").await.len(), 1);
    assert_eq!(app.tenant_count("beta").await, 1);
}

#[tokio::test]
async fn records_patch_also_takes_merge_patch_json_and_nothing_else_by_another_name() {
    let app = TestApp::spawn().await;
    let owner = owner_of(&app, "acme").await;
    app.raise_rate_limits("acme").await;
    let created: Value = send_raw(
        &app,
        Method::POST,
        "acme",
        "/v1/collections/notes/records",
        &owner,
        "application/json",
        r#"{"title": "first"}"#,
    )
    .await
    .json()
    .await
    .unwrap();
    let path = format!(
        "/v1/collections/notes/records/{}",
        created["id"].as_str().unwrap()
    );
    for content_type in ["application/vnd.api+json", "text/json"] {
        let response = send_raw(
            &app,
            Method::PATCH,
            "acme",
            &path,
            &owner,
            content_type,
            r#"{"title": "changed"}"#,
        )
        .await;
        assert_eq!(checked(response).await, unsupported(), "{content_type}");
    }
    assert_eq!(get_json(&app, "acme", &path, &owner).await["version"], 1);
    let response = send_raw(
        &app,
        Method::PATCH,
        "acme",
        &path,
        &owner,
        "application/merge-patch+json; charset=utf-8",
        r#"{"title": "patched"}"#,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        get_json(&app, "acme", &path, &owner).await["data"]["title"],
        "patched"
    );
}

#[tokio::test]
async fn a_json_body_naming_a_key_twice_is_refused_on_the_data_plane_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = owner_of(&app, "acme").await;
    app.raise_rate_limits("acme").await;
    let email = unique_address("twice");

    // Which roles? serde_json would keep the last; a proxy's parser might keep the first.
    let response = send_raw(
        &app,
        Method::POST,
        "acme",
        "/v1/admin/users/invitations",
        &owner,
        "application/json",
        &format!(r#"{{"email": "{email}", "roles": ["owner"], "roles": []}}"#),
    )
    .await;
    let details = refused_for_duplicate(response, "roles").await;
    assert_eq!(details["object"], "");
    assert_eq!(user_count(&app, "acme", &owner).await, 1, "nothing invited");

    // A body read as free-form JSON (no typed struct to notice): the CORS settings.
    let before = get_json(&app, "acme", "/v1/settings/cors", &owner).await;
    let response = send_raw(
        &app,
        Method::PUT,
        "acme",
        "/v1/settings/cors",
        &owner,
        "application/json",
        r#"{"allowed_origins": ["https://app.acme.example"], "allowed_origins": []}"#,
    )
    .await;
    refused_for_duplicate(response, "allowed_origins").await;
    assert_eq!(
        get_json(&app, "acme", "/v1/settings/cors", &owner).await,
        before
    );

    // Sign-in: a second password is not a second guess.
    let response = tenant_request(&app, Method::POST, "acme", "/v1/auth/login")
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"email": "{OWNER}", "password": "wrong", "password": "{PASSWORD}"}}"#
        ))
        .send()
        .await
        .unwrap();
    refused_for_duplicate(response, "password").await;

    // Records read their own bodies: the same rule, at any depth, after unescaping.
    let records = "/v1/collections/notes/records";
    let created: Value = send_raw(
        &app,
        Method::POST,
        "acme",
        records,
        &owner,
        "application/json",
        r#"{"title": "kept", "meta": {"tag": 1}}"#,
    )
    .await
    .json()
    .await
    .unwrap();
    for (body, key, object) in [
        (
            r#"{"title": "a", "meta": {"tag": 1, "tag": 2}}"#,
            "tag",
            "/meta",
        ),
        (r#"{"title": "a", "\u0074itle": "b"}"#, "title", ""),
        (r#"{"list": [{"x": 1}, {"x": 1, "x": 2}]}"#, "x", "/list/1"),
    ] {
        let response = send_raw(
            &app,
            Method::POST,
            "acme",
            records,
            &owner,
            "application/json",
            body,
        )
        .await;
        let details = refused_for_duplicate(response, key).await;
        assert_eq!(details["object"], object, "{body}");
    }
    let path = format!("{records}/{}", created["id"].as_str().unwrap());
    for (method, content_type) in [
        (Method::PUT, "application/json"),
        (Method::PATCH, "application/merge-patch+json"),
    ] {
        let response = send_raw(
            &app,
            method.clone(),
            "acme",
            &path,
            &owner,
            content_type,
            r#"{"title": "changed", "title": null}"#,
        )
        .await;
        refused_for_duplicate(response, "title").await;
    }
    let stored = records_in(&app, "acme", &owner, "notes").await;
    assert_eq!(stored.len(), 1, "only the first record");
    assert_eq!(stored[0]["version"], 1);
    assert_eq!(
        stored[0]["data"],
        json!({"title": "kept", "meta": {"tag": 1}})
    );
}

#[tokio::test]
async fn a_json_body_naming_a_key_twice_is_refused_on_the_control_plane_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let response = app
        .operator(Method::POST, "/v1/tenants")
        .header("content-type", "application/json")
        .body(r#"{"slug": "beta", "slug": "gamma"}"#)
        .send()
        .await
        .unwrap();
    refused_for_duplicate(response, "slug").await;
    assert_eq!(app.tenant_count("beta").await, 0);
    assert_eq!(app.tenant_count("gamma").await, 0);

    // Deep inside a provider: which role does the `admins` group map to?
    let before: Value = app
        .operator(Method::GET, "/v1/tenants/acme/sso")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let provider = r#"{
        "name": "corp",
        "provider": {"kind": "oidc", "issuer": "https://idp.corp.example", "client_id": "c"},
        "client_secret": "s",
        "users": {"role_mapping": {"admins": "member", "admins": "owner"}}
    }"#;
    let response = app
        .operator(Method::POST, "/v1/tenants/acme/sso")
        .header("content-type", "application/json")
        .body(provider)
        .send()
        .await
        .unwrap();
    let details = refused_for_duplicate(response, "admins").await;
    assert_eq!(details["object"], "/users/role_mapping");
    let after: Value = app
        .operator(Method::GET, "/v1/tenants/acme/sso")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after, before);
}

/// A header line (`name: value`) of `line_bytes` bytes.
fn padding(line_bytes: usize) -> String {
    "x".repeat(line_bytes - "x-padding: ".len())
}

#[tokio::test]
async fn oversized_request_headers_get_431_with_the_json_envelope_on_both_planes() {
    let app = TestApp::spawn().await;
    let owner = owner_of(&app, "acme").await;
    app.raise_rate_limits("acme").await;

    // At the limit: served.
    let response = tenant_request(&app, Method::GET, "acme", "/v1/tenant")
        .header("x-padding", padding(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // One line over 8 KiB, on a change: refused before the handler.
    let response = tenant_request(&app, Method::POST, "acme", "/v1/admin/users/invitations")
        .bearer_auth(&owner)
        .header("x-padding", padding(8 * 1024 + 1))
        .json(&json!({"email": unique_address("big"), "roles": []}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{body}"
    );
    assert_eq!(body["error"]["code"], "request_headers_too_large");
    assert_eq!(body["error"]["details"]["header"], "x-padding");
    assert_eq!(body["error"]["details"]["limit_bytes"], 8 * 1024);
    assert_eq!(user_count(&app, "acme", &owner).await, 1, "nothing invited");

    // Lines each under 8 KiB, over 32 KiB in all.
    let mut request = tenant_request(&app, Method::GET, "acme", "/v1/tenant");
    for index in 0..5 {
        request = request.header(format!("x-padding-{index}"), "y".repeat(7 * 1024));
    }
    let response = request.send().await.unwrap();
    assert_eq!(
        checked(response).await,
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_headers_too_large".to_owned()
        )
    );

    // The control plane holds its callers to the same limits.
    let response = app
        .operator(Method::GET, "/v1/tenants")
        .header("x-padding", padding(8 * 1024 + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        checked(response).await,
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_headers_too_large".to_owned()
        )
    );
    let response = app
        .operator(Method::GET, "/v1/tenants")
        .header("x-padding", padding(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
