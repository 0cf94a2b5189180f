//! One data-plane node serves tenants on several Postgres clusters: each tenant's requests run
//! on its own cluster, changes made there reach every node's caches, its audit events and mail
//! go out, and a cluster that is down costs only its own tenants.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use tenantry_tests::hanging_proxy::PATIENCE;
use tenantry_tests::private_postgres::PrivatePostgres;
use tenantry_tests::{records_on, unique_address, TestApp, TestOptions, OWNER_EMAIL};

#[tokio::test]
async fn one_node_serves_tenants_on_both_clusters_each_on_its_own() {
    let app = TestApp::spawn().await;
    app.register_second_cluster("eu-2").await;
    let near = app.tenant_with_owner_on("near", "primary").await;
    let far = app.tenant_with_owner_on("far", "eu-2").await;
    app.raise_rate_limits("far").await;

    // Each writes and reads its own records, on its own cluster.
    let mine = far
        .records("tasks")
        .create(&json!({"title": "far away"}))
        .await
        .unwrap();
    near.records("tasks")
        .create(&json!({"title": "close by"}))
        .await
        .unwrap();
    assert_eq!(
        far.records("tasks").get(mine.id).await.unwrap().data["title"],
        "far away"
    );
    let second = TestApp::connect_to(&app.second_cluster_url().await).await;
    let catalog = app.superuser().await;
    assert_eq!(records_on(&second, "far").await, Some(1));
    assert_eq!(records_on(&catalog, "far").await, None);
    assert_eq!(records_on(&catalog, "near").await, Some(1));
    assert_eq!(records_on(&second, "near").await, None);

    // Isolation holds across clusters: a far token is nothing at near, and near's records are
    // not far's.
    let far_token = far.access_token().await.unwrap().unwrap();
    let crossed = app
        .as_bearer("near", far_token.expose())
        .get("/v1/me")
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), StatusCode::UNAUTHORIZED);
    let not_found = near.records("tasks").get(mine.id).await.unwrap_err();
    assert_eq!(not_found.status(), Some(StatusCode::NOT_FOUND));

    // Its audit event reaches ClickHouse and leaves nothing in the outbox of its cluster.
    let far_id = app.tenant_id("far").await;
    let (rows, ids) = app
        .wait_for_audit_events(&far_id, "records.create", 1, Duration::from_secs(10))
        .await;
    assert_eq!((rows, ids), (1, 1));
    let tenant: uuid::Uuid = far_id.parse().unwrap();
    let drained = TestApp::eventually(Duration::from_secs(10), || async {
        let left: i64 = second
            .query_one(
                "SELECT count(*) FROM control.audit_outbox WHERE tenant_id = $1",
                &[&tenant],
            )
            .await
            .unwrap()
            .get(0);
        left == 0
    })
    .await;
    assert!(
        drained.is_some(),
        "the far outbox still holds delivered events"
    );

    // Its mail goes out: an invitation queued on the second cluster is delivered and works.
    let invited = unique_address("ines");
    app.invite_and_activate(&far, &invited, &["member"]).await;
    app.signed_in("far", &invited, tenantry_tests::PASSWORD)
        .await;

    // /readyz names the cluster and finds it well.
    let ready: Value = app.data_client().get("/readyz").ok().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(
        ready["checks"]["clusters"]["eu-2"],
        json!({"postgres": "ok", "notifications": "ok"}),
        "{ready}"
    );
}

#[tokio::test]
async fn a_session_ended_on_one_node_is_refused_by_another_whatever_the_cluster() {
    let app = TestApp::spawn().await;
    app.register_second_cluster("eu-2").await;
    let far = app.tenant_with_owner_on("far", "eu-2").await;
    // A second node, which caches the session as live when it first sees the token.
    let (other, other_url) = app.spawn_data_node(&TestOptions::default()).await;
    tokio::time::timeout(
        Duration::from_secs(10),
        other.clusters.wait_until_listening("eu-2"),
    )
    .await
    .expect("the second node serves eu-2");
    let on_other = far.on(&other_url);
    assert_eq!(on_other.me().get().await.unwrap().email, OWNER_EMAIL);

    // Ended through the first node: the end is announced on the tenant's cluster, and the
    // second node hears it there (its cache would keep the session for ten minutes).
    let session = far.me().sessions().await.unwrap()[0].id;
    far.me().end_session(session).await.unwrap();
    let refused = TestApp::eventually(Duration::from_secs(5), || async {
        on_other
            .get("/v1/me")
            .send()
            .await
            .is_ok_and(|reply| reply.status() == StatusCode::UNAUTHORIZED)
    })
    .await;
    assert!(
        refused.is_some(),
        "the second node still serves an ended session"
    );
}

/// Reads `/v1/tenant` of `slug` `count` times, one after another; the statuses.
async fn read_tenant(app: &TestApp, slug: &str, count: usize) -> Vec<(StatusCode, Option<String>)> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let reply = app.tenant(slug).get("/v1/tenant").send().await.unwrap();
        statuses.push((reply.status(), reply.code().map(str::to_owned)));
    }
    statuses
}

