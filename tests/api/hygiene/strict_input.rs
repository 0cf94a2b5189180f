//! The input rules both planes share (docs/limits.md, "Request hygiene"): a JSON body only as
//! `application/json` (parameters allowed; records' PATCH also takes merge patch's own type),
//! no key named twice in any JSON body, and request headers capped (431). Every refusal is
//! the JSON envelope with a request id, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::client::{ListQuery, Record};
use tenantry_tests::{unique_address, Client, Reply, TestApp, OWNER_EMAIL, PASSWORD};

use super::checked;

/// JSON in all but name: each was admitted by actix's JSON extractor, none is
/// `application/json`.
const JSON_BY_ANOTHER_NAME: [&str; 4] = [
    "application/vnd.api+json",
    "text/json",
    "application/merge-patch+json",
    "application/problem+json",
];

/// A data-plane request as `caller`, with a raw body of `content_type`.
async fn send_raw(
    caller: &Client,
    method: Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> Reply {
    caller
        .call(method, path)
        .body(body, content_type)
        .send()
        .await
        .unwrap()
}

async fn user_count(owner: &Client) -> usize {
    owner
        .users()
        .list(None, None, None)
        .await
        .unwrap()
        .users
        .len()
}

async fn records_in(owner: &Client, collection: &str) -> Vec<Record> {
    owner
        .records(collection)
        .list(&ListQuery::default())
        .await
        .unwrap()
        .records
}

const UNSUPPORTED: (StatusCode, &str) =
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

/// Asserts a 400 `invalid_json` that names `key` as the one repeated; returns the details.
fn refused_for_duplicate(reply: &Reply, key: &str) -> Value {
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_json"),
        "{}",
        reply.text()
    );
    let error = reply.error().unwrap();
    let details = error.details.clone().unwrap_or_default();
    assert_eq!(details["duplicate_key"], key, "{}", reply.text());
    assert!(
        error.message.contains(&format!("\"{key}\" appears twice")),
        "{}",
        reply.text()
    );
    details
}

#[tokio::test]
async fn json_endpoints_of_both_planes_take_only_application_json_with_or_without_parameters() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    let login = json!({"email": OWNER_EMAIL, "password": PASSWORD}).to_string();
    let invitation = json!({"email": unique_address("typed"), "roles": []}).to_string();
    let record = json!({"title": "first"}).to_string();
    let records = "/v1/collections/notes/records";
    let anonymous = owner.anonymous();
    let operator_api = app.operator_api();
    let operator = operator_api.client();

    for content_type in JSON_BY_ANOTHER_NAME {
        let reply = send_raw(
            &anonymous,
            Method::POST,
            "/v1/auth/login",
            content_type,
            &login,
        )
        .await;
        assert_eq!(checked(&reply), UNSUPPORTED, "login, {content_type}");
        let reply = send_raw(
            &owner,
            Method::POST,
            "/v1/admin/users/invitations",
            content_type,
            &invitation,
        )
        .await;
        assert_eq!(checked(&reply), UNSUPPORTED, "invite, {content_type}");
        let reply = send_raw(&owner, Method::POST, records, content_type, &record).await;
        assert_eq!(checked(&reply), UNSUPPORTED, "record, {content_type}");
        let reply = send_raw(
            operator,
            Method::POST,
            "/v1/tenants",
            content_type,
            &json!({"slug": "beta"}).to_string(),
        )
        .await;
        assert_eq!(checked(&reply), UNSUPPORTED, "tenant, {content_type}");
    }
    assert_eq!(user_count(&owner).await, 1, "no user invited");
    assert_eq!(app.tenant_count("beta").await, 0, "no tenant created");

    // `application/json` with parameters, in any case, is JSON.
    let reply = send_raw(
        &anonymous,
        Method::POST,
        "/v1/auth/login",
        "application/json; charset=utf-8",
        &login,
    )
    .await;
    assert_eq!(reply.status(), StatusCode::OK);
    let reply = send_raw(
        &owner,
        Method::POST,
        "/v1/admin/users/invitations",
        "Application/JSON; charset=UTF-8",
        &invitation,
    )
    .await;
    assert_eq!(reply.status(), StatusCode::CREATED);
    let reply = send_raw(
        &owner,
        Method::POST,
        records,
        "application/json;charset=utf-8",
        &record,
    )
    .await;
    assert_eq!(reply.status(), StatusCode::CREATED);
    let reply = send_raw(
        operator,
        Method::POST,
        "/v1/tenants",
        "application/json; charset=utf-8",
        &json!({"slug": "beta"}).to_string(),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::CREATED);
    assert_eq!(user_count(&owner).await, 2);
    assert_eq!(records_in(&owner, "notes").await.len(), 1);
    assert_eq!(app.tenant_count("beta").await, 1);
}

