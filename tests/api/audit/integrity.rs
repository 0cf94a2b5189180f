//! Tamper evidence (`control-plane audit verify`), the ClickHouse schema migrator and
//! retention.

use std::time::Duration;

use serde_json::Value;
use shared::events::rows::AuditRow;
use tenantry_tests::TestApp;

use super::{create_records, tenant_id, wait_for_events};
use crate::cli::run;
use crate::users_admin::tenant_with_owner;

async fn verify(app: &TestApp, slug: &str) -> anyhow::Result<String> {
    run(app, &["control-plane", "audit", "verify", slug]).await
}

/// A tenant with `count` record-creation events stored; its id.
async fn tenant_with_events(app: &TestApp, slug: &str, count: usize) -> String {
    let token = tenant_with_owner(app, slug).await;
    app.raise_rate_limits(slug).await;
    let tenant = tenant_id(app, slug).await;
    create_records(app, slug, &token, count).await;
    wait_for_events(
        app,
        &tenant,
        "records.create",
        count as u64,
        Duration::from_secs(10),
    )
    .await;
    // Lifecycle events of the control plane too.
    app.control.events.as_ref().unwrap().flush().await;
    tenant
}

async fn rows(app: &TestApp, tenant: &str, action: &str) -> Vec<AuditRow> {
    app.clickhouse()
        .query(
            "SELECT ?fields FROM audit_log WHERE tenant_id = ? AND action = ? ORDER BY chain_seq",
        )
        .bind(tenant)
        .bind(action)
        .fetch_all()
        .await
        .unwrap()
}

/// Runs a ClickHouse mutation and waits until `check` (a count query) returns `expected`.
async fn mutate(app: &TestApp, statement: &str, check: &str, expected: u64) {
    app.clickhouse().query(statement).execute().await.unwrap();
    let done = TestApp::eventually(Duration::from_secs(30), || async {
        app.clickhouse()
            .query(check)
            .fetch_one::<u64>()
            .await
            .is_ok_and(|count| count == expected)
    })
    .await;
    assert!(done.is_some(), "mutation `{statement}` did not finish");
}

