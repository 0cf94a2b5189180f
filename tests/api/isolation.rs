use std::collections::HashMap;

use futures_util::future::join_all;
use shared::tenant_context::{TenantDbError, TenantScope, TenantTransaction};
use tenantry_tests::{TestApp, TestOptions};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

#[tokio::test]
async fn a_tenant_role_cannot_read_another_tenants_schema_or_the_catalog() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let scope = TenantScope::for_tenant(&acme);

    let own = app
        .data
        .tenant_db
        .query_once(&scope, "SELECT display_name FROM tenant_profile", &[])
        .await
        .unwrap();
    assert_eq!(own[0].get::<_, String>(0), "acme display");

    for sql in [
        "SELECT display_name FROM tenant_globex.tenant_profile",
        "SELECT slug FROM control.tenants",
        "SELECT wrapped_key FROM control.tenant_data_keys",
    ] {
        let denied = app.data.tenant_db.query_once(&scope, sql, &[]).await;
        match denied {
            Err(TenantDbError::Query(error)) => {
                assert_eq!(
                    error.code(),
                    Some(&SqlState::INSUFFICIENT_PRIVILEGE),
                    "{sql}: {error}"
                )
            }
            other => panic!("{sql} was not refused: {other:?}"),
        }
    }
}

#[tokio::test]
async fn interleaved_requests_on_a_pool_of_two_never_see_another_tenants_rows() {
    let app = TestApp::spawn_with(TestOptions {
        data_pool_size: 2,
        ..TestOptions::default()
    })
    .await;
    let slugs = ["alpha", "bravo", "charlie", "delta", "echo"];
    for slug in slugs {
        app.create_tenant(slug).await;
        // 50 requests at once per tenant: above the free plan's burst (rate limits are not
        // what this test is about).
        app.raise_rate_limits(slug).await;
    }
    let app = &app;
    let requests = (0..250).map(|index| {
        let slug = slugs[index % slugs.len()];
        async move {
            let body: serde_json::Value = app.tenant(slug).get("/v1/tenant").ok().await.unwrap();
            (slug, body)
        }
    });
    let mut seen = HashMap::new();
    for (slug, body) in join_all(requests).await {
        assert_eq!(body["slug"], slug);
        assert_eq!(
            body["display_name"],
            format!("{slug} display"),
            "{slug} saw {body}"
        );
        *seen.entry(slug).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), slugs.len());

    // Afterwards no connection carries tenant context: every open connection of every pool
    // (each HTTP worker's and the shared one), held at once so each is a different one.
    let db = &app.data.tenant_db;
    for (worker, pool) in db.worker_pools().iter().enumerate() {
        // Both workers served requests, each on connections of its own pool.
        assert!(
            pool.status().size > 0,
            "worker {worker} opened no connection"
        );
    }
    for pool in db.worker_pools().iter().chain([db.shared_pool()]) {
        let open = pool.status().size;
        let clients = join_all((0..open).map(|_| pool.get())).await;
        for client in clients {
            app.assert_no_tenant_context(&client.unwrap(), "tenant_")
                .await;
        }
    }
}

#[tokio::test]
async fn an_abandoned_tenant_transaction_is_rolled_back_before_its_connection_is_reused() {
    let app = TestApp::spawn_with(TestOptions {
        data_pool_size: 1,
        ..TestOptions::default()
    })
    .await;
    let acme = app.create_tenant("acme").await;
    let scope = TenantScope::for_tenant(&acme);
    {
        let mut transaction = app.data.tenant_db.begin(&scope).await.unwrap();
        transaction
            .query_typed(
                "UPDATE tenant_profile SET display_name = $1 WHERE id = 1",
                &[(&"never committed", Type::TEXT)],
            )
            .await
            .unwrap();
        // Dropped here without commit, as when a request is cancelled mid-way.
    }
    let client = app.data.tenant_db.pool().get().await.unwrap();
    app.assert_no_tenant_context(&client, "tenant_acme").await;
    drop(client);
    let rows = app
        .data
        .tenant_db
        .query_once(&scope, "SELECT display_name FROM tenant_profile", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "acme display");
}

