//! Records API (`/v1/collections/{collection}/records`): the CRUD round trip, cursor pages,
//! filters and sorts, `If-Match` and the concurrent-update race, the guard for a viewer, and
//! the storage quota. Security properties (sensitive fields, IDOR, injection, bad bodies) are
//! in `records_security`.

use std::collections::HashSet;
use std::time::Duration;

use data_plane::clock::ManualClock;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::tenant::TenantSlug;
use tenantry_tests::{unique_address, TestApp, TestOptions};
use time::OffsetDateTime;

use crate::users_admin::{
    access, error_code, invite_and_activate, tenant_schema, tenant_with_owner, PASSWORD,
};

/// A data-plane request for tenant `slug` as the holder of `token`.
pub fn request(
    app: &TestApp,
    method: Method,
    slug: &str,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    app.http
        .request(method, format!("{}{path}", app.data_url))
        .header("X-Tenant", slug)
        .bearer_auth(token)
}

/// Sends `body` as JSON; asserts the expected status; returns the JSON answer (or Null).
pub async fn json_call(
    app: &TestApp,
    method: Method,
    slug: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
    expected: StatusCode,
) -> Value {
    let mut builder = request(app, method.clone(), slug, path, token);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let response = builder.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, expected, "{method} {path}: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// Creates a record in `collection`; returns it.
pub async fn create(
    app: &TestApp,
    slug: &str,
    token: &str,
    collection: &str,
    data: Value,
) -> Value {
    json_call(
        app,
        Method::POST,
        slug,
        &format!("/v1/collections/{collection}/records"),
        token,
        Some(data),
        StatusCode::CREATED,
    )
    .await
}

pub fn record_path(collection: &str, record: &Value) -> String {
    format!(
        "/v1/collections/{collection}/records/{}",
        record["id"].as_str().unwrap()
    )
}

/// Every record id of a list, following `next_cursor` with pages of `limit`.
async fn all_ids(app: &TestApp, slug: &str, token: &str, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/v1/collections/tasks/records?limit={limit}&{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = json_call(app, Method::GET, slug, &path, token, None, StatusCode::OK).await;
        let records = page["records"].as_array().unwrap();
        assert!(records.len() <= limit);
        ids.extend(records.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        pages += 1;
        assert!(pages < 100, "pagination does not end");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    ids
}

/// The tenant's counted record bytes, read as the test superuser.
pub async fn stored_bytes(app: &TestApp, slug: &str) -> i64 {
    let schema = tenant_schema(app, slug).await;
    app.superuser()
        .await
        .query_one(
            &format!("SELECT record_bytes FROM {schema}.storage_usage"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_record_goes_through_create_get_replace_patch_and_delete() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;

    let response = request(
        &app,
        Method::POST,
        "acme",
        "/v1/collections/tasks/records",
        &owner,
    )
    .json(&json!({"title": "write tests", "done": false, "tags": ["a"]}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let created: Value = response.json().await.unwrap();
    let path = record_path("tasks", &created);
    assert_eq!(location, path);
    assert_eq!(created["collection"], "tasks");
    assert_eq!(created["version"], 1);
    assert_eq!(
        created["data"],
        json!({"title": "write tests", "done": false, "tags": ["a"]})
    );
    assert!(created["owner_id"].is_string());
    assert!(created["created_at"].is_string());

    let response = request(&app, Method::GET, "acme", &path, &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let fetched: Value = response.json().await.unwrap();
    assert_eq!(fetched, created);

    let response = request(&app, Method::PUT, "acme", &path, &owner)
        .header("If-Match", "\"1\"")
        .json(&json!({"title": "write more tests", "done": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(
        replaced["data"],
        json!({"title": "write more tests", "done": false})
    );
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["created_at"], created["created_at"]);

    let response = request(&app, Method::PATCH, "acme", &path, &owner)
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"done": true, "title": null, "meta": {"by": "olga"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(
        patched["data"],
        json!({"done": true, "meta": {"by": "olga"}})
    );
    assert_eq!(patched["version"], 3);

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
    assert_eq!(collections["collections"][0]["name"], "tasks");
    assert_eq!(collections["collections"][0]["access"], "shared");

    json_call(
        &app,
        Method::DELETE,
        "acme",
        &path,
        &owner,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let gone = request(&app, Method::GET, "acme", &path, &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(gone).await,
        (StatusCode::NOT_FOUND, "record_not_found".to_owned())
    );
    assert_eq!(stored_bytes(&app, "acme").await, 0);
}

#[tokio::test]
async fn pages_return_every_record_once_in_a_stable_order_in_each_sort() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(TestOptions {
        clock: Some(clock.clone()),
        ..TestOptions::default()
    })
    .await;
    let owner = tenant_with_owner(&app, "acme").await;
    // 23 writes while the manual clock barely moves: past the free plan's rate limits.
    app.raise_rate_limits("acme").await;
    // 23 records in groups of three sharing a creation time: ties are broken by id.
    let mut groups: Vec<Vec<String>> = Vec::new();
    for n in 0..23 {
        if n % 3 == 0 {
            clock.advance(time::Duration::milliseconds(1));
            groups.push(Vec::new());
        }
        let record = create(&app, "acme", &owner, "tasks", json!({"n": n})).await;
        if let Some(group) = groups.last_mut() {
            group.push(record["id"].as_str().unwrap().to_owned());
        }
    }
    let created: Vec<String> = groups
        .into_iter()
        .flat_map(|mut group| {
            group.sort();
            group
        })
        .collect();

    let ascending = all_ids(&app, "acme", &owner, "sort=created", 5).await;
    assert_eq!(
        ascending, created,
        "oldest first, no duplicates, none missed"
    );
    let default_order = all_ids(&app, "acme", &owner, "", 7).await;
    assert_eq!(default_order, created);
    let descending = all_ids(&app, "acme", &owner, "sort=-created", 4).await;
    let mut reversed = created.clone();
    reversed.reverse();
    assert_eq!(descending, reversed);
    assert_eq!(
        all_ids(&app, "acme", &owner, "sort=-created", 200).await,
        reversed,
        "one page"
    );

    // Touch three records: by `-updated` they come first, the last touched first.
    let touched = [&created[3], &created[17], &created[9]];
    for id in touched {
        clock.advance(time::Duration::seconds(1));
        json_call(
            &app,
            Method::PATCH,
            "acme",
            &format!("/v1/collections/tasks/records/{id}"),
            &owner,
            Some(json!({"touched": true})),
            StatusCode::OK,
        )
        .await;
    }
    let by_update = all_ids(&app, "acme", &owner, "sort=-updated", 6).await;
    assert_eq!(by_update.len(), created.len());
    assert_eq!(
        &by_update[..3],
        &[touched[2].clone(), touched[1].clone(), touched[0].clone()]
    );
    let unique: HashSet<_> = by_update.iter().collect();
    assert_eq!(unique.len(), created.len());
    let by_update_ascending = all_ids(&app, "acme", &owner, "sort=updated", 6).await;
    assert_eq!(
        &by_update_ascending[20..],
        &[touched[0].clone(), touched[1].clone(), touched[2].clone()]
    );

    // A cursor is for the sort it was made with; the limit is bounded.
    let page = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/tasks/records?limit=2",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    let cursor = page["next_cursor"].as_str().unwrap();
    for bad in [
        format!("/v1/collections/tasks/records?sort=-updated&cursor={cursor}"),
        "/v1/collections/tasks/records?cursor=bm90LW91cnM".to_owned(),
        "/v1/collections/tasks/records?limit=201".to_owned(),
        "/v1/collections/tasks/records?limit=0".to_owned(),
        "/v1/collections/tasks/records?sort=title".to_owned(),
    ] {
        let response = request(&app, Method::GET, "acme", &bad, &owner)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn filters_match_top_level_fields_by_their_json_value() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let open_three = create(
        &app,
        "acme",
        &owner,
        "tasks",
        json!({"status": "open", "count": 3}),
    )
    .await;
    let open_four = create(
        &app,
        "acme",
        &owner,
        "tasks",
        json!({"status": "open", "count": 4, "urgent": true}),
    )
    .await;
    let closed = create(
        &app,
        "acme",
        &owner,
        "tasks",
        json!({"status": "closed", "count": 3, "code": "3"}),
    )
    .await;
    let id = |record: &Value| record["id"].as_str().unwrap().to_owned();

    for (query, expected) in [
        ("filter.status=open", vec![id(&open_three), id(&open_four)]),
        ("filter.status=%22closed%22", vec![id(&closed)]),
        ("filter.count=3", vec![id(&open_three), id(&closed)]),
        ("filter.count=3&filter.status=open", vec![id(&open_three)]),
        ("filter.urgent=true", vec![id(&open_four)]),
        ("filter.code=%223%22", vec![id(&closed)]),
        ("filter.status=pending", vec![]),
        ("filter.missing=null", vec![]),
    ] {
        let ids = all_ids(&app, "acme", &owner, query, 50).await;
        assert_eq!(ids, expected, "{query}");
    }
    for bad in [
        "filter.tags=%5B1%5D",
        "filter.status=open&filter.status=closed",
        "filter.=x",
    ] {
        let response = request(
            &app,
            Method::GET,
            "acme",
            &format!("/v1/collections/tasks/records?{bad}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn a_stale_if_match_gets_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let record = create(&app, "acme", &owner, "tasks", json!({"title": "v1"})).await;
    let path = record_path("tasks", &record);
    json_call(
        &app,
        Method::PATCH,
        "acme",
        &path,
        &owner,
        Some(json!({"title": "v2"})),
        StatusCode::OK,
    )
    .await;

    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let response = request(&app, method.clone(), "acme", &path, &owner)
            .header("If-Match", "\"1\"")
            .json(&json!({"title": "stale"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::PRECONDITION_FAILED,
            "{method}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "version_mismatch");
        assert_eq!(body["error"]["details"]["current_version"], 2);
    }
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
    assert_eq!(unchanged["data"], json!({"title": "v2"}));
    assert_eq!(unchanged["version"], 2);

    // A malformed If-Match is a 400, not a silent mismatch; `*` and the current version pass.
    let response = request(&app, Method::PATCH, "acme", &path, &owner)
        .header("If-Match", "2")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::BAD_REQUEST, "invalid_precondition".to_owned())
    );
    for tag in ["*", "\"3\""] {
        let response = request(&app, Method::PATCH, "acme", &path, &owner)
            .header("If-Match", tag)
            .json(&json!({"title": tag}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{tag}");
    }
    let response = request(&app, Method::DELETE, "acme", &path, &owner)
        .header("If-Match", "\"4\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn of_concurrent_updates_with_the_same_if_match_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let record = create(&app, "acme", &owner, "tasks", json!({"winner": null})).await;
    let path = record_path("tasks", &record);

    let attempts = (0..8).map(|n| {
        let request = request(
            &app,
            if n % 2 == 0 {
                Method::PATCH
            } else {
                Method::PUT
            },
            "acme",
            &path,
            &owner,
        )
        .header("If-Match", "\"1\"")
        .json(&json!({"winner": n}));
        async move { request.send().await.unwrap().status() }
    });
    let statuses = join_all(attempts).await;
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let lost = statuses
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((won, lost), (1, 7), "{statuses:?}");

    let after = json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(after["version"], 2);
    assert!(after["data"]["winner"].is_number());
}

#[tokio::test]
async fn a_viewer_reads_records_but_cannot_create_change_or_delete_them() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let email = unique_address("viewer");
    invite_and_activate(&app, "acme", &owner, &email, &["viewer"]).await;
    let viewer = access(&app.sign_in("acme", &email, PASSWORD).await);
    let record = create(&app, "acme", &owner, "tasks", json!({"title": "t"})).await;
    let path = record_path("tasks", &record);

    json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &viewer,
        None,
        StatusCode::OK,
    )
    .await;
    let listed = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/tasks/records",
        &viewer,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 1);

    for (method, target, permission) in [
        (
            Method::POST,
            "/v1/collections/tasks/records".to_owned(),
            "records.tasks:create",
        ),
        (Method::PUT, path.clone(), "records.tasks:update"),
        (Method::PATCH, path.clone(), "records.tasks:update"),
        (Method::DELETE, path.clone(), "records.tasks:delete"),
        (
            Method::PUT,
            "/v1/collections/tasks".to_owned(),
            "records.tasks:manage",
        ),
    ] {
        let response = request(&app, method.clone(), "acme", &target, &viewer)
            .json(&json!({"title": "mine now"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{method} {target}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["details"]["missing_permission"], permission);
    }
    let unchanged = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/tasks/records",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(unchanged["records"].as_array().unwrap().len(), 1);
    assert_eq!(unchanged["records"][0]["data"], json!({"title": "t"}));

    // Without a token: 401.
    let anonymous = app.tenant_get("acme", &path).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// Sets the tenant's storage quota through the operator API and waits (at most a second)
/// until the data plane serves it: no restart.
async fn set_storage_quota(app: &TestApp, slug: &str, bytes: i64) {
    let response = app
        .operator(Method::PATCH, &format!("/v1/tenants/{slug}/quotas"))
        .json(&json!({"max_storage_bytes": bytes}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let key = data_plane::tenancy::resolve::TenantKey::Slug(TenantSlug::parse(slug).unwrap());
    let applied = TestApp::eventually(Duration::from_secs(1), || async {
        app.data
            .registry
            .lookup(&key)
            .await
            .unwrap()
            .is_some_and(|served| served.quotas.max_storage_bytes == bytes)
    })
    .await;
    assert!(
        applied.is_some(),
        "the quota change did not reach the data plane"
    );
}

/// A record whose JSON is exactly `bytes` long.
fn record_of_size(bytes: usize) -> Value {
    // {"blob":"…"} is 11 bytes around the text.
    json!({"blob": "x".repeat(bytes - 11)})
}

#[tokio::test]
async fn writes_that_would_pass_the_storage_quota_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    // A burst of writes past the free plan's rate limits, which are not under test here.
    app.raise_rate_limits("acme").await;
    set_storage_quota(&app, "acme", 1000).await;

    let first = create(&app, "acme", &owner, "files", record_of_size(600)).await;
    assert_eq!(stored_bytes(&app, "acme").await, 600);
    let refused = request(
        &app,
        Method::POST,
        "acme",
        "/v1/collections/other/records",
        &owner,
    )
    .json(&record_of_size(600))
    .send()
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(body["error"]["details"]["quota"], "max_storage_bytes");
    assert_eq!(body["error"]["details"]["limit"], 1000);
    assert_eq!(body["error"]["details"]["used"], 600);
    // Nothing written: no record, no usage, not even the collection the write would have made.
    assert_eq!(stored_bytes(&app, "acme").await, 600);
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

    // Growing a record past the quota is refused too; shrinking is not.
    let path = record_path("files", &first);
    let grown = request(&app, Method::PUT, "acme", &path, &owner)
        .json(&record_of_size(1001))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(grown).await,
        (StatusCode::FORBIDDEN, "quota_exceeded".to_owned())
    );
    let still = json_call(
        &app,
        Method::GET,
        "acme",
        &path,
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(still["version"], 1);
    json_call(
        &app,
        Method::PUT,
        "acme",
        &path,
        &owner,
        Some(record_of_size(1000)),
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored_bytes(&app, "acme").await, 1000);
    json_call(
        &app,
        Method::PUT,
        "acme",
        &path,
        &owner,
        Some(record_of_size(100)),
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored_bytes(&app, "acme").await, 100);

    // Concurrent creates never overshoot: with 900 bytes left, exactly three of 300 fit.
    let attempts = (0..8).map(|_| {
        let request = request(
            &app,
            Method::POST,
            "acme",
            "/v1/collections/files/records",
            &owner,
        )
        .json(&record_of_size(300));
        async move { request.send().await.unwrap().status() }
    });
    let statuses = join_all(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::FORBIDDEN)
        .count();
    assert_eq!((created, refused), (3, 5), "{statuses:?}");
    assert_eq!(stored_bytes(&app, "acme").await, 1000);

    // Deleting frees the bytes; a raised quota applies without restart.
    json_call(
        &app,
        Method::DELETE,
        "acme",
        &path,
        &owner,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_eq!(stored_bytes(&app, "acme").await, 900);
    set_storage_quota(&app, "acme", 10_000).await;
    create(&app, "acme", &owner, "other", record_of_size(5000)).await;
    assert_eq!(stored_bytes(&app, "acme").await, 5900);
}

#[tokio::test]
async fn erasing_a_user_reassigns_or_deletes_their_records_by_the_privacy_policy() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let me = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/me",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    let alice_email = unique_address("alice");
    let alice_id = invite_and_activate(&app, "acme", &owner, &alice_email, &["member"]).await;
    let alice = access(&app.sign_in("acme", &alice_email, PASSWORD).await);
    let bob_email = unique_address("bob");
    let bob_id = invite_and_activate(&app, "acme", &owner, &bob_email, &["member"]).await;
    let bob = access(&app.sign_in("acme", &bob_email, PASSWORD).await);
    let kept = create(&app, "acme", &owner, "tasks", json!({"by": "owner"})).await;
    let alices = create(&app, "acme", &alice, "tasks", json!({"by": "alice"})).await;
    let bobs = create(&app, "acme", &bob, "tasks", json!({"by": "bob"})).await;
    let bytes_before = stored_bytes(&app, "acme").await;

    // Default policy: reassign to the admin who erases.
    json_call(
        &app,
        Method::DELETE,
        "acme",
        &format!("/v1/admin/users/{alice_id}"),
        &owner,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let moved = json_call(
        &app,
        Method::GET,
        "acme",
        &record_path("tasks", &alices),
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["owner_id"], me["id"]);
    assert_eq!(moved["version"], 2);
    assert_eq!(moved["data"], json!({"by": "alice"}));
    assert_eq!(stored_bytes(&app, "acme").await, bytes_before);

    // Policy `delete`: the records go with the user, and their bytes with them.
    json_call(
        &app,
        Method::PUT,
        "acme",
        "/v1/settings/privacy",
        &owner,
        Some(json!({"erased_user_records": "delete"})),
        StatusCode::OK,
    )
    .await;
    json_call(
        &app,
        Method::DELETE,
        "acme",
        &format!("/v1/admin/users/{bob_id}"),
        &owner,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let gone = request(
        &app,
        Method::GET,
        "acme",
        &record_path("tasks", &bobs),
        &owner,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let usage = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/usage",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    let remaining = stored_bytes(&app, "acme").await;
    assert!(remaining < bytes_before);
    assert_eq!(usage["storage_bytes"]["used"], remaining);
    assert_eq!(
        usage["storage_bytes"]["limit"], 104_857_600,
        "the free plan's"
    );
    let listed = json_call(
        &app,
        Method::GET,
        "acme",
        "/v1/collections/tasks/records",
        &owner,
        None,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<&str> = listed["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![kept["id"].as_str().unwrap(), alices["id"].as_str().unwrap()]
    );
}
