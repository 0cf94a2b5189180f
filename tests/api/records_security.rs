//! Records API security: sensitive fields sealed at rest and shown only with
//! `sensitive.<collection>:read`; record ids of another tenant and other users' records in
//! an `owner` collection (IDOR); SQL-injection attempts in collection names, field names,
//! filters and sort keys; oversized, malformed and mistyped bodies.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp, TestOptions};

use crate::records::{create, json_call, record_path, request};
use crate::users_admin::{
    access, error_code, invite_and_activate, tenant_schema, tenant_with_owner, PASSWORD,
};

const SSN: &str = "078-05-1120";

/// A user of `slug` with `roles`, invited by the holder of `owner`; their access token.
async fn user_with_roles(
    app: &TestApp,
    slug: &str,
    owner: &str,
    label: &str,
    roles: &[&str],
) -> (String, String) {
    let email = unique_address(label);
    let id = invite_and_activate(app, slug, owner, &email, roles).await;
    (id, access(&app.sign_in(slug, &email, PASSWORD).await))
}

/// Every row of the tenant's records table as text, read as the test superuser.
async fn raw_records(app: &TestApp, slug: &str) -> Vec<String> {
    let schema = tenant_schema(app, slug).await;
    app.superuser()
        .await
        .query(&format!("SELECT r::text FROM {schema}.records r"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn record_count(app: &TestApp, slug: &str) -> i64 {
    let schema = tenant_schema(app, slug).await;
    app.superuser()
        .await
        .query_one(&format!("SELECT count(*) FROM {schema}.records"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn sensitive_fields_are_sealed_at_rest_and_shown_only_to_holders_of_sensitive_read() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let (_, member) = user_with_roles(&app, "acme", &owner, "member", &["member"]).await;
    let (_, admin) = user_with_roles(&app, "acme", &owner, "admin", &["admin"]).await;

    // A record written before the field was declared sensitive is re-sealed by the change.
    let early = create(
        &app,
        "acme",
        &owner,
        "people",
        json!({"name": "Early", "ssn": "111-22-3333"}),
    )
    .await;
    let settings = json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/people",
        &owner,
        Some(json!({"sensitive_fields": ["ssn"]})),
        StatusCode::OK,
    )
    .await;
    assert_eq!(settings["sensitive_fields"], json!(["ssn"]));
    let record = create(
        &app,
        "acme",
        &member,
        "people",
        json!({"name": "Ada", "ssn": SSN, "plan": "gold"}),
    )
    .await;
    assert_eq!(
        record["data"],
        json!({"name": "Ada", "plan": "gold"}),
        "the member may not read it back"
    );
    let path = record_path("people", &record);

    let rows = raw_records(&app, "acme").await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(
            !row.contains(SSN) && !row.contains("111-22-3333"),
            "clear text at rest: {row}"
        );
    }
    assert!(
        rows.iter().any(|row| row.contains("Ada")),
        "the other fields are stored in clear"
    );

    // Owner (`*:*`) and admin (`sensitive:read`) see it; the member (records only) does not.
    for token in [&owner, &admin] {
        let seen = json_call(
            &app,
            Method::GET,
            "acme",
            &path,
            token,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(seen["data"]["ssn"], SSN);
        let early_seen = json_call(
            &app,
            Method::GET,
            "acme",
            &record_path("people", &early),
            token,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(early_seen["data"]["ssn"], "111-22-3333");
    }
    let hidden = json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &member,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(hidden["data"], json!({"name": "Ada", "plan": "gold"}));
    let listed = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/people/records",
        &member,
        None,
        StatusCode::OK,
    )
    .await;
    assert!(listed["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["data"].get("ssn").is_none()));
    let listed = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/people/records",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert!(listed["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["data"]["ssn"].is_string()));

    // Filtering on a sensitive field is refused, for everyone.
    for token in [&owner, &member] {
        let response = request(
            &app,
            Method::GET,
            "acme",
            &format!("/v1/collections/people/records?filter.ssn={SSN}"),
            token,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(
            error_code(response).await,
            (StatusCode::BAD_REQUEST, "sensitive_filter".to_owned())
        );
    }

    // A member's PUT keeps the sensitive field they cannot see; their PATCH merges around it.
    json_call(
        &app,
        Method::PUT,
        "acme",
        &path,
        &member,
        Some(json!({"name": "Ada L."})),
        StatusCode::OK,
    )
    .await;
    json_call(
        &app,
        Method::PATCH,
        "acme",
        &path,
        &member,
        Some(json!({"plan": "silver"})),
        StatusCode::OK,
    )
    .await;
    let seen = json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        seen["data"],
        json!({"name": "Ada L.", "plan": "silver", "ssn": SSN})
    );
    assert!(raw_records(&app, "acme")
        .await
        .iter()
        .all(|row| !row.contains(SSN)));

    // Declaring the field not sensitive any more puts it back in clear for every reader.
    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/people",
        &owner,
        Some(json!({})),
        StatusCode::OK,
    )
    .await;
    let plain = json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &member,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(plain["data"]["ssn"], SSN);
}

#[tokio::test]
async fn a_sealed_value_moved_to_another_record_does_not_open() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/people",
        &owner,
        Some(json!({"sensitive_fields": ["ssn"]})),
        StatusCode::CREATED,
    )
    .await;
    let victim = create(&app, "acme", &owner, "people", json!({"ssn": SSN})).await;
    let thief = create(
        &app,
        "acme",
        &owner,
        "people",
        json!({"ssn": "000-00-0000"}),
    )
    .await;
    let schema = tenant_schema(&app, "acme").await;
    app.superuser()
        .await
        .execute(
            &format!(
                "UPDATE {schema}.records SET sealed = (SELECT sealed FROM {schema}.records WHERE id = $1)
                 WHERE id = $2"
            ),
            &[
                &uuid::Uuid::parse_str(victim["id"].as_str().unwrap()).unwrap(),
                &uuid::Uuid::parse_str(thief["id"].as_str().unwrap()).unwrap(),
            ],
        )
        .await
        .unwrap();
    let response = request(
        &app,
        Method::GET,
        "acme",
        &record_path("people", &thief),
        &owner,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.text().await.unwrap();
    assert!(!body.contains(SSN), "{body}");
}

#[tokio::test]
async fn record_ids_of_another_tenant_are_404_and_untouched() {
    let app = TestApp::spawn().await;
    let acme = tenant_with_owner(&app, "acme").await;
    let globex = tenant_with_owner(&app, "globex").await;
    let record = create(&app, "acme", &acme, "tasks", json!({"secret": "acme only"})).await;
    let path = record_path("tasks", &record);
    // Globex has the collection too, so only the record id differs.
    create(&app, "globex", &globex, "tasks", json!({"mine": true})).await;

    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        let response = request(&app, method.clone(), "globex", &path, &globex)
            .json(&json!({"secret": "stolen"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (StatusCode::NOT_FOUND, "record_not_found".to_owned()),
            "{method}"
        );
    }
    let listed = json_call(
        &app,
        Method::GET,
        "globex",
        "/v1/collections/tasks/records",
        &globex,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 1);
    // acme's token on globex is refused outright.
    let response = request(&app, Method::GET, "globex", &path, &acme)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let intact = json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &acme,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(intact["data"], json!({"secret": "acme only"}));
    assert_eq!(intact["version"], 1);
}

#[tokio::test]
async fn in_an_owner_collection_another_users_record_is_404_and_cannot_be_changed() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let (alice_id, alice) = user_with_roles(&app, "acme", &owner, "alice", &["member"]).await;
    let (_, carol) = user_with_roles(&app, "acme", &owner, "carol", &["member"]).await;
    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/notes",
        &owner,
        Some(json!({"access": "owner"})),
        StatusCode::CREATED,
    )
    .await;

    let note = create(&app, "acme", &alice, "notes", json!({"text": "alice's"})).await;
    assert_eq!(note["owner_id"], alice_id);
    let path = record_path("notes", &note);
    let carols = create(&app, "acme", &carol, "notes", json!({"text": "carol's"})).await;

    // Carol holds records:read and records:update, but not manage: alice's note is absent.
    let response = request(&app, Method::GET, "acme", &path, &carol)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::NOT_FOUND, "record_not_found".to_owned())
    );
    for method in [Method::PUT, Method::PATCH] {
        let response = request(&app, method.clone(), "acme", &path, &carol)
            .json(&json!({"text": "carol was here"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response).await,
            (StatusCode::NOT_FOUND, "record_not_found".to_owned()),
            "{method}"
        );
    }
    let carols_list = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/notes/records",
        &carol,
        None,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<&str> = carols_list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![carols["id"].as_str().unwrap()]);
    let filtered = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/notes/records?filter.text=alice%27s",
        &carol,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(filtered["records"], json!([]));

    // A member cannot delete at all; the owner (who holds manage) can delete alice's note
    // only after the member's attempts left it untouched.
    let response = request(&app, Method::DELETE, "acme", &path, &carol)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let all = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/notes/records",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["records"].as_array().unwrap().len(), 2);
    let intact = json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(intact["data"], json!({"text": "alice's"}));
    assert_eq!(intact["version"], 1);
    json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &alice,
        None,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn in_an_owner_collection_a_deleter_without_manage_cannot_delete_anothers_record() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/notes",
        &owner,
        Some(json!({"access": "owner"})),
        StatusCode::CREATED,
    )
    .await;
    let note = create(
        &app,
        "acme",
        &owner,
        "notes",
        json!({"text": "the owner's"}),
    )
    .await;
    // A custom role would be cleaner; the built-in roles with delete all hold records:* (and
    // so manage), so grant exactly create/read/delete on this collection through a role row.
    let schema = tenant_schema(&app, "acme").await;
    app.superuser()
        .await
        .execute(
            &format!(
                "INSERT INTO {schema}.roles (name, description, permissions)
                 VALUES ('note_taker', 'test', ARRAY['records.notes:create', 'records.notes:read', 'records.notes:delete'])"
            ),
            &[],
        )
        .await
        .unwrap();
    let (_, dave) = user_with_roles(&app, "acme", &owner, "dave", &["note_taker"]).await;
    let response = request(
        &app,
        Method::DELETE,
        "acme",
        &record_path("notes", &note),
        &dave,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::NOT_FOUND, "record_not_found".to_owned())
    );
    json_call(
        &app,
        Method::GET,
        "acme",
        &record_path("notes", &note),
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    // Their own record they may delete.
    let own = create(&app, "acme", &dave, "notes", json!({"text": "dave's"})).await;
    json_call(
        &app,
        Method::DELETE,
        "acme",
        &record_path("notes", &own),
        &dave,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
}

#[tokio::test]
async fn sql_injection_attempts_are_refused_or_inert_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    // A burst of writes past the free plan's rate limits, which are not under test here.
    app.raise_rate_limits("acme").await;
    let record = create(&app, "acme", &owner, "tasks", json!({"status": "open"})).await;
    let tricky = create(
        &app,
        "acme",
        &owner,
        "tasks",
        json!({"status": "' OR '1'='1"}),
    )
    .await;

    let bad_collections = [
        "tasks%3B%20DROP%20TABLE%20records",
        "tasks'--",
        "Tasks",
        "records%22%20WHERE%201%3D1",
        "t%00",
    ];
    for collection in bad_collections {
        for (method, path) in [
            (Method::GET, format!("/v1/collections/{collection}/records")),
            (
                Method::POST,
                format!("/v1/collections/{collection}/records"),
            ),
            (Method::PUT, format!("/v1/collections/{collection}")),
            (
                Method::GET,
                format!(
                    "/v1/collections/{collection}/records/{}",
                    record["id"].as_str().unwrap()
                ),
            ),
        ] {
            let response = request(&app, method.clone(), "acme", &path, &owner)
                .json(&json!({"x": 1}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{method} {path}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "invalid_collection");
        }
    }

    for body in [
        json!({"status'); DROP TABLE records; --": 1}),
        json!({"a b": 1}),
        json!({"data->>'x'": 1}),
    ] {
        let response = request(
            &app,
            Method::POST,
            "acme",
            "/v1/collections/tasks/records",
            &owner,
        )
        .json(&body)
        .send()
        .await
        .unwrap();
        assert_eq!(
            error_code(response).await,
            (StatusCode::BAD_REQUEST, "invalid_field".to_owned()),
            "{body}"
        );
    }
    let response = request(&app, Method::PUT, "acme", "/v1/collections/tasks", &owner)
        .json(&json!({"sensitive_fields": ["ssn'; DROP TABLE records; --"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::BAD_REQUEST, "invalid_field".to_owned())
    );

    for query in [
        "filter.status')%20OR%201%3D1--=x",
        "filter.data-%3E%3E'status'=open",
        "filter.status=%7B%22%24ne%22%3A1%7D",
        "sort=created%3B%20DROP%20TABLE%20records",
        "sort=data-%3E%3E'status'",
        "sort=id",
        "sort=created,id",
        "limit=1%3B%20DELETE%20FROM%20records",
        "order_by=1",
        "filter.status=a%00b",
    ] {
        let response = request(
            &app,
            Method::GET,
            "acme",
            &format!("/v1/collections/tasks/records?{query}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }

    // A filter value is data, never SQL: the classic tautology matches only the record that
    // holds that very text.
    let page = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/tasks/records?filter.status=%27%20OR%20%271%27%3D%271",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<&str> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![tricky["id"].as_str().unwrap()]);

    assert_eq!(
        record_count(&app, "acme").await,
        2,
        "the table is there and unchanged"
    );
    let collections = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(collections["collections"].as_array().unwrap().len(), 1);
}

/// Method, path, content type, body, expected status and error code.
type BadBody<'a> = (
    Method,
    &'a str,
    Option<&'a str>,
    String,
    StatusCode,
    &'a str,
);

#[tokio::test]
async fn oversized_malformed_and_mistyped_bodies_get_json_errors_and_write_nothing() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    // A burst of writes past the free plan's rate limits, which are not under test here.
    app.raise_rate_limits("acme").await;
    let record = create(&app, "acme", &owner, "tasks", json!({"title": "t"})).await;
    let path = record_path("tasks", &record);
    let records = "/v1/collections/tasks/records";
    let huge = serde_json::to_string(&json!({"blob": "x".repeat(300 * 1024)})).unwrap();
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));

    let cases: Vec<BadBody> = vec![
        (
            Method::POST,
            records,
            Some("application/json"),
            huge.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::PUT,
            &path,
            Some("application/json"),
            huge.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::PATCH,
            &path,
            Some("application/merge-patch+json"),
            huge,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::POST,
            records,
            Some("application/json"),
            "{\"title\": ".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            records,
            Some("application/json"),
            "".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            records,
            Some("application/json"),
            deep,
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Method::POST,
            records,
            Some("application/json"),
            r#"{"title": "a\u0000b"}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_record",
        ),
        (
            Method::POST,
            records,
            Some("application/json"),
            "[1, 2]".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_record",
        ),
        (
            Method::POST,
            records,
            Some("application/json"),
            "\"text\"".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_record",
        ),
        (
            Method::PUT,
            &path,
            Some("application/json"),
            "null".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_record",
        ),
        (
            Method::PATCH,
            &path,
            Some("application/json"),
            "[{\"op\": \"remove\"}]".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_record",
        ),
        (
            Method::POST,
            records,
            Some("text/plain"),
            "{\"title\": \"x\"}".to_owned(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::POST,
            records,
            None,
            "{\"title\": \"x\"}".to_owned(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::PUT,
            &path,
            Some("application/merge-patch+json"),
            "{\"title\": \"x\"}".to_owned(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Method::PATCH,
            &path,
            Some("application/xml"),
            "<title/>".to_owned(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (method, target, content_type, body, status, code) in cases {
        let mut builder = request(&app, method.clone(), "acme", target, &owner).body(body);
        if let Some(content_type) = content_type {
            builder = builder.header("Content-Type", content_type);
        }
        let response = builder.send().await.unwrap();
        assert_eq!(
            response.status(),
            status,
            "{method} {target} {content_type:?}"
        );
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{method} {target}");
        assert!(body["error"]["request_id"].is_string());
    }
    let response = request(&app, Method::POST, "acme", &path, &owner)
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed".to_owned()
        )
    );
    assert_eq!(record_count(&app, "acme").await, 1);
    let unchanged = json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(unchanged["data"], json!({"title": "t"}));
    assert_eq!(unchanged["version"], 1);

    // Just under the limit is fine.
    let big = json!({"blob": "x".repeat(250 * 1024)});
    create(&app, "acme", &owner, "tasks", big).await;
}

#[tokio::test]
async fn after_a_data_key_rotation_old_records_open_and_writes_seal_with_the_new_version() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/people",
        &owner,
        Some(json!({"sensitive_fields": ["ssn"]})),
        StatusCode::CREATED,
    )
    .await;
    let old = create(&app, "acme", &owner, "people", json!({"ssn": SSN})).await;
    let schema = tenant_schema(&app, "acme").await;
    let key_version = |id: String| {
        let schema = schema.clone();
        let app = &app;
        async move {
            let version: i32 = app
                .superuser()
                .await
                .query_one(
                    &format!("SELECT key_version FROM {schema}.records WHERE id = $1"),
                    &[&uuid::Uuid::parse_str(&id).unwrap()],
                )
                .await
                .unwrap()
                .get(0);
            version
        }
    };
    let old_id = old["id"].as_str().unwrap().to_owned();
    assert_eq!(key_version(old_id.clone()).await, 1);

    // Rotate: a version-2 data key, wrapped with the deployment's KEK, and the cache told.
    let superuser = app.superuser().await;
    let tenant_id: uuid::Uuid = superuser
        .query_one("SELECT id FROM control.tenants WHERE slug = 'acme'", &[])
        .await
        .unwrap()
        .get(0);
    let kek = shared::envelope::Kek::from_file(&app.kek_file()).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let data_key = shared::envelope::DataKey::generate(&rng).unwrap();
    let wrapped = kek.wrap(&rng, &data_key, tenant_id, 2).unwrap();
    superuser
        .execute(
            "INSERT INTO control.tenant_data_keys (tenant_id, version, kek_id, nonce, wrapped_key)
             VALUES ($1, 2, $2, $3, $4)",
            &[
                &tenant_id,
                &wrapped.kek_id,
                &wrapped.nonce,
                &wrapped.ciphertext,
            ],
        )
        .await
        .unwrap();
    app.data.data_keys.invalidate(tenant_id).await;

    let seen = json_call(
        &app,
        Method::GET,
        "acme",
        &record_path("people", &old),
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        seen["data"]["ssn"], SSN,
        "sealed with version 1, still opens"
    );
    let new = create(
        &app,
        "acme",
        &owner,
        "people",
        json!({"ssn": "222-33-4444"}),
    )
    .await;
    assert_eq!(key_version(new["id"].as_str().unwrap().to_owned()).await, 2);
    json_call(
        &app,
        Method::PATCH,
        "acme",
        &record_path("people", &old),
        &owner,
        Some(json!({"name": "x"})),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        key_version(old_id).await,
        2,
        "re-sealed with the current key at its next write"
    );
    let seen = json_call(
        &app,
        Method::GET,
        "acme",
        &record_path("people", &old),
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(seen["data"], json!({"name": "x", "ssn": SSN}));
}

#[tokio::test]
async fn declaring_a_field_sensitive_reseals_every_record_of_a_large_collection() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    create(&app, "acme", &owner, "people", json!({"ssn": "first"})).await;
    // More records than one re-seal batch, written straight into the table.
    let schema = tenant_schema(&app, "acme").await;
    app.superuser()
        .await
        .batch_execute(&format!(
            "INSERT INTO {schema}.records (id, collection, data, version, size_bytes, created_at, updated_at)
             SELECT gen_random_uuid(), 'people', jsonb_build_object('n', i, 'ssn', 'ssn-' || i), 1, 20, now(), now()
             FROM generate_series(1, 1234) AS i"
        ))
        .await
        .unwrap();
    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/people",
        &owner,
        Some(json!({"sensitive_fields": ["ssn"]})),
        StatusCode::OK,
    )
    .await;
    let superuser = app.superuser().await;
    let in_clear: i64 = superuser
        .query_one(
            &format!("SELECT count(*) FROM {schema}.records WHERE data ? 'ssn' OR sealed IS NULL"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_clear, 0);
    let page = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/people/records?filter.n=1234",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["records"][0]["data"]["ssn"], "ssn-1234");
}

/// A request for tenant `slug` presenting the API key `key`.
fn with_key(
    app: &TestApp,
    method: Method,
    slug: &str,
    path: &str,
    key: &str,
) -> reqwest::RequestBuilder {
    app.http
        .request(method, format!("{}{path}", app.data_url))
        .header("X-Tenant", slug)
        .header("X-API-Key", key)
}

#[tokio::test]
async fn api_keys_act_within_their_scopes_own_nothing_and_see_sensitive_fields_only_when_scoped() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let key = |scopes: Value| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let created = crate::api_keys::create_key(
                app,
                "acme",
                &owner,
                json!({"name": "k", "scopes": scopes}),
            )
            .await;
            crate::api_keys::key_text(&created)
        }
    };
    let reader = key(json!(["records:read"])).await;
    // The free plan allows two keys: the second both takes notes and reads people in full.
    let note_taker = key(json!([
        "records.notes:create",
        "records.notes:read",
        "records.people:read",
        "sensitive.people:read"
    ]))
    .await;
    let sensitive_reader = note_taker.clone();

    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/notes",
        &owner,
        Some(json!({"access": "owner"})),
        StatusCode::CREATED,
    )
    .await;
    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/people",
        &owner,
        Some(json!({"sensitive_fields": ["ssn"]})),
        StatusCode::CREATED,
    )
    .await;
    let owners_note = create(
        &app,
        "acme",
        &owner,
        "notes",
        json!({"text": "the owner's"}),
    )
    .await;
    let person = create(
        &app,
        "acme",
        &owner,
        "people",
        json!({"name": "Ada", "ssn": SSN}),
    )
    .await;

    // Scopes bound what a key does.
    let response = with_key(
        &app,
        Method::POST,
        "acme",
        "/v1/collections/people/records",
        &reader,
    )
    .json(&json!({"name": "x"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = with_key(
        &app,
        Method::POST,
        "acme",
        "/v1/collections/people/records",
        &note_taker,
    )
    .json(&json!({"name": "x"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Sensitive fields: only with sensitive.<c>:read in the key's scopes.
    let seen: Value = with_key(
        &app,
        Method::GET,
        "acme",
        &record_path("people", &person),
        &reader,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(seen["data"], json!({"name": "Ada"}));
    let seen: Value = with_key(
        &app,
        Method::GET,
        "acme",
        &record_path("people", &person),
        &sensitive_reader,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(seen["data"]["ssn"], SSN);

    // A key owns nothing: in an owner collection it sees only ownerless records.
    let response = with_key(
        &app,
        Method::POST,
        "acme",
        "/v1/collections/notes/records",
        &note_taker,
    )
    .json(&json!({"text": "the key's"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let keys_note: Value = response.json().await.unwrap();
    assert_eq!(keys_note["owner_id"], Value::Null);
    let listed: Value = with_key(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/notes/records",
        &note_taker,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let ids: Vec<&str> = listed["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![keys_note["id"].as_str().unwrap()]);
    let response = with_key(
        &app,
        Method::GET,
        "acme",
        &record_path("notes", &owners_note),
        &note_taker,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::NOT_FOUND, "record_not_found".to_owned())
    );
    // The owner (manage) sees both.
    let all = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/notes/records",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["records"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_collection_made_owner_only_hides_others_records_on_another_node_within_a_second() {
    let app = TestApp::spawn().await;
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let owner = tenant_with_owner(&app, "acme").await;
    let (_, alice) = user_with_roles(&app, "acme", &owner, "alice", &["member"]).await;
    let (_, carol) = user_with_roles(&app, "acme", &owner, "carol", &["member"]).await;
    let note = create(&app, "acme", &alice, "notes", json!({"text": "alice's"})).await;
    let path = record_path("notes", &note);
    let carol_reads_on_second = || {
        let request = app
            .http
            .get(format!("{second}{path}"))
            .header("X-Tenant", "acme")
            .bearer_auth(&carol);
        async move { request.send().await.unwrap().status() }
    };
    // Shared: the second node caches the collection's settings while serving carol.
    assert_eq!(carol_reads_on_second().await, StatusCode::OK);
    assert_eq!(carol_reads_on_second().await, StatusCode::OK);

    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/collections/notes",
        &owner,
        Some(json!({"access": "owner"})),
        StatusCode::OK,
    )
    .await;
    let hidden_within = TestApp::eventually(Duration::from_secs(1), || async {
        carol_reads_on_second().await == StatusCode::NOT_FOUND
    })
    .await;
    assert!(
        hidden_within.is_some(),
        "the second node still shares alice's note"
    );
}
