//! Which requests leave events, what the events say, and the query API with its guards.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::TestApp;

use super::{audit_page, create_records, tenant_id, wait_for_events};
use crate::users_admin::{call, error_code, tenant_with_owner, OWNER_EMAIL};

#[tokio::test]
async fn a_record_change_leaves_an_event_with_tenant_request_id_and_actor() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "audited").await;
    let tenant = tenant_id(&app, "audited").await;
    let response = app
        .http
        .post(format!("{}/v1/collections/tasks/records", app.data_url))
        .header("X-Tenant", "audited")
        .header("X-Request-Id", "audit-test-request-1")
        .header("User-Agent", "audit-test-agent")
        .bearer_auth(&token)
        .json(&json!({"title": "audited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    wait_for_events(&app, &tenant, "records.create", 1, Duration::from_secs(10)).await;

    let (status, page) = audit_page(&app, "audited", &token, "action=records.create").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    let event = &events[0];
    assert_eq!(event["request_id"], "audit-test-request-1");
    assert_eq!(event["actor"]["type"], "user");
    assert!(!event["actor"]["id"].as_str().unwrap().is_empty());
    assert_eq!(event["resource"]["type"], "record");
    assert_eq!(event["result"], "success");
    assert_eq!(event["http"]["method"], "POST");
    assert_eq!(event["http"]["status"], 201);
    assert_eq!(event["user_agent"], "audit-test-agent");
    assert_eq!(event["metadata"]["collection"], "tasks");
    // The tenant's own id is the partition of every row; never another's.
    let (_, stored) = super::stored_events(&app, &tenant, "records.create").await;
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn sign_in_failures_and_successes_are_audited() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "signins").await;
    let tenant = tenant_id(&app, "signins").await;
    let refused = app
        .tenant_post(
            "signins",
            "/v1/auth/login",
            &json!({"email": OWNER_EMAIL, "password": "wrong password entirely"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // tenant_with_owner signed in once (success), and activation is audited too.
    wait_for_events(&app, &tenant, "auth.login", 2, Duration::from_secs(10)).await;
    let (_, page) = audit_page(&app, "signins", &token, "action=auth.login&result=denied").await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0]["metadata"]["error"], "invalid_credentials");
    assert_eq!(events[0]["http"]["status"], 401);
    // The password is in no event.
    let all = app
        .clickhouse()
        .query("SELECT count() FROM audit_log WHERE position(metadata, ?) > 0")
        .bind("wrong password")
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(all, 0);
    let (_, page) = audit_page(&app, "signins", &token, "action=auth.login&result=success").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{page}");
}

#[tokio::test]
async fn audit_pages_follow_the_cursor_newest_first_with_each_event_once() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "paging").await;
    app.raise_rate_limits("paging").await;
    let tenant = tenant_id(&app, "paging").await;
    create_records(&app, "paging", &token, 7).await;
    wait_for_events(&app, &tenant, "records.create", 7, Duration::from_secs(10)).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("action=records.create&limit=3&cursor={cursor}"),
            None => "action=records.create&limit=3".to_owned(),
        };
        let (status, page) = audit_page(&app, "paging", &token, &query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for event in page["events"].as_array().unwrap() {
            seen.push((
                event["occurred_at"].as_str().unwrap().to_owned(),
                event["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
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
    let owner_a = tenant_with_owner(&app, "tenant-a").await;
    let owner_b = tenant_with_owner(&app, "tenant-b").await;
    let tenant_a = tenant_id(&app, "tenant-a").await;
    create_records(&app, "tenant-a", &owner_a, 2).await;
    wait_for_events(
        &app,
        &tenant_a,
        "records.create",
        2,
        Duration::from_secs(10),
    )
    .await;

    let (status, page) = audit_page(&app, "tenant-b", &owner_b, "action=records.create").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"].as_array().unwrap().len(), 0, "{page}");
    // Naming another tenant in the query is not a thing: unknown parameters are refused.
    let (status, _) = audit_page(
        &app,
        "tenant-b",
        &owner_b,
        &format!("tenant_id={tenant_a}&action=records.create"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A's token on B's host is not accepted.
    let (status, _) = audit_page(&app, "tenant-b", &owner_a, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // No token at all.
    let anonymous = app
        .tenant_get("tenant-a", "/v1/admin/audit")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_audit_query_parameters_get_400_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "badquery").await;
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
        let (status, body) = audit_page(&app, "badquery", &token, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
    // Quotes and backslashes are refused outright; values that pass are bound, not spliced,
    // and simply match nothing.
    let (status, body) = audit_page(&app, "badquery", &token, "resource_id=a%5C'b").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = audit_page(&app, "badquery", &token, "actor=x%3A1%40y").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], json!([]));
}

#[tokio::test]
async fn members_cannot_read_the_audit_log() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "guarded").await;
    let email = tenantry_tests::unique_address("member");
    crate::users_admin::invite_and_activate(&app, "guarded", &owner, &email, &["member"]).await;
    let member = crate::users_admin::access(
        &app.sign_in("guarded", &email, crate::users_admin::PASSWORD)
            .await,
    );
    let response = call(
        &app,
        Method::GET,
        "guarded",
        "/v1/admin/audit",
        &member,
        None,
    )
    .await;
    let (status, code) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
}

#[tokio::test]
async fn rate_limit_refusals_are_audited() {
    let app = TestApp::spawn().await;
    let token = tenant_with_owner(&app, "limited").await;
    let tenant = tenant_id(&app, "limited").await;
    let mut refused = 0;
    for _ in 0..40 {
        let response = call(&app, Method::GET, "limited", "/v1/me", &token, None).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert!(refused > 0, "the free plan's burst of 20 was not exceeded");
    let (stored, _) =
        wait_for_events(&app, &tenant, "http.get", refused, Duration::from_secs(10)).await;
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
    let token = tenant_with_owner(&app, "usage-day").await;
    let tenant = tenant_id(&app, "usage-day").await;
    create_records(&app, "usage-day", &token, 3).await;
    wait_for_events(&app, &tenant, "records.create", 3, Duration::from_secs(10)).await;
    let response = call(
        &app,
        Method::GET,
        "usage-day",
        "/v1/admin/usage?days=2",
        &token,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let usage: Value = response.json().await.unwrap();
    let days = usage["days"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{usage}");
    let today = &days[1];
    assert!(today["requests"].as_u64().unwrap() >= 3, "{usage}");
    assert_eq!(today["active_users"], 1, "{usage}");
    assert!(usage["storage_bytes"].as_i64().unwrap() > 0, "{usage}");
    let response = call(
        &app,
        Method::GET,
        "usage-day",
        "/v1/admin/usage?days=0",
        &token,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
