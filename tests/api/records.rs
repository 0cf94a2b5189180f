//! Records API (`/v1/collections/{collection}/records`): the CRUD round trip, cursor pages,
//! filters and sorts, `If-Match` and the concurrent-update race, the guard for a viewer, and
//! the storage quota. Security properties (sensitive fields, IDOR, injection, bad bodies) are
//! in `records_security`.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::clock::ManualClock;
use shared::tenant::TenantSlug;
use tenantry_tests::client::{ListQuery, Record};
use tenantry_tests::{unique_address, Client, TestApp, TestOptions, PASSWORD};
use time::OffsetDateTime;
use uuid::Uuid;

/// The path of record `id` in `collection`.
fn record_path(collection: &str, id: Uuid) -> String {
    format!("/v1/collections/{collection}/records/{id}")
}

/// Every record id of a list, following `next_cursor` with pages of `limit`.
async fn all_ids(client: &Client, query: ListQuery, limit: u32) -> Vec<Uuid> {
    let tasks = client.records("tasks");
    let mut query = query.limit(limit);
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = tasks.list(&query).await.unwrap();
        assert!(page.records.len() <= limit as usize);
        ids.extend(page.records.iter().map(|record| record.id));
        pages += 1;
        assert!(pages < 100, "pagination does not end");
        match page.next_cursor {
            Some(next) => query = query.cursor(Some(next)),
            None => break,
        }
    }
    ids
}

/// The tenant's counted record bytes, read as the test superuser.
pub async fn stored_bytes(app: &TestApp, slug: &str) -> i64 {
    let schema = app.tenant_schema(slug).await;
    app.superuser()
        .await
        .query_one(
            &format!("SELECT record_bytes FROM {schema}.storage_usage"),
            &[],
        )
        .await
        .unwrap()
        .try_get("record_bytes")
        .unwrap()
}

