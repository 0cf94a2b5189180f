//! The data plane behind PgBouncer in transaction mode (`deploy/local/test.sh` starts one on
//! loopback): no startup options, nothing prepared in one round trip and run in the next,
//! `LISTEN` past the pooler (`listen_database_url`). `test.sh` also runs a slice of the other
//! tests with every data plane behind it (`TENANTRY_TEST_DATA_PLANE_VIA_PGBOUNCER=1`).

use std::time::Duration;

use futures_util::future::join_all;
use shared::tenant_context::{TenantDbError, TenantScope};
use tenantry_tests::{TestApp, TestOptions};
use tokio_postgres::error::SqlState;

fn via_pgbouncer() -> TestOptions {
    TestOptions {
        via_pgbouncer: true,
        ..TestOptions::default()
    }
}

#[tokio::test]
async fn through_pgbouncer_the_first_requests_of_many_tenants_at_once_all_succeed() {
    // Every request is the node's first for its tenant: the catalog lookups (tenant, quotas,
    // data keys) and the tenant transactions of many clients share two server connections,
    // which PgBouncer hands to whichever client sends next. A statement prepared in one
    // round trip and run in the next would meet another server (or another client's
    // statement of the same name) there.
    let app = TestApp::spawn_with(via_pgbouncer()).await;
    let slugs: Vec<String> = (0..12).map(|n| format!("pooled-{n}")).collect();
    for slug in &slugs {
        app.create_tenant(slug).await;
    }
    let app = &app;
    let requests = slugs.iter().flat_map(|slug| {
        (0..4).map(move |_| async move {
            let body: Result<serde_json::Value, _> = app.tenant(slug).get("/v1/tenant").ok().await;
            (slug, body)
        })
    });
    for (slug, body) in join_all(requests).await {
        let body = body.unwrap_or_else(|error| panic!("{slug}: {error}"));
        assert_eq!(body["slug"], slug.as_str(), "{body}");
        assert_eq!(body["display_name"], format!("{slug} display"), "{body}");
    }
}

/// The statement timeout a tenant transaction on `app`'s node runs under, and what a
/// statement longer than a 100 ms limit gets.
async fn statement_timeouts(app: &TestApp) -> (String, Result<(), TenantDbError>) {
    let tenant = app.create_tenant("slow").await;
    let scope = TenantScope::for_tenant(&tenant);
    let shown = app
        .data
        .tenant_db
        .query_once(&scope, "SHOW statement_timeout", &[])
        .await
        .unwrap()[0]
        .get::<_, String>(0);
    let short = app
        .data
        .tenant_db
        .clone()
        .with_statement_timeout(Duration::from_millis(100));
    let slow = short
        .query_once(&scope, "SELECT pg_sleep(2)", &[])
        .await
        .map(|_| ());
    (shown, slow)
}

#[tokio::test]
async fn every_tenant_transaction_carries_the_statement_timeout_directly_and_through_pgbouncer() {
    for options in [TestOptions::default(), via_pgbouncer()] {
        let pooled = options.via_pgbouncer;
        let app = TestApp::spawn_with(options).await;
        let (shown, slow) = statement_timeouts(&app).await;
        assert_eq!(
            shown, "5s",
            "statement_timeout_ms = 5000 (pooled: {pooled})"
        );
        match slow {
            Err(TenantDbError::Query(error)) => {
                assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error}")
            }
            other => panic!("a 2 s statement under a 100 ms limit (pooled: {pooled}): {other:?}"),
        }
    }
}
