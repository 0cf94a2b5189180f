//! Tamper evidence (`control-plane audit verify`), the ClickHouse schema migrator and
//! retention.

use std::time::Duration;

use serde_json::Value;
use shared::events::rows::AuditRow;
use tenantry_tests::{TestApp, TestOptions};

use super::create_records;

async fn verify(app: &TestApp, slug: &str) -> anyhow::Result<String> {
    app.run_cli(&["control-plane", "audit", "verify", slug])
        .await
}

/// A tenant with `count` record-creation events stored; its id.
async fn tenant_with_events(app: &TestApp, slug: &str, count: usize) -> String {
    let owner = app.tenant_with_owner(slug).await;
    app.raise_rate_limits(slug).await;
    let tenant = app.tenant_id(slug).await;
    create_records(&owner, count).await;
    app.wait_for_audit_events(
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

/// What `audit verify` finds wrong with the log of `slug`. A store that cannot be read fails
/// the test here: it is not a finding.
async fn findings(app: &TestApp, slug: &str) -> Vec<String> {
    let tenant = control_plane::tenants::service::get(
        &app.control,
        &shared::tenant::TenantSlug::parse(slug).unwrap(),
    )
    .await
    .unwrap();
    control_plane::audit::verify(&app.control, &tenant)
        .await
        .unwrap()
        .problems
}

/// What identifies a stored event and its place in the chain.
fn chain_links(rows: &[AuditRow]) -> Vec<(String, String, u64, String, String)> {
    rows.iter()
        .map(|row| {
            (
                row.event_id.clone(),
                row.chain_stream.clone(),
                row.chain_seq,
                row.result.clone(),
                row.mac.clone(),
            )
        })
        .collect()
}

fn fails_its_mac(row: &AuditRow) -> String {
    format!(
        "stream {}: event {} (sequence {}) fails its MAC: altered or forged",
        row.chain_stream, row.event_id, row.chain_seq
    )
}

#[tokio::test]
async fn audit_verify_passes_on_an_untouched_log_and_fails_on_altered_removed_or_forged_events() {
    let app = TestApp::spawn().await;
    let altered = tenant_with_events(&app, "altered", 4).await;
    let removed = tenant_with_events(&app, "removed", 4).await;
    let forged = tenant_with_events(&app, "forged", 4).await;
    let truncated = tenant_with_events(&app, "truncated", 4).await;
    let bystander = tenant_with_events(&app, "bystander", 4).await;
    for slug in ["altered", "removed", "forged", "truncated", "bystander"] {
        let output = verify(&app, slug).await.unwrap();
        assert!(output.contains("verifies"), "{slug}: {output}");
    }
    // The lifecycle event of each tenant's creation is there, chained with the rest.
    let created = rows(&app, &altered, "tenant.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].actor_type, "operator");
    let bystander_before = chain_links(&rows(&app, &bystander, "records.create").await);

    // UPDATE: one event's result changed.
    let target = rows(&app, &altered, "records.create").await[1].clone();
    let event = &target.event_id;
    mutate(
        &app,
        &format!("ALTER TABLE audit_log UPDATE result = 'failure' WHERE event_id = '{event}'"),
        &format!("SELECT count() FROM audit_log WHERE event_id = '{event}' AND result = 'failure'"),
        1,
    )
    .await;
    let error = verify(&app, "altered").await.unwrap_err().to_string();
    assert!(error.contains("does not verify"), "{error}");
    let altered_finding = vec![fails_its_mac(&target)];
    assert_eq!(findings(&app, "altered").await, altered_finding);

    // DELETE: one event from the middle of a chain.
    let target = rows(&app, &removed, "records.create").await[1].clone();
    let event = &target.event_id;
    mutate(
        &app,
        &format!("ALTER TABLE audit_log DELETE WHERE event_id = '{event}'"),
        &format!("SELECT count() FROM audit_log WHERE event_id = '{event}'"),
        0,
    )
    .await;
    let error = verify(&app, "removed").await.unwrap_err().to_string();
    assert!(error.contains("does not verify"), "{error}");
    let removed_finding = vec![format!(
        "stream {}: events {seq}..{seq} are missing",
        target.chain_stream,
        seq = target.chain_seq
    )];
    assert_eq!(findings(&app, "removed").await, removed_finding);

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
    let forged_finding = vec![fails_its_mac(&forgery)];
    assert_eq!(findings(&app, "forged").await, forged_finding);

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
    let truncated_findings = findings(&app, "truncated").await;
    assert_eq!(truncated_findings.len(), 1, "{truncated_findings:?}");
    assert!(
        truncated_findings[0].starts_with(&format!("stream {stream}: anchored head "))
            && truncated_findings[0].ends_with(" is missing (events removed)"),
        "{truncated_findings:?}"
    );

    // Each tampering shows in its own tenant's log only, and a tenant nobody touched still
    // verifies, with every event as it was.
    assert_eq!(findings(&app, "altered").await, altered_finding);
    assert_eq!(findings(&app, "removed").await, removed_finding);
    assert_eq!(findings(&app, "forged").await, forged_finding);
    assert_eq!(findings(&app, "bystander").await, Vec::<String>::new());
    let output = verify(&app, "bystander").await.unwrap();
    assert!(output.contains("verifies"), "{output}");
    assert_eq!(
        chain_links(&rows(&app, &bystander, "records.create").await),
        bystander_before
    );
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
    let (engine, sorting_key, partition_key, create_query): (String, String, String, String) =
        client
            .query(
                "SELECT engine, sorting_key, partition_key, create_table_query \
                 FROM system.tables WHERE database = ? AND name = 'audit_log'",
            )
            .bind(database.as_str())
            .fetch_one()
            .await
            .unwrap();
    // Tenant first, so one tenant's reads and retention deletes touch only its own range;
    // the event id in the key, so ReplacingMergeTree collapses a batch replayed twice;
    // month partitions, which retention drops whole.
    let columns: Vec<&str> = sorting_key.split(", ").collect();
    assert_eq!(columns.first(), Some(&"tenant_id"), "{sorting_key}");
    assert!(columns.contains(&"event_id"), "{sorting_key}");
    assert_eq!(engine, "ReplacingMergeTree");
    assert_eq!(partition_key, "toYYYYMM(occurred_at)");
    assert!(
        create_query.contains(&format!("ORDER BY ({sorting_key})")),
        "{create_query}"
    );
    let refused = shared::events::schema::migrate(&client, "bad-name; DROP").await;
    assert!(
        matches!(
            &refused,
            Err(shared::events::schema::SchemaError::DatabaseName(name)) if name == "bad-name; DROP"
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn retention_deletes_each_tenants_expired_events_and_keeps_the_rest() {
    retention_keeps_what_each_tenant_keeps(TestApp::spawn().await).await;
}

#[tokio::test]
async fn on_a_clickhouse_cluster_retention_deletes_on_each_shard() {
    // The deletes and partition drops go to each shard's local tables (a `Distributed`
    // table takes neither).
    retention_keeps_what_each_tenant_keeps(
        TestApp::spawn_with(TestOptions {
            clickhouse_cluster: Some(tenantry_tests::local_cluster()),
            ..TestOptions::default()
        })
        .await,
    )
    .await;
}

async fn retention_keeps_what_each_tenant_keeps(app: TestApp) {
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
    app.run_cli(&[
        "control-plane",
        "audit",
        "set-retention",
        "shortkeep",
        "--audit-days",
        "30",
    ])
    .await
    .unwrap();
    let bad = app
        .run_cli(&[
            "control-plane",
            "audit",
            "set-retention",
            "shortkeep",
            "--audit-days",
            "0",
        ])
        .await;
    let error = format!("{:#}", bad.unwrap_err());
    assert!(
        error.contains("retention must be 1 to 3650 days"),
        "{error}"
    );
    let kept: i32 = app
        .superuser()
        .await
        .query_one(
            "SELECT audit_retention_days FROM control.tenants WHERE slug = 'shortkeep'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 30, "a refused retention changed the stored one");
    let output = app
        .run_cli(&["control-plane", "audit", "retention", "--json"])
        .await
        .unwrap();
    let report: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(report["tenants"], 2, "{report}");
    let gone = TestApp::eventually(Duration::from_secs(30), || async {
        app.stored_audit_events(&short, "records.old").await.0 == 0
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
    assert_eq!(app.stored_audit_events(&long, "records.old").await.0, 1);
    assert_eq!(app.stored_audit_events(&short, "records.create").await.0, 2);
}

#[tokio::test]
async fn the_operator_console_verifies_a_tenants_audit_chain_and_names_what_is_wrong() {
    let app = TestApp::spawn().await;
    let tenant = tenant_with_events(&app, "console-verify", 3).await;
    let mut operator = tenantry_tests::console::Browser::operator(&app).await;
    let page = "/console/tenants/console-verify";
    let action = "/console/tenants/console-verify/audit/verify";

    let good = operator.submit(page, action, &[]).await;
    assert_eq!(good.status, reqwest::StatusCode::OK, "{}", good.html);
    assert!(
        good.html.contains("The audit log verifies"),
        "{}",
        good.html
    );

    let target = rows(&app, &tenant, "records.create").await[1].clone();
    let event = &target.event_id;
    mutate(
        &app,
        &format!("ALTER TABLE audit_log UPDATE result = 'failure' WHERE event_id = '{event}'"),
        &format!("SELECT count() FROM audit_log WHERE event_id = '{event}' AND result = 'failure'"),
        1,
    )
    .await;
    let bad = operator.submit(page, action, &[]).await;
    assert_eq!(bad.status, reqwest::StatusCode::OK, "{}", bad.html);
    assert!(bad.html.contains("does not verify"), "{}", bad.html);
    assert!(
        bad.html.contains(&format!("event {event} (sequence")),
        "the finding names the event: {}",
        bad.html
    );
}