#[tokio::test]
async fn records_patch_also_takes_merge_patch_json_and_nothing_else_by_another_name() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    let notes = owner.records("notes");
    let created = notes.create(&json!({"title": "first"})).await.unwrap();
    let path = format!("/v1/collections/notes/records/{}", created.id);
    for content_type in ["application/vnd.api+json", "text/json"] {
        let reply = send_raw(
            &owner,
            Method::PATCH,
            &path,
            content_type,
            r#"{"title": "changed"}"#,
        )
        .await;
        assert_eq!(checked(&reply), UNSUPPORTED, "{content_type}");
    }
    assert_eq!(notes.get(created.id).await.unwrap().version, 1);
    let reply = send_raw(
        &owner,
        Method::PATCH,
        &path,
        "application/merge-patch+json; charset=utf-8",
        r#"{"title": "patched"}"#,
    )
    .await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        notes.get(created.id).await.unwrap().data["title"],
        "patched"
    );
}

#[tokio::test]
async fn a_json_body_naming_a_key_twice_is_refused_on_the_data_plane_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    let email = unique_address("twice");

    // Which roles? serde_json would keep the last; a proxy's parser might keep the first.
    let reply = send_raw(
        &owner,
        Method::POST,
        "/v1/admin/users/invitations",
        "application/json",
        &format!(r#"{{"email": "{email}", "roles": ["owner"], "roles": []}}"#),
    )
    .await;
    let details = refused_for_duplicate(&reply, "roles");
    assert_eq!(details["object"], "");
    assert_eq!(user_count(&owner).await, 1, "nothing invited");

    // A body read as free-form JSON (no typed struct to notice): the CORS settings.
    let before = owner.setting("cors").await.unwrap();
    let reply = send_raw(
        &owner,
        Method::PUT,
        "/v1/settings/cors",
        "application/json",
        r#"{"allowed_origins": ["https://app.acme.example"], "allowed_origins": []}"#,
    )
    .await;
    refused_for_duplicate(&reply, "allowed_origins");
    assert_eq!(owner.setting("cors").await.unwrap(), before);

    // Sign-in: a second password is not a second guess.
    let reply = send_raw(
        &owner.anonymous(),
        Method::POST,
        "/v1/auth/login",
        "application/json",
        &format!(r#"{{"email": "{OWNER_EMAIL}", "password": "wrong", "password": "{PASSWORD}"}}"#),
    )
    .await;
    refused_for_duplicate(&reply, "password");

    // Records read their own bodies: the same rule, at any depth, after unescaping.
    let records = "/v1/collections/notes/records";
    let created = owner
        .records("notes")
        .create(&json!({"title": "kept", "meta": {"tag": 1}}))
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
        let reply = send_raw(&owner, Method::POST, records, "application/json", body).await;
        let details = refused_for_duplicate(&reply, key);
        assert_eq!(details["object"], object, "{body}");
    }
    let path = format!("{records}/{}", created.id);
    for (method, content_type) in [
        (Method::PUT, "application/json"),
        (Method::PATCH, "application/merge-patch+json"),
    ] {
        let reply = send_raw(
            &owner,
            method,
            &path,
            content_type,
            r#"{"title": "changed", "title": null}"#,
        )
        .await;
        refused_for_duplicate(&reply, "title");
    }
    let stored = records_in(&owner, "notes").await;
    assert_eq!(stored.len(), 1, "only the first record");
    assert_eq!(stored[0].version, 1);
    assert_eq!(
        Value::Object(stored[0].data.clone()),
        json!({"title": "kept", "meta": {"tag": 1}})
    );
}

