//! Which requests leave events, what the events say, and the query API with its guards.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::client::AuditQuery;
use tenantry_tests::{Client, Reply, TestApp, OWNER_EMAIL, PASSWORD};

use super::create_records;

/// `GET /v1/admin/audit?<query>` as `caller`, whatever the answer: for the query's syntax.
async fn audit_page(caller: &Client, query: &str) -> Reply {
    caller
        .get(format!("/v1/admin/audit?{query}"))
        .send()
        .await
        .unwrap()
}

/// The audit log's `action` events with `result` (any result if `None`).
fn events_of(action: &str, result: Option<&str>) -> AuditQuery {
    AuditQuery {
        action: Some(action.to_owned()),
        result: result.map(str::to_owned),
        ..AuditQuery::default()
    }
}

#[tokio::test]
async fn a_record_change_leaves_an_event_with_tenant_request_id_and_actor() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("audited").await;
    let tenant = app.tenant_id("audited").await;
    let created = owner
        .post("/v1/collections/tasks/records")
        .header("X-Request-Id", "audit-test-request-1")
        .header("User-Agent", "audit-test-agent")
        .json(&json!({"title": "audited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    app.wait_for_audit_events(&tenant, "records.create", 1, Duration::from_secs(10))
        .await;

    let page = owner
        .audit(&events_of("records.create", None))
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1, "{page:?}");
    let event = &page.events[0];
    assert_eq!(event.request_id, "audit-test-request-1");
    assert_eq!(event.actor["type"], "user");
    assert!(!event.actor["id"].as_str().unwrap().is_empty());
    assert_eq!(event.resource["type"], "record");
    assert_eq!(event.result, "success");
    assert_eq!(event.http["method"], "POST");
    assert_eq!(event.http["status"], 201);
    assert_eq!(event.user_agent, "audit-test-agent");
    assert_eq!(event.metadata["collection"], "tasks");
    // The tenant's own id is the partition of every row; never another's.
    let (_, stored) = app.stored_audit_events(&tenant, "records.create").await;
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn sign_in_failures_and_successes_are_audited() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("signins").await;
    let tenant = app.tenant_id("signins").await;
    let refused = app
        .tenant("signins")
        .auth()
        .login(OWNER_EMAIL, "wrong password entirely")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::UNAUTHORIZED));
    // tenant_with_owner signed in once (success), and activation is audited too.
    app.wait_for_audit_events(&tenant, "auth.login", 2, Duration::from_secs(10))
        .await;
    let page = owner
        .audit(&events_of("auth.login", Some("denied")))
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1, "{page:?}");
    assert_eq!(page.events[0].metadata["error"], "invalid_credentials");
    assert_eq!(page.events[0].http["status"], 401);
    // The password is in no event.
    let all = app
        .clickhouse()
        .query("SELECT count() FROM audit_log WHERE position(metadata, ?) > 0")
        .bind("wrong password")
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(all, 0);
    let page = owner
        .audit(&events_of("auth.login", Some("success")))
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1, "{page:?}");
}

#[tokio::test]
async fn audit_pages_follow_the_cursor_newest_first_with_each_event_once() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("paging").await;
    app.raise_rate_limits("paging").await;
    let tenant = app.tenant_id("paging").await;
    create_records(&owner, 7).await;
    app.wait_for_audit_events(&tenant, "records.create", 7, Duration::from_secs(10))
        .await;
    let mut seen = Vec::new();
    let mut query = AuditQuery {
        limit: Some(3),
        ..events_of("records.create", None)
    };
    loop {
        let page = owner.audit(&query).await.unwrap();
        for event in page.events {
            seen.push((event.occurred_at, event.id));
        }
        match page.next_cursor {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
        assert!(seen.len() <= 7, "pages never end");
    }
    assert_eq!(seen.len(), 7);
    let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7, "an event appeared twice");
    assert!(
        seen.windows(2).all(|pair| pair[0] >= pair[1]),
        "not newest first: {seen:?}"
    );
}