/// `/v1/tenant` of `slug`: its status, error code and `Retry-After`.
async fn tenant_reply(app: &TestApp, slug: &str) -> (StatusCode, Option<String>, Option<String>) {
    let reply = app.tenant(slug).get("/v1/tenant").send().await.unwrap();
    let code = reply.code().map(str::to_owned);
    (
        reply.status(),
        code,
        reply.header("retry-after").map(str::to_owned),
    )
}

/// The node stays ready and says that cluster `name` is down.
async fn ready_with_cluster_down(app: &TestApp, name: &str) {
    let ready = app.data_client().get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().unwrap();
    assert_eq!(
        ready["checks"]["clusters"][name]["postgres"], "unavailable",
        "{ready}"
    );
}

#[tokio::test]
async fn a_cluster_that_stops_costs_only_its_own_tenants_and_they_come_back_when_it_starts() {
    let app = TestApp::spawn().await;
    let mut cluster = PrivatePostgres::start().await;
    app.register_private_cluster("third", &cluster).await;
    app.create_tenant_with_admin_on("steady", "sam@steady.example", Some("primary"))
        .await;
    app.create_tenant_with_admin_on("fragile", "fay@fragile.example", Some("third"))
        .await;
    for slug in ["steady", "fragile"] {
        app.raise_rate_limits(slug).await;
        assert_eq!(tenant_reply(&app, slug).await.0, StatusCode::OK, "{slug}");
    }

    // The steady tenant is read without a pause while the other's cluster stops and starts.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let steady = {
        let (client, stop) = (app.tenant("steady"), stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let reply = client.get("/v1/tenant").send().await.unwrap();
                statuses.push((reply.status(), reply.code().map(str::to_owned)));
            }
            statuses
        })
    };

    cluster.stop().await;
    // Its pooled connections were ended and new ones are refused: a clear 503 at once.
    let (fragile, more) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            tenant_reply(&app, "fragile"),
            read_tenant(&app, "fragile", 5)
        )
    })
    .await
    .expect("requests hung while a cluster was stopped");
    let unavailable = (
        StatusCode::SERVICE_UNAVAILABLE,
        Some("tenant_unavailable".to_owned()),
        Some("2".to_owned()),
    );
    assert_eq!(fragile, unavailable);
    assert!(
        more.iter()
            .all(|(status, code)| *status == StatusCode::SERVICE_UNAVAILABLE
                && code.as_deref() == Some("tenant_unavailable")),
        "{more:?}"
    );
    ready_with_cluster_down(&app, "third").await;

    cluster.resume().await;
    let back = TestApp::eventually(Duration::from_secs(15), || async {
        tenant_reply(&app, "fragile").await.0 == StatusCode::OK
    })
    .await;
    assert!(
        back.is_some(),
        "the tenant is not served after its cluster started"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let steady = steady.await.unwrap();
    assert!(!steady.is_empty());
    assert!(
        steady.iter().all(|(status, _)| *status == StatusCode::OK),
        "a tenant on another cluster was refused: {steady:?}"
    );
}