#[tokio::test]
async fn a_record_goes_through_create_get_replace_patch_and_delete() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;

    let response = owner
        .post("/v1/collections/tasks/records")
        .json(&json!({"title": "write tests", "done": false, "tags": ["a"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.header("etag"), Some("\"1\""));
    let created: Record = response.json().unwrap();
    let path = record_path("tasks", created.id);
    assert_eq!(response.header("location"), Some(path.as_str()));
    assert_eq!(created.collection, "tasks");
    assert_eq!(created.version, 1);
    assert_eq!(
        json!(created.data),
        json!({"title": "write tests", "done": false, "tags": ["a"]})
    );
    assert!(created.owner_id.is_some());

    let fetched = owner.get(&path).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.header("etag"), Some("\"1\""));
    assert_eq!(fetched.value(), response.value());

    let response = owner
        .put(&path)
        .header("If-Match", "\"1\"")
        .json(&json!({"title": "write more tests", "done": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.header("etag"), Some("\"2\""));
    let replaced: Record = response.json().unwrap();
    assert_eq!(
        json!(replaced.data),
        json!({"title": "write more tests", "done": false})
    );
    assert_eq!(replaced.version, 2);
    assert_eq!(replaced.created_at, created.created_at);

    let response = owner
        .patch(&path)
        .body(
            r#"{"done": true, "title": null, "meta": {"by": "olga"}}"#,
            "application/merge-patch+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let patched: Record = response.json().unwrap();
    assert_eq!(
        json!(patched.data),
        json!({"done": true, "meta": {"by": "olga"}})
    );
    assert_eq!(patched.version, 3);

    let collections: Value = owner.get("/v1/collections").ok().await.unwrap();
    assert_eq!(collections["collections"][0]["name"], "tasks");
    assert_eq!(collections["collections"][0]["access"], "shared");

    let deleted = owner.delete(&path).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = owner.get(&path).send().await.unwrap();
    assert_eq!(
        gone.error_code(),
        (StatusCode::NOT_FOUND, "record_not_found")
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
    let owner = app.tenant_with_owner("acme").await;
    let tasks = owner.records("tasks");
    // 23 writes while the manual clock barely moves: past the free plan's rate limits.
    app.raise_rate_limits("acme").await;
    // 23 records in groups of three sharing a creation time: ties are broken by id.
    let mut groups: Vec<Vec<Uuid>> = Vec::new();
    for n in 0..23 {
        if n % 3 == 0 {
            clock.advance(time::Duration::milliseconds(1));
            groups.push(Vec::new());
        }
        let record = tasks.create(&json!({"n": n})).await.unwrap();
        if let Some(group) = groups.last_mut() {
            group.push(record.id);
        }
    }
    let created: Vec<Uuid> = groups
        .into_iter()
        .flat_map(|mut group| {
            group.sort();
            group
        })
        .collect();

    let by = |sort: &str| ListQuery::default().sort(sort);
    let ascending = all_ids(&owner, by("created"), 5).await;
    assert_eq!(
        ascending, created,
        "oldest first, no duplicates, none missed"
    );
    let default_order = all_ids(&owner, ListQuery::default(), 7).await;
    assert_eq!(default_order, created);
    let descending = all_ids(&owner, by("-created"), 4).await;
    let mut reversed = created.clone();
    reversed.reverse();
    assert_eq!(descending, reversed);
    assert_eq!(
        all_ids(&owner, by("-created"), 200).await,
        reversed,
        "one page"
    );

    // Touch three records: by `-updated` they come first, the last touched first.
    let touched = [created[3], created[17], created[9]];
    for id in touched {
        clock.advance(time::Duration::seconds(1));
        tasks
            .update(id, &json!({"touched": true}), None)
            .await
            .unwrap();
    }
    let by_update = all_ids(&owner, by("-updated"), 6).await;
    assert_eq!(by_update.len(), created.len());
    assert_eq!(&by_update[..3], &[touched[2], touched[1], touched[0]]);
    let unique: HashSet<_> = by_update.iter().collect();
    assert_eq!(unique.len(), created.len());
    let by_update_ascending = all_ids(&owner, by("updated"), 6).await;
    assert_eq!(
        &by_update_ascending[20..],
        &[touched[0], touched[1], touched[2]]
    );

    // A cursor is for the sort it was made with; the limit is bounded.
    let page = tasks.list(&ListQuery::default().limit(2)).await.unwrap();
    let cursor = page.next_cursor.unwrap();
    for bad in [
        format!("/v1/collections/tasks/records?sort=-updated&cursor={cursor}"),
        "/v1/collections/tasks/records?cursor=bm90LW91cnM".to_owned(),
        "/v1/collections/tasks/records?limit=201".to_owned(),
        "/v1/collections/tasks/records?limit=0".to_owned(),
        "/v1/collections/tasks/records?sort=title".to_owned(),
    ] {
        let response = owner.get(&bad).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn filters_match_top_level_fields_by_their_json_value() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let tasks = owner.records("tasks");
    let open_three = tasks
        .create(&json!({"status": "open", "count": 3}))
        .await
        .unwrap()
        .id;
    let open_four = tasks
        .create(&json!({"status": "open", "count": 4, "urgent": true}))
        .await
        .unwrap()
        .id;
    let closed = tasks
        .create(&json!({"status": "closed", "count": 3, "code": "3"}))
        .await
        .unwrap()
        .id;

    let only = |filters: &[(&str, &str)]| {
        filters
            .iter()
            .fold(ListQuery::default(), |query, (field, value)| {
                query.filter(field, value)
            })
    };
    for (filters, expected) in [
        (vec![("status", "open")], vec![open_three, open_four]),
        (vec![("status", "\"closed\"")], vec![closed]),
        (vec![("count", "3")], vec![open_three, closed]),
        (vec![("count", "3"), ("status", "open")], vec![open_three]),
        (vec![("urgent", "true")], vec![open_four]),
        (vec![("code", "\"3\"")], vec![closed]),
        (vec![("status", "pending")], vec![]),
        (vec![("missing", "null")], vec![]),
    ] {
        let ids = all_ids(&owner, only(&filters), 50).await;
        assert_eq!(ids, expected, "{filters:?}");
    }
    for bad in [
        "filter.tags=%5B1%5D",
        "filter.status=open&filter.status=closed",
        "filter.=x",
    ] {
        let response = owner
            .get(format!("/v1/collections/tasks/records?{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn a_stale_if_match_gets_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let tasks = owner.records("tasks");
    let record = tasks.create(&json!({"title": "v1"})).await.unwrap();
    let path = record_path("tasks", record.id);
    tasks
        .update(record.id, &json!({"title": "v2"}), None)
        .await
        .unwrap();

    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let response = owner
            .call(method.clone(), &path)
            .header("If-Match", "\"1\"")
            .json(&json!({"title": "stale"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.error_code(),
            (StatusCode::PRECONDITION_FAILED, "version_mismatch"),
            "{method}"
        );
        assert_eq!(response.value()["error"]["details"]["current_version"], 2);
    }
    let unchanged = tasks.get(record.id).await.unwrap();
    assert_eq!(json!(unchanged.data), json!({"title": "v2"}));
    assert_eq!(unchanged.version, 2);

    // A malformed If-Match is a 400, not a silent mismatch; `*` and the current version pass.
    let response = owner
        .patch(&path)
        .header("If-Match", "2")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_precondition")
    );
    for tag in ["*", "\"3\""] {
        let response = owner
            .patch(&path)
            .header("If-Match", tag)
            .json(&json!({"title": tag}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{tag}");
    }
    let response = owner
        .delete(&path)
        .header("If-Match", "\"4\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn of_concurrent_updates_with_the_same_if_match_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let tasks = owner.records("tasks");
    let record = tasks.create(&json!({"winner": null})).await.unwrap();
    let path = record_path("tasks", record.id);

    let attempts = (0..8).map(|n| {
        let method = if n % 2 == 0 {
            Method::PATCH
        } else {
            Method::PUT
        };
        let request = owner
            .call(method, &path)
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

    let after = tasks.get(record.id).await.unwrap();
    assert_eq!(after.version, 2);
    assert!(after.data["winner"].is_number());
}

#[tokio::test]
async fn a_viewer_reads_records_but_cannot_create_change_or_delete_them() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let email = unique_address("viewer");
    app.invite_and_activate(&owner, &email, &["viewer"]).await;
    let viewer = app.signed_in("acme", &email, PASSWORD).await;
    let record = owner
        .records("tasks")
        .create(&json!({"title": "t"}))
        .await
        .unwrap();
    let path = record_path("tasks", record.id);

    viewer.records("tasks").get(record.id).await.unwrap();
    let listed = viewer
        .records("tasks")
        .list(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.records.len(), 1);

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
        let response = viewer
            .call(method.clone(), &target)
            .json(&json!({"title": "mine now"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{method} {target}"
        );
        assert_eq!(
            response.value()["error"]["details"]["missing_permission"],
            permission
        );
    }
    let unchanged = owner
        .records("tasks")
        .list(&ListQuery::default())
        .await
        .unwrap();
    assert_eq!(unchanged.records.len(), 1);
    assert_eq!(json!(unchanged.records[0].data), json!({"title": "t"}));

    // Without a token: 401.
    let anonymous = app.tenant("acme").get(&path).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

/// Sets the tenant's storage quota through the operator API and waits (at most a second)
/// until the data plane serves it: no restart.
async fn set_storage_quota(app: &TestApp, slug: &str, bytes: i64) {
    app.operator_api()
        .tenants()
        .set_quotas(slug, &json!({"max_storage_bytes": bytes}))
        .await
        .unwrap();
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
    let owner = app.tenant_with_owner("acme").await;
    let files = owner.records("files");
    // A burst of writes past the free plan's rate limits, which are not under test here.
    app.raise_rate_limits("acme").await;
    set_storage_quota(&app, "acme", 1000).await;

    let first = files.create(&record_of_size(600)).await.unwrap();
    assert_eq!(stored_bytes(&app, "acme").await, 600);
    let refused = owner
        .post("/v1/collections/other/records")
        .json(&record_of_size(600))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.error_code(),
        (StatusCode::FORBIDDEN, "quota_exceeded")
    );
    let details = &refused.value()["error"]["details"];
    assert_eq!(details["quota"], "max_storage_bytes");
    assert_eq!(details["limit"], 1000);
    assert_eq!(details["used"], 600);
    // Nothing written: no record, no usage, not even the collection the write would have made.
    assert_eq!(stored_bytes(&app, "acme").await, 600);
    let collections: Value = owner.get("/v1/collections").ok().await.unwrap();
    assert_eq!(collections["collections"].as_array().unwrap().len(), 1);

    // Growing a record past the quota is refused too; shrinking is not.
    let grown = files
        .replace(first.id, &record_of_size(1001), None)
        .await
        .unwrap_err();
    assert_eq!(
        (grown.status(), grown.code()),
        (Some(StatusCode::FORBIDDEN), Some("quota_exceeded"))
    );
    let still = files.get(first.id).await.unwrap();
    assert_eq!(still.version, 1);
    files
        .replace(first.id, &record_of_size(1000), None)
        .await
        .unwrap();
    assert_eq!(stored_bytes(&app, "acme").await, 1000);
    files
        .replace(first.id, &record_of_size(100), None)
        .await
        .unwrap();
    assert_eq!(stored_bytes(&app, "acme").await, 100);

    // Concurrent creates never overshoot: with 900 bytes left, exactly three of 300 fit.
    let attempts = (0..8).map(|_| {
        let request = owner
            .post("/v1/collections/files/records")
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
    files.delete(first.id, None).await.unwrap();
    assert_eq!(stored_bytes(&app, "acme").await, 900);
    set_storage_quota(&app, "acme", 10_000).await;
    owner
        .records("other")
        .create(&record_of_size(5000))
        .await
        .unwrap();
    assert_eq!(stored_bytes(&app, "acme").await, 5900);
}

#[tokio::test]
async fn erasing_a_user_reassigns_or_deletes_their_records_by_the_privacy_policy() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let me = owner.me().get().await.unwrap();
    let alice_email = unique_address("alice");
    let alice_id = app
        .invite_and_activate(&owner, &alice_email, &["member"])
        .await;
    let alice = app.signed_in("acme", &alice_email, PASSWORD).await;
    let bob_email = unique_address("bob");
    let bob_id = app
        .invite_and_activate(&owner, &bob_email, &["member"])
        .await;
    let bob = app.signed_in("acme", &bob_email, PASSWORD).await;
    let kept = owner
        .records("tasks")
        .create(&json!({"by": "owner"}))
        .await
        .unwrap();
    let alices = alice
        .records("tasks")
        .create(&json!({"by": "alice"}))
        .await
        .unwrap();
    let bobs = bob
        .records("tasks")
        .create(&json!({"by": "bob"}))
        .await
        .unwrap();
    let bytes_before = stored_bytes(&app, "acme").await;

    // Default policy: reassign to the admin who erases.
    owner.users().delete(alice_id).await.unwrap();
    let moved = owner.records("tasks").get(alices.id).await.unwrap();
    assert_eq!(moved.owner_id, Some(me.id));
    assert_eq!(moved.version, 2);
    assert_eq!(json!(moved.data), json!({"by": "alice"}));
    assert_eq!(stored_bytes(&app, "acme").await, bytes_before);

    // Policy `delete`: the records go with the user, and their bytes with them.
    owner
        .put_setting("privacy", &json!({"erased_user_records": "delete"}))
        .await
        .unwrap();
    owner.users().delete(bob_id).await.unwrap();
    let gone = owner
        .get(record_path("tasks", bobs.id))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let usage = owner.usage().await.unwrap();
    let remaining = stored_bytes(&app, "acme").await;
    assert!(remaining < bytes_before);
    assert_eq!(usage["storage_bytes"]["used"], remaining);
    assert_eq!(
        usage["storage_bytes"]["limit"], 104_857_600,
        "the free plan's"
    );
    let listed = owner
        .records("tasks")
        .list(&ListQuery::default())
        .await
        .unwrap();
    let ids: Vec<Uuid> = listed.records.iter().map(|record| record.id).collect();
    assert_eq!(ids, vec![kept.id, alices.id]);
}
