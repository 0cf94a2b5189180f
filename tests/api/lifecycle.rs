use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tenantry_tests::client::TenantPatch;
use tenantry_tests::{TestApp, TestOptions};

async fn status_of(app: &TestApp, url: &str, slug: &str) -> StatusCode {
    app.tenant(slug)
        .on(url)
        .get("/v1/tenant")
        .send()
        .await
        .unwrap()
        .status()
}

/// A patch setting the tenant's status.
fn status(status: &str) -> TenantPatch {
    TenantPatch {
        status: Some(status.to_owned()),
        ..TenantPatch::default()
    }
}

#[tokio::test]
async fn suspension_reaches_every_node_through_notify_and_resume_restores_service() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let (_second_node, second_url) = app.spawn_data_node(&TestOptions::default()).await;
    // Both nodes have the tenant cached as active (cache TTL is 10 minutes in tests).
    assert_eq!(status_of(&app, &app.data_url, "acme").await, StatusCode::OK);
    assert_eq!(status_of(&app, &second_url, "acme").await, StatusCode::OK);

    let tenants = app.operator_api();
    let suspended = tenants
        .tenants()
        .update("acme", &status("suspended"))
        .await
        .unwrap();
    assert_eq!(suspended.status, "suspended");

    for url in [&app.data_url, &second_url] {
        let took = TestApp::eventually(Duration::from_secs(5), || async {
            status_of(&app, url, "acme").await == StatusCode::FORBIDDEN
        })
        .await;
        assert!(took.is_some(), "node {url} still serves a suspended tenant");
    }
    let refused = app.tenant("acme").get("/v1/tenant").send().await.unwrap();
    assert_eq!(refused.code(), Some("tenant_suspended"));

    let resumed = tenants
        .tenants()
        .update("acme", &status("active"))
        .await
        .unwrap();
    assert_eq!(resumed.status, "active");
    let took = TestApp::eventually(Duration::from_secs(5), || async {
        status_of(&app, &second_url, "acme").await == StatusCode::OK
    })
    .await;
    assert!(took.is_some(), "resumed tenant not served again");
}

#[tokio::test]
async fn only_active_and_suspended_tenants_swap_status() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    let tenants = app.operator_api();
    let to_deleted = tenants
        .tenants()
        .update("acme", &status("deleted"))
        .await
        .unwrap_err();
    assert_eq!(to_deleted.status(), Some(StatusCode::BAD_REQUEST));
    tenants
        .tenants()
        .update("acme", &status("suspended"))
        .await
        .unwrap();
    let failed = control_plane::tenants::service::retry_provisioning(
        &app.control,
        &shared::tenant::TenantSlug::parse("acme").unwrap(),
    )
    .await;
    assert!(
        matches!(
            failed,
            Err(control_plane::error::ControlError::NotProvisioning(
                shared::tenant::TenantStatus::Suspended
            ))
        ),
        "{failed:?}"
    );
    assert_eq!(app.tenant_status("acme").await, "suspended");
}

#[tokio::test]
async fn deleting_a_tenant_exports_its_data_then_drops_schema_role_and_data_key() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("doomed").await;
    assert_eq!(
        status_of(&app, &app.data_url, "doomed").await,
        StatusCode::OK
    );
    let export = std::env::temp_dir().join(format!("tenantry-export-{}.json", tenant.id));

    app.run_cli(&[
        "control-plane",
        "tenant",
        "delete",
        "doomed",
        "--export",
        export.to_str().unwrap(),
    ])
    .await
    .unwrap();

    let exported: Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    assert_eq!(exported["tenant"]["slug"], "doomed");
    assert_eq!(exported["tables"]["roles"].as_array().unwrap().len(), 6);
    assert_eq!(
        exported["tables"]["tenant_profile"][0]["display_name"],
        "doomed display"
    );

    let db = app.superuser().await;
    let schema_left: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_doomed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(schema_left, 0);
    let role_left: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname = $1",
            &[&tenant.role.as_str()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(role_left, 0);
    let keys_left: i64 = db
        .query_one(
            "SELECT count(*) FROM control.tenant_data_keys WHERE tenant_id = $1",
            &[&tenant.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys_left, 0);
    let status: String = db
        .query_one(
            "SELECT status FROM control.tenants WHERE id = $1",
            &[&tenant.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "deleted");

    let took = TestApp::eventually(Duration::from_secs(5), || async {
        status_of(&app, &app.data_url, "doomed").await == StatusCode::NOT_FOUND
    })
    .await;
    assert!(took.is_some(), "deleted tenant still served");
    let gone = app
        .operator_api()
        .tenants()
        .get("doomed")
        .await
        .unwrap_err();
    assert_eq!(gone.status(), Some(StatusCode::NOT_FOUND));

    // The slug is free again, and the new tenant starts empty.
    let again = app.create_tenant("doomed").await;
    assert_ne!(again.id, tenant.id);
    std::fs::remove_file(export).ok();
}

#[tokio::test]
async fn a_failing_export_stops_the_deletion_before_anything_is_dropped() {
    let app = TestApp::spawn().await;
    app.create_tenant("keeper").await;
    let outcome = app
        .run_cli(&[
            "control-plane",
            "tenant",
            "delete",
            "keeper",
            "--export",
            "/nonexistent-dir/export.json",
        ])
        .await;
    let error = format!("{:#}", outcome.unwrap_err());
    assert!(
        error.contains("could not write the export, nothing was deleted"),
        "{error}"
    );
    let db = app.superuser().await;
    let schema_left: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_keeper'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(schema_left, 1);
    assert_eq!(app.tenant_status("keeper").await, "deleting");
    // Re-running without the broken export finishes the deletion.
    app.run_cli(&["control-plane", "tenant", "delete", "keeper"])
        .await
        .unwrap();
    let schema_left: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_keeper'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(schema_left, 0);
}