#[tokio::test]
async fn the_audit_log_shows_only_the_callers_tenant() {
    let app = TestApp::spawn().await;
    let owner_a = app.tenant_with_owner("tenant-a").await;
    let owner_b = app.tenant_with_owner("tenant-b").await;
    let tenant_a = app.tenant_id("tenant-a").await;
    create_records(&owner_a, 2).await;
    app.wait_for_audit_events(&tenant_a, "records.create", 2, Duration::from_secs(10))
        .await;

    let page = owner_b
        .audit(&events_of("records.create", None))
        .await
        .unwrap();
    assert_eq!(page.events.len(), 0, "{page:?}");
    // Naming another tenant in the query is not a thing: unknown parameters are refused.
    let refused = audit_page(
        &owner_b,
        &format!("tenant_id={tenant_a}&action=records.create"),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    // A's token on B's host is not accepted.
    let token_a = owner_a.access_token().await.unwrap().unwrap();
    let a_on_b = app.as_bearer("tenant-b", token_a.expose());
    assert_eq!(
        audit_page(&a_on_b, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // No token at all.
    let anonymous = app
        .tenant("tenant-a")
        .get("/v1/admin/audit")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_audit_query_parameters_get_400_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("badquery").await;
    app.raise_rate_limits("badquery").await;
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=501", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("from=yesterday", "invalid_time"),
        (
            "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "invalid_time",
        ),
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("cursor=MTIzOm5vdC1hLXV1aWQ", "invalid_cursor"),
        ("result=maybe", "invalid_filter"),
        ("action=x'%20OR%201%3D1%20--", "invalid_filter"),
        ("actor=", "invalid_filter"),
    ] {
        let reply = audit_page(&owner, query).await;
        assert_eq!(
            reply.error_code(),
            (StatusCode::BAD_REQUEST, code),
            "{query}: {}",
            reply.text()
        );
    }
    // Quotes and backslashes are refused outright; values that pass are bound, not spliced,
    // and simply match nothing.
    let quoted = audit_page(&owner, "resource_id=a%5C'b").await;
    assert_eq!(
        quoted.status(),
        StatusCode::BAD_REQUEST,
        "{}",
        quoted.text()
    );
    let bound = audit_page(&owner, "actor=x%3A1%40y").await;
    assert_eq!(bound.status(), StatusCode::OK, "{}", bound.text());
    assert_eq!(bound.value()["events"], json!([]));
}

#[tokio::test]
async fn members_cannot_read_the_audit_log() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("guarded").await;
    let email = tenantry_tests::unique_address("member");
    app.invite_and_activate(&owner, &email, &["member"]).await;
    let member = app.signed_in("guarded", &email, PASSWORD).await;
    let reply = member.get("/v1/admin/audit").send().await.unwrap();
    assert_eq!(reply.error_code(), (StatusCode::FORBIDDEN, "forbidden"));
}

#[tokio::test]
async fn rate_limit_refusals_are_audited() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("limited").await;
    let tenant = app.tenant_id("limited").await;
    let mut refused = 0;
    for _ in 0..40 {
        let reply = owner.get("/v1/me").send().await.unwrap();
        if reply.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused > 0, "the free plan's burst of 20 was not exceeded");
    let (stored, _) = app
        .wait_for_audit_events(&tenant, "http.get", refused, Duration::from_secs(10))
        .await;
    assert_eq!(stored, refused);
    let refused_rows = app
        .clickhouse()
        .query(
            "SELECT count() FROM audit_log WHERE tenant_id = ? AND result = 'refused' \
             AND http_status = 429 AND position(metadata, 'rate_limited') > 0",
        )
        .bind(&tenant)
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(refused_rows, refused);
}

#[tokio::test]
async fn daily_usage_counts_requests_users_and_storage() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("usage-day").await;
    let tenant = app.tenant_id("usage-day").await;
    create_records(&owner, 3).await;
    app.wait_for_audit_events(&tenant, "records.create", 3, Duration::from_secs(10))
        .await;
    let reply = owner.get("/v1/admin/usage?days=2").send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let usage = reply.value();
    let days = usage["days"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{usage}");
    let today = &days[1];
    assert!(today["requests"].as_u64().unwrap() >= 3, "{usage}");
    assert_eq!(today["active_users"], 1, "{usage}");
    assert!(usage["storage_bytes"].as_i64().unwrap() > 0, "{usage}");
    let reply = owner.get("/v1/admin/usage?days=0").send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
}