#[tokio::test]
async fn audit_verify_passes_on_an_untouched_log_and_fails_on_altered_removed_or_forged_events() {
    let app = TestApp::spawn().await;
    let altered = tenant_with_events(&app, "altered", 4).await;
    let removed = tenant_with_events(&app, "removed", 4).await;
    let forged = tenant_with_events(&app, "forged", 4).await;
    let truncated = tenant_with_events(&app, "truncated", 4).await;
    for slug in ["altered", "removed", "forged", "truncated"] {
        let output = verify(&app, slug).await.unwrap();
        assert!(output.contains("verifies"), "{slug}: {output}");
    }
    // The lifecycle event of each tenant's creation is there, chained with the rest.
    let created = rows(&app, &altered, "tenant.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].actor_type, "operator");

    // UPDATE: one event's result changed.
    let target = rows(&app, &altered, "records.create").await[1]
        .event_id
        .clone();
    mutate(
        &app,
        &format!("ALTER TABLE audit_log UPDATE result = 'failure' WHERE event_id = '{target}'"),
        &format!(
            "SELECT count() FROM audit_log WHERE event_id = '{target}' AND result = 'failure'"
        ),
        1,
    )
    .await;
    let error = verify(&app, "altered").await.unwrap_err().to_string();
    assert!(error.contains("does not verify"), "{error}");

    // DELETE: one event from the middle of a chain.
    let target = rows(&app, &removed, "records.create").await[1]
        .event_id
        .clone();
    mutate(
        &app,
        &format!("ALTER TABLE audit_log DELETE WHERE event_id = '{target}'"),
        &format!("SELECT count() FROM audit_log WHERE event_id = '{target}'"),
        0,
    )
    .await;
    assert!(verify(&app, "removed").await.is_err());

    // INSERT: a forged event appended to a chain, linked to its last MAC, MAC'd without the
    // tenant's key.
    let mut chain = rows(&app, &forged, "records.create").await;
    let last = chain.pop().unwrap();
    let mut forgery = last.clone();
    forgery.event_id = uuid::Uuid::now_v7().to_string();
    forgery.chain_seq = last.chain_seq + 1;
    forgery.prev_mac = last.mac.clone();
    forgery.action = "records.delete".to_owned();
    forgery.mac = "00".repeat(32);
    let mut insert = app
        .clickhouse()
        .insert::<AuditRow>("audit_log")
        .await
        .unwrap();
    insert.write(&forgery).await.unwrap();
    insert.end().await.unwrap();
    let error = verify(&app, "forged").await.unwrap_err().to_string();
    assert!(error.contains("does not verify"), "{error}");

    // DELETE of a chain's tail: every remaining link is fine, but the anchored head is gone.
    let chain = rows(&app, &truncated, "records.create").await;
    let stream = chain.last().unwrap().chain_stream.clone();
    let from = chain[2].chain_seq;
    mutate(
        &app,
        &format!(
            "ALTER TABLE audit_log DELETE WHERE tenant_id = '{truncated}' \
             AND chain_stream = '{stream}' AND chain_seq >= {from}"
        ),
        &format!(
            "SELECT count() FROM audit_log WHERE tenant_id = '{truncated}' \
             AND chain_stream = '{stream}' AND chain_seq >= {from}"
        ),
        0,
    )
    .await;
    let report = control_plane::audit::verify(
        &app.control,
        &control_plane::tenants::service::get(
            &app.control,
            &shared::tenant::TenantSlug::parse("truncated").unwrap(),
        )
        .await
        .unwrap(),
    )
    .await
    .unwrap();
    assert!(!report.ok());
    assert!(
        report
            .problems
            .iter()
            .any(|problem| problem.contains("anchored head")),
        "{:?}",
        report.problems
    );
    // The other tenants' logs are untouched by all this.
    let _ = (altered, removed, forged);
}

#[tokio::test]
async fn the_clickhouse_schema_is_versioned_and_migrating_again_changes_nothing() {
    let app = TestApp::spawn().await;
    let client = app.clickhouse();
    let database = app.control.config.events.clickhouse_database.clone();
    let again = shared::events::schema::migrate(&client, &database)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let versions: Vec<u32> = client
        .query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(versions, vec![1, 2]);
    let tables: Vec<String> = client
        .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
        .bind(database.as_str())
        .fetch_all()
        .await
        .unwrap();
    for table in [
        "audit_log",
        "telemetry_logs",
        "telemetry_metrics",
        "telemetry_spans",
    ] {
        assert!(tables.iter().any(|name| name == table), "{tables:?}");
    }
    let key: (String, String) = client
        .query("SELECT sorting_key, partition_key FROM system.tables WHERE database = ? AND name = 'audit_log'")
        .bind(database.as_str())
        .fetch_one()
        .await
        .unwrap_or_default();
    // 18.16 has no sorting_key column; newer servers do. Either way tenant comes first.
    if !key.0.is_empty() {
        assert!(key.0.starts_with("tenant_id"), "{key:?}");
    }
    assert!(shared::events::schema::migrate(&client, "bad-name; DROP")
        .await
        .is_err());
}

#[tokio::test]
async fn retention_deletes_each_tenants_expired_events_and_keeps_the_rest() {
    let app = TestApp::spawn().await;
    let short = tenant_with_events(&app, "shortkeep", 2).await;
    let long = tenant_with_events(&app, "longkeep", 2).await;
    // Old events (40 days ago) for both tenants, written straight into ClickHouse.
    let old = (time::OffsetDateTime::now_utc() - time::Duration::days(40)).unix_timestamp() as u32;
    let mut insert = app
        .clickhouse()
        .insert::<AuditRow>("audit_log")
        .await
        .unwrap();
    for tenant in [&short, &long] {
        let mut row = rows(&app, tenant, "records.create").await[0].clone();
        row.event_id = uuid::Uuid::now_v7().to_string();
        row.occurred_at = old;
        row.occurred_at_ms = u64::from(old) * 1000;
        row.action = "records.old".to_owned();
        insert.write(&row).await.unwrap();
    }
    insert.end().await.unwrap();
    run(
        &app,
        &[
            "control-plane",
            "audit",
            "set-retention",
            "shortkeep",
            "--audit-days",
            "30",
        ],
    )
    .await
    .unwrap();
    let bad = run(
        &app,
        &[
            "control-plane",
            "audit",
            "set-retention",
            "shortkeep",
            "--audit-days",
            "0",
        ],
    )
    .await;
    assert!(bad.is_err());
    let output = run(&app, &["control-plane", "audit", "retention", "--json"])
        .await
        .unwrap();
    let report: Value = serde_json::from_str(&output).unwrap();
    assert!(report["tenants"].as_u64().unwrap() >= 2, "{report}");
    let gone = TestApp::eventually(Duration::from_secs(30), || async {
        super::stored_events(&app, &short, "records.old").await.0 == 0
    })
    .await;
    assert!(
        gone.is_some(),
        "the expired event of the 30-day tenant is still there"
    );
    // Retention recorded where it cut the chain, so the rest still verifies.
    let output = verify(&app, "shortkeep").await.unwrap();
    assert!(output.contains("verifies"), "{output}");
    // The 365-day tenant keeps its 40-day-old event; recent events stay for both.
    assert_eq!(super::stored_events(&app, &long, "records.old").await.0, 1);
    assert_eq!(
        super::stored_events(&app, &short, "records.create").await.0,
        2
    );
}