#[tokio::test]
async fn a_connection_is_closed_once_it_has_served_its_uses() {
    // One connection in the shared pool, closed after three transactions: its backend exits
    // with whatever it cached of the tenant schemas it touched.
    let app = TestApp::spawn_with(TestOptions {
        data_pool_size: 1,
        connection_max_uses: 3,
        ..TestOptions::default()
    })
    .await;
    let acme = app.create_tenant("acme").await;
    let scope = TenantScope::for_tenant(&acme);
    let mut backends = Vec::new();
    for _ in 0..9 {
        let rows = app
            .data
            .tenant_db
            .query_once(&scope, "SELECT pg_backend_pid()", &[])
            .await
            .unwrap();
        backends.push(rows[0].get::<_, i32>(0));
    }
    // The pool's one connection may have served the node's own lookups before: each backend
    // served at most three of these nine, so at least three backends did.
    let mut served: HashMap<i32, usize> = HashMap::new();
    for pid in &backends {
        *served.entry(*pid).or_default() += 1;
    }
    assert!(
        served.len() >= 3 && served.values().all(|uses| *uses <= 3),
        "backends by transaction: {backends:?}"
    );
}

/// The backend serving `transaction`.
async fn backend_of(transaction: &mut TenantTransaction) -> i32 {
    transaction
        .query_typed("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()[0]
        .get(0)
}

#[tokio::test]
async fn with_affinity_groups_a_tenant_meets_its_groups_backends_and_borrows_only_when_they_are_busy(
) {
    // Two workers of four connections, each split into two groups of two.
    let app = TestApp::spawn_with(TestOptions {
        data_pool_size: 8,
        data_workers: 2,
        affinity_groups: 2,
        ..TestOptions::default()
    })
    .await;
    // One tenant in each group (the group comes from the tenant's id).
    let mut by_group = HashMap::new();
    for n in 0.. {
        let tenant = app.create_tenant(&format!("aff-{n}")).await;
        let group = shared::tenant_context::affinity_group(tenant.id, 2);
        by_group.entry(group).or_insert(tenant);
        if by_group.len() == 2 {
            break;
        }
    }
    let scopes = [0, 1].map(|group| TenantScope::for_tenant(&by_group[&group]));
    let worker = app.data.tenant_db.for_worker(0);

    // While its group has a connection to give, a tenant is served by its group's backends.
    let mut backends = Vec::new();
    for scope in &scopes {
        let mut pids = std::collections::HashSet::new();
        for _ in 0..10 {
            let rows = worker
                .query_once(scope, "SELECT pg_backend_pid()", &[])
                .await
                .unwrap();
            pids.insert(rows[0].get::<_, i32>(0));
        }
        backends.push(pids);
    }
    assert!(
        backends.iter().all(|pids| pids.len() <= 2) && backends[0].is_disjoint(&backends[1]),
        "the groups shared a backend: {backends:?}"
    );

    // With both of its group's connections taken, the first tenant borrows one of the other
    // group's at once (without lending it would wait the pool's 5 s, then get a 503).
    let mut own = Vec::new();
    for _ in 0..2 {
        let mut transaction = worker.begin(&scopes[0]).await.unwrap();
        backend_of(&mut transaction).await;
        own.push(transaction);
    }
    let mut borrowed = worker.begin(&scopes[0]).await.unwrap();
    let lender = backend_of(&mut borrowed).await;
    assert!(
        !backends[0].contains(&lender),
        "a busy group's tenant was not lent another group's connection"
    );
    borrowed.commit().await.unwrap();

    // With every connection of the worker taken, it waits for its own group's next one.
    let mut others = Vec::new();
    for _ in 0..2 {
        let mut transaction = worker.begin(&scopes[1]).await.unwrap();
        backend_of(&mut transaction).await;
        others.push(transaction);
    }
    let waiting = tokio::spawn({
        let (worker, scope) = (worker.clone(), scopes[0].clone());
        async move {
            let rows = worker
                .query_once(&scope, "SELECT pg_backend_pid()", &[])
                .await
                .unwrap();
            rows[0].get::<_, i32>(0)
        }
    });
    let pools = &app.data.tenant_db.worker_pools()[..2];
    while pools
        .iter()
        .map(|pool| pool.status().waiting)
        .sum::<usize>()
        == 0
    {
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished());
    let mut given_back = own.pop().unwrap();
    let pid = backend_of(&mut given_back).await;
    given_back.commit().await.unwrap();
    assert_eq!(
        waiting.await.unwrap(),
        pid,
        "the waiting request was not served by its group's connection given back"
    );
    drop((own, others));
}
