//! The control plane's lifecycle events: each change leaves one, and `tenant.create` is written
//! by whichever run activates the tenant, so a create interrupted part-way and finished by
//! `tenant retry` is audited exactly once, and retrying an active tenant adds nothing.

use std::time::Duration;

use control_plane::provisioning::{ProvisionOptions, Step};
use control_plane::ControlPlane;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use shared::events::rows::AuditRow;
use shared::tenant::TenantSlug;
use tenantry_tests::{TestApp, TestOptions};

/// Writes out the control plane's queued events (to ClickHouse), as a CLI command does before
/// it exits, so what ClickHouse holds afterwards is everything the control plane recorded.
async fn flush_control_plane_events(app: &TestApp) {
    app.control.events.as_ref().unwrap().flush().await;
}

/// Rows waiting in the audit outbox for the tenant `tenant_id`.
async fn outboxed(app: &TestApp, tenant_id: &str) -> i64 {
    let tenant_id: uuid::Uuid = tenant_id.parse().unwrap();
    app.superuser()
        .await
        .query_one(
            "SELECT count(*) FROM control.audit_outbox WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await
        .unwrap()
        .get(0)
}

async fn verifies(app: &TestApp, slug: &str) -> String {
    let output = app
        .run_cli(&["control-plane", "audit", "verify", slug])
        .await
        .unwrap();
    assert!(output.contains("verifies"), "{slug}: {output}");
    output
}

#[tokio::test]
async fn tenant_lifecycle_changes_are_audited_by_the_control_plane() {
    let app = TestApp::spawn().await;
    app.create_tenant("lifecycled").await;
    let tenant = app.tenant_id("lifecycled").await;
    let slug = TenantSlug::parse("lifecycled").unwrap();
    control_plane::tenants::service::suspend(&app.control, &slug)
        .await
        .unwrap();
    control_plane::tenants::service::resume(&app.control, &slug)
        .await
        .unwrap();
    flush_control_plane_events(&app).await;
    for action in ["tenant.create", "tenant.suspend", "tenant.resume"] {
        let (stored, _) = app
            .wait_for_audit_events(&tenant, action, 1, Duration::from_secs(10))
            .await;
        assert_eq!(stored, 1, "{action}");
    }
    let output = verifies(&app, "lifecycled").await;
    assert!(output.contains("3 events"), "{output}");
}

#[tokio::test]
async fn a_create_interrupted_after_any_step_is_audited_once_by_the_retry_that_finishes_it() {
    let app = TestApp::spawn().await;
    for (index, step) in Step::ALL
        .into_iter()
        .filter(|step| *step != Step::Activate)
        .enumerate()
    {
        let slug = format!("cut-{index}");
        app.create_tenant_interrupted_after(&slug, step).await;
        let tenant = app.tenant_id(&slug).await;
        flush_control_plane_events(&app).await;
        assert_eq!(
            app.stored_audit_events(&tenant, "tenant.create").await,
            (0, 0),
            "{step}: created before it was active"
        );

        let report: Value = serde_json::from_str(
            &app.run_cli(&["control-plane", "tenant", "retry", &slug, "--json"])
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(report["outcome"], "provisioned", "{step}: {report}");
        assert_eq!(report["status"], "active", "{step}: {report}");
        assert_eq!(report["slug"], slug.as_str(), "{step}: {report}");

        flush_control_plane_events(&app).await;
        let stored = app
            .wait_for_audit_events(&tenant, "tenant.create", 1, Duration::from_secs(10))
            .await;
        assert_eq!(stored, (1, 1), "{step}");
        // Delivered, so the writer cleared its outbox row.
        assert_eq!(outboxed(&app, &tenant).await, 0, "{step}");
    }
    // Each event is chained with the tenant's key like any other.
    verifies(&app, "cut-0").await;
}

#[tokio::test]
async fn retrying_an_active_tenant_succeeds_doing_nothing_and_audits_nothing() {
    let app = TestApp::spawn().await;
    let created = app.create_tenant("steady").await;
    let tenant = app.tenant_id("steady").await;
    flush_control_plane_events(&app).await;
    let stored = app
        .wait_for_audit_events(&tenant, "tenant.create", 1, Duration::from_secs(10))
        .await;
    assert_eq!(stored, (1, 1));
    let attempts = || async {
        let shown: Value = serde_json::from_str(
            &app.run_cli(&["control-plane", "tenant", "show", "steady", "--json"])
                .await
                .unwrap(),
        )
        .unwrap();
        shown["provisioning"]["attempts"].as_i64().unwrap()
    };
    let attempts_before = attempts().await;

    let text = app
        .run_cli(&["control-plane", "tenant", "retry", "steady"])
        .await
        .unwrap();
    assert_eq!(
        text.trim(),
        "tenant steady is already active; nothing to do"
    );
    let report: Value = serde_json::from_str(
        &app.run_cli(&["control-plane", "tenant", "retry", "steady", "--json"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(report["outcome"], "already_active", "{report}");
    assert_eq!(report["status"], "active", "{report}");
    let reply = app
        .operator_api()
        .call(Method::POST, "/v1/tenants/steady/provision")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let body = reply.value();
    assert_eq!(body["outcome"], "already_active", "{body}");
    assert_eq!(
        body["message"], "tenant steady is already active; nothing to do",
        "{body}"
    );
    assert_eq!(body["id"], created.id.to_string(), "{body}");
    assert_eq!(
        attempts().await,
        attempts_before,
        "a no-op counted an attempt"
    );

    // `activate` run again (as after a job record rewound by a crash) finds the tenant
    // active already: it changes nothing and records no second creation.
    app.superuser()
        .await
        .execute(
            "UPDATE control.provisioning_jobs SET last_step = 'seed_roles' WHERE tenant_id = $1",
            &[&created.id],
        )
        .await
        .unwrap();
    let rerun =
        control_plane::provisioning::run(&app.control, &created, ProvisionOptions::default())
            .await
            .unwrap();
    assert!(!rerun.activated);
    assert_eq!(rerun.tenant.status.as_str(), "active");

    flush_control_plane_events(&app).await;
    assert_eq!(
        app.stored_audit_events(&tenant, "tenant.create").await,
        (1, 1),
        "a retry of an active tenant wrote another creation event"
    );
    verifies(&app, "steady").await;

    // A suspended tenant is not "nothing to do": it is refused, and stays suspended.
    control_plane::tenants::service::suspend(&app.control, &created.slug)
        .await
        .unwrap();
    let refused = app
        .operator_api()
        .call(Method::POST, "/v1/tenants/steady/provision")
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.error_code(),
        (StatusCode::CONFLICT, "not_provisioning"),
        "{}",
        refused.text()
    );
    assert_eq!(app.tenant_status("steady").await, "suspended");
}

#[tokio::test]
async fn a_creation_event_survives_a_control_plane_that_dies_right_after_activating() {
    let app = TestApp::spawn_with(TestOptions {
        outbox_recover_after: Duration::from_secs(1),
        ..TestOptions::default()
    })
    .await;
    // A control plane whose process ends right after the activation committed: nothing it
    // held in memory reaches the writer (it has none).
    let dying = ControlPlane {
        events: None,
        ..app.control.clone()
    };
    let created = app
        .create_tenant_on(&dying, "orphaned", ProvisionOptions::default())
        .await
        .unwrap();
    assert_eq!(created.status.as_str(), "active");
    let tenant = app.tenant_id("orphaned").await;

    // The event committed with the activation; a data-plane node ships it from the outbox.
    let stored = app
        .wait_for_audit_events(&tenant, "tenant.create", 1, Duration::from_secs(30))
        .await;
    assert_eq!(stored, (1, 1));
    let rows: Vec<AuditRow> = app
        .clickhouse()
        .query("SELECT ?fields FROM audit_log WHERE tenant_id = ? AND action = 'tenant.create'")
        .bind(tenant.as_str())
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows[0].result, "committed", "{:?}", rows[0]);
    assert_eq!(rows[0].resource_id, "orphaned");
    let metadata: Value = serde_json::from_str(&rows[0].metadata).unwrap();
    assert_eq!(metadata["recovered"], "outbox", "{metadata}");
    assert_eq!(metadata["plan"], "free", "{metadata}");
    let cleared = TestApp::eventually(Duration::from_secs(10), || async {
        outboxed(&app, &tenant).await == 0
    })
    .await;
    assert!(cleared.is_some(), "the outbox row outlived its delivery");
    verifies(&app, "orphaned").await;
}