#[tokio::test]
async fn a_json_body_naming_a_key_twice_is_refused_on_the_control_plane_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;

    let operator_api = app.operator_api();
    let operator = operator_api.client();
    let reply = send_raw(
        operator,
        Method::POST,
        "/v1/tenants",
        "application/json",
        r#"{"slug": "beta", "slug": "gamma"}"#,
    )
    .await;
    refused_for_duplicate(&reply, "slug");
    assert_eq!(app.tenant_count("beta").await, 0);
    assert_eq!(app.tenant_count("gamma").await, 0);

    // Deep inside a provider: which role does the `admins` group map to?
    let before: Value = operator.get("/v1/tenants/acme/sso").ok().await.unwrap();
    let provider = r#"{
        "name": "corp",
        "provider": {"kind": "oidc", "issuer": "https://idp.corp.example", "client_id": "c"},
        "client_secret": "s",
        "users": {"role_mapping": {"admins": "member", "admins": "owner"}}
    }"#;
    let reply = send_raw(
        operator,
        Method::POST,
        "/v1/tenants/acme/sso",
        "application/json",
        provider,
    )
    .await;
    let details = refused_for_duplicate(&reply, "admins");
    assert_eq!(details["object"], "/users/role_mapping");
    let after: Value = operator.get("/v1/tenants/acme/sso").ok().await.unwrap();
    assert_eq!(after, before);
}

#[tokio::test]
async fn a_typed_body_sent_as_an_array_is_refused_on_both_planes_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;

    // serde alone would read these as the bodies' fields in order.
    let operator_api = app.operator_api();
    let reply = send_raw(
        operator_api.client(),
        Method::POST,
        "/v1/tenants",
        "application/json",
        r#"["beta", null, null, null]"#,
    )
    .await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    assert_eq!(app.tenant_count("beta").await, 0);
    let quotas = operator_api.tenants().quotas("acme").await.unwrap();
    let reply = send_raw(
        operator_api.client(),
        Method::PATCH,
        "/v1/tenants/acme/quotas",
        "application/json",
        "[1, 1, 1, 1, 1, 1]",
    )
    .await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    assert_eq!(operator_api.tenants().quotas("acme").await.unwrap(), quotas);

    let email = unique_address("array");
    let reply = send_raw(
        &owner,
        Method::POST,
        "/v1/admin/users/invitations",
        "application/json",
        &format!(r#"["{email}", ["admin"], null]"#),
    )
    .await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let users = owner.users().list(None, None, None).await.unwrap();
    assert!(users.users.iter().all(|user| user.email != email));

    let reply = send_raw(
        &app.tenant("acme"),
        Method::POST,
        "/v1/auth/login",
        "application/json",
        &format!(r#"["{OWNER_EMAIL}", "{PASSWORD}"]"#),
    )
    .await;
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
}

/// A header line (`name: value`) of `line_bytes` bytes.
fn padding(line_bytes: usize) -> String {
    "x".repeat(line_bytes - "x-padding: ".len())
}

#[tokio::test]
async fn oversized_request_headers_get_431_with_the_json_envelope_on_both_planes() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;

    // At the limit: served.
    let anonymous = owner.anonymous();
    let reply = anonymous
        .get("/v1/tenant")
        .header("x-padding", &padding(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);

    // One line over 8 KiB, on a change: refused before the handler.
    let reply = owner
        .post("/v1/admin/users/invitations")
        .header("x-padding", &padding(8 * 1024 + 1))
        .json(&json!({"email": unique_address("big"), "roles": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.error_code(),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_headers_too_large"
        ),
        "{}",
        reply.text()
    );
    let details = reply.error().unwrap().details.clone().unwrap_or_default();
    assert_eq!(details["header"], "x-padding");
    assert_eq!(details["limit_bytes"], 8 * 1024);
    assert_eq!(user_count(&owner).await, 1, "nothing invited");

    // Lines each under 8 KiB, over 32 KiB in all.
    let mut request = anonymous.get("/v1/tenant");
    for index in 0..5 {
        request = request.header(&format!("x-padding-{index}"), &"y".repeat(7 * 1024));
    }
    let reply = request.send().await.unwrap();
    assert_eq!(
        checked(&reply),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_headers_too_large"
        )
    );

    // The control plane holds its callers to the same limits.
    let operator = app.operator_api();
    let reply = operator
        .call(Method::GET, "/v1/tenants")
        .header("x-padding", &padding(8 * 1024 + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        checked(&reply),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_headers_too_large"
        )
    );
    let reply = operator
        .call(Method::GET, "/v1/tenants")
        .header("x-padding", &padding(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
}
