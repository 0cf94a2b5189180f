//! Audit log (issue #5): events of requests and lifecycle changes, the query API, the writer's
//! spool through ClickHouse outages and restarts, tamper evidence and retention.

mod crash;
mod durability;
mod events;
mod frozen;
mod integrity;
mod lifecycle;

use std::time::Duration;

use serde_json::json;
use tenantry_tests::{Client, TestApp};

/// Events of `action` for tenant `tenant_id` stored in ClickHouse: (rows, distinct ids).
/// Panics when ClickHouse does not answer: a failed query is not "no events".
pub async fn stored_events(app: &TestApp, tenant_id: &str, action: &str) -> (u64, u64) {
    count_events(app, tenant_id, action)
        .await
        .unwrap_or_else(|error| panic!("counting `{action}` events in ClickHouse: {error}"))
}

async fn count_events(
    app: &TestApp,
    tenant_id: &str,
    action: &str,
) -> Result<(u64, u64), clickhouse::error::Error> {
    app.clickhouse()
        .query(
            "SELECT count(), uniqExact(event_id) FROM audit_log \
             WHERE tenant_id = ? AND action = ?",
        )
        .bind(tenant_id)
        .bind(action)
        .fetch_one::<(u64, u64)>()
        .await
}

/// Waits until ClickHouse holds at least `count` events of `action`; then returns what it
/// holds (rows, distinct ids), so the caller can assert there are no more.
pub async fn wait_for_events(
    app: &TestApp,
    tenant_id: &str,
    action: &str,
    count: u64,
    limit: Duration,
) -> (u64, u64) {
    // While polling, a ClickHouse that does not answer yet (e.g. just restarted) is "not yet".
    let arrived = TestApp::eventually(limit, || async {
        count_events(app, tenant_id, action)
            .await
            .is_ok_and(|(rows, _)| rows >= count)
    })
    .await;
    let stored = stored_events(app, tenant_id, action).await;
    assert!(
        arrived.is_some(),
        "only {stored:?} of {count} `{action}` events arrived within {limit:?}"
    );
    stored
}

/// Creates `count` records in `tasks` as `owner`, each request succeeding.
pub async fn create_records(owner: &Client, count: usize) {
    for index in 0..count {
        owner
            .records("tasks")
            .create(&json!({"title": format!("task {index}")}))
            .await
            .unwrap();
    }
}

pub async fn tenant_id(app: &TestApp, slug: &str) -> String {
    let id: uuid::Uuid = app
        .superuser()
        .await
        .query_one(
            "SELECT id FROM control.tenants WHERE slug = $1 AND status <> 'deleted'",
            &[&slug],
        )
        .await
        .unwrap()
        .get(0);
    id.to_string()
}
