//! Audit log (issue #5): events of requests and lifecycle changes, the query API, the writer's
//! spool through ClickHouse outages and restarts, tamper evidence and retention.

mod cluster;
mod crash;
mod durability;
mod events;
mod frozen;
mod integrity;
mod lifecycle;

use serde_json::json;
use tenantry_tests::Client;

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