#[tokio::test]
async fn a_node_signs_in_to_each_cluster_with_its_own_password_there() {
    // The node's role has a password on this cluster and none on the catalog's (which trusts
    // loopback); the password is in a file named like the cluster, as a mounted Secret.
    let passwords = std::env::temp_dir()
        .join("tenantry-tests")
        .join(format!("passwords-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&passwords).unwrap();
    std::fs::write(passwords.join("vault"), "node-secret-on-vault\n").unwrap();
    let app = TestApp::spawn_with(TestOptions {
        cluster_password_dir: Some(passwords.clone()),
        ..TestOptions::default()
    })
    .await;
    let cluster = PrivatePostgres::start_with_password("admin-secret-on-vault").await;
    TestApp::connect_to(&cluster.url("postgres"))
        .await
        .batch_execute(&format!(
            "CREATE ROLE {} LOGIN NOINHERIT PASSWORD 'node-secret-on-vault'",
            app.role_prefix.data_plane_role().quoted()
        ))
        .await
        .unwrap();
    app.register_private_cluster("vault", &cluster).await;
    app.create_tenant_with_admin_on("kept", "kim@kept.example", Some("vault"))
        .await;
    app.raise_rate_limits("kept").await;
    assert_eq!(tenant_reply(&app, "kept").await.0, StatusCode::OK);

    // A node without that password, or with a wrong one, cannot reach the cluster: its
    // tenants get a clear 503 there, and tenants elsewhere are served.
    app.create_tenant_with_admin_on("near", "nia@near.example", Some("primary"))
        .await;
    let wrong_dir = passwords.join("wrong");
    std::fs::create_dir_all(&wrong_dir).unwrap();
    std::fs::write(wrong_dir.join("vault"), "not-the-password").unwrap();
    let wrong = TestOptions {
        cluster_password_dir: Some(wrong_dir),
        ..TestOptions::default()
    };
    for options in [TestOptions::default(), wrong] {
        let (_node, url) = app.spawn_data_node(&options).await;
        let read = |slug: &'static str| {
            let client = app.tenant(slug).on(&url);
            async move {
                let reply = client.get("/v1/tenant").send().await.unwrap();
                (reply.status(), reply.code().map(str::to_owned))
            }
        };
        assert_eq!(
            read("kept").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("tenant_unavailable".to_owned())
            )
        );
        assert_eq!(read("near").await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_cluster_that_hangs_costs_only_its_own_tenants_and_they_come_back() {
    let app = TestApp::spawn().await;
    // The cluster behind a proxy the test can cut: connections open and nothing answers.
    let proxy = app.register_second_cluster_behind_a_proxy("flaky").await;
    app.create_tenant_with_admin_on("steady", "sam@steady.example", Some("primary"))
        .await;
    app.create_tenant_with_admin_on("fragile", "fay@fragile.example", Some("flaky"))
        .await;
    for slug in ["steady", "fragile"] {
        app.raise_rate_limits(slug).await;
        assert!(read_tenant(&app, slug, 3)
            .await
            .iter()
            .all(|(status, _)| *status == StatusCode::OK));
    }

    proxy.cut();
    // Both tenants' reads at once: only the fragile ones fail, each with a clear 503 that
    // says when to retry (the patience only turns a hang into a failure).
    let (fragile, steady, fragile_more) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            tenant_reply(&app, "fragile"),
            read_tenant(&app, "steady", 20),
            read_tenant(&app, "fragile", 3),
        )
    })
    .await
    .expect("requests hung while a cluster was down");
    assert_eq!(
        fragile,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("tenant_unavailable".to_owned()),
            Some("2".to_owned())
        )
    );
    assert!(
        fragile_more
            .iter()
            .all(|(status, code)| *status == StatusCode::SERVICE_UNAVAILABLE
                && code.as_deref() == Some("tenant_unavailable")),
        "{fragile_more:?}"
    );
    assert!(
        steady.iter().all(|(status, _)| *status == StatusCode::OK),
        "a tenant on another cluster was refused: {steady:?}"
    );

    ready_with_cluster_down(&app, "flaky").await;

    // Back up, its tenants are served again without a restart.
    proxy.restore();
    let back = TestApp::eventually(Duration::from_secs(15), || async {
        read_tenant(&app, "fragile", 1).await[0].0 == StatusCode::OK
    })
    .await;
    assert!(
        back.is_some(),
        "the fragile tenant is not served after its cluster came back"
    );
}

#[tokio::test]
async fn isolation_holds_on_the_second_cluster_too() {
    let app = TestApp::spawn_with(TestOptions {
        // Two connections for requests to each cluster: interleaved tenants share them.
        data_pool_size: 2,
        ..TestOptions::default()
    })
    .await;
    app.register_second_cluster("eu-2").await;
    let slugs = ["alpha", "bravo", "charlie", "delta"];
    for slug in slugs {
        TestApp::create_placed(&app.control, slug, Some("eu-2"), Default::default())
            .await
            .unwrap();
        app.raise_rate_limits(slug).await;
    }

    // A tenant's role reads its own schema there, and neither a sibling's nor the outboxes.
    let alpha = app.operator_api().tenants().get("alpha").await.unwrap();
    assert_eq!(alpha.cluster, "eu-2");
    let served = app
        .data
        .registry
        .lookup(&data_plane::tenancy::resolve::TenantKey::Slug(
            shared::tenant::TenantSlug::parse("alpha").unwrap(),
        ))
        .await
        .unwrap()
        .unwrap();
    let own = app
        .data
        .tenant_db
        .query_once(
            &served.scope,
            "SELECT display_name FROM tenant_profile",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(own[0].get::<_, String>(0), "alpha display");
    for sql in [
        "SELECT display_name FROM tenant_bravo.tenant_profile",
        "SELECT event FROM control.audit_outbox",
        "SELECT tenant_id FROM control.mail_pending",
    ] {
        match app.data.tenant_db.query_once(&served.scope, sql, &[]).await {
            Err(shared::tenant_context::TenantDbError::Query(error)) => assert_eq!(
                error.code(),
                Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                "{sql}: {error}"
            ),
            other => panic!("{sql} was not refused: {other:?}"),
        }
    }

    // Interleaved requests on two connections never see another tenant's rows.
    let app = &app;
    let requests = (0..200).map(|index| {
        let slug = slugs[index % slugs.len()];
        async move {
            let body: Value = app.tenant(slug).get("/v1/tenant").ok().await.unwrap();
            (slug, body)
        }
    });
    for (slug, body) in futures_util::future::join_all(requests).await {
        assert_eq!(
            (body["slug"].as_str(), body["display_name"].as_str()),
            (Some(slug), Some(format!("{slug} display").as_str())),
            "{slug} saw {body}"
        );
    }
    // Afterwards no connection to that cluster carries a tenant's context.
    let pools = app
        .data
        .tenant_db
        .fleet()
        .unwrap()
        .cluster("eu-2")
        .await
        .unwrap();
    for pool in pools.all() {
        let open = pool.status().size;
        let clients = futures_util::future::join_all((0..open).map(|_| pool.get())).await;
        for client in clients {
            app.assert_no_tenant_context(&client.unwrap(), "tenant_")
                .await;
        }
    }
}
