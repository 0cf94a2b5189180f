//! The events store as a ClickHouse cluster (`clickhouse_cluster`, `clickhouse_shard_urls`):
//! each tenant's rows on the one shard its id hashes to, its chain, audit query and usage
//! answered over the `Distributed` tables, and nothing lost while a shard is down. `deploy/local/test.sh` runs
//! two local servers as the shards of `tenantry_events`; the outage test starts a cluster of
//! its own, since the shared one serves concurrent tests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::StatusCode;
use shared::events::ClickHouseCluster;
use tenantry_tests::private_clickhouse::PrivateClickHouse;
use tenantry_tests::{local_cluster, TestApp, TestOptions};

use super::create_records;

fn on_cluster(url: String, cluster: ClickHouseCluster) -> TestOptions {
    TestOptions {
        clickhouse_url: url,
        clickhouse_cluster: Some(cluster),
        ..TestOptions::default()
    }
}

/// A tenant with a signed-in owner, its id, and the shard its id hashes to (the
/// `Distributed` tables' sharding key, `sipHash64(tenant_id)`, modulo the shard count).
struct Placed {
    slug: String,
    id: String,
    shard: usize,
    owner: tenantry_tests::Client,
}

/// Tenants `<prefix>-<n>` until at least three, on both shards.
async fn tenants_on_both_shards(app: &TestApp, prefix: &str) -> Vec<Placed> {
    let mut placed: Vec<Placed> = Vec::new();
    for n in 0.. {
        let slug = format!("{prefix}-{n}");
        let owner = app.tenant_with_owner(&slug).await;
        app.raise_rate_limits(&slug).await;
        let id = app.tenant_id(&slug).await;
        let hash: u64 = app
            .clickhouse()
            .query("SELECT toUInt64(sipHash64(?) % 2)")
            .bind(&id)
            .fetch_one()
            .await
            .unwrap();
        placed.push(Placed {
            slug,
            id,
            shard: hash as usize,
            owner,
        });
        let shards: BTreeSet<usize> = placed.iter().map(|tenant| tenant.shard).collect();
        if shards.len() == 2 && placed.len() >= 3 {
            return placed;
        }
    }
    unreachable!()
}

/// Each shard's audit rows by tenant, read from the shards' local tables.
async fn rows_by_shard(app: &TestApp) -> Vec<BTreeMap<String, u64>> {
    let mut by_shard = Vec::new();
    for storage in app.control.config.events.storage() {
        let counts: Vec<(String, u64)> = storage
            .client
            .query(&format!(
                "SELECT tenant_id, count() FROM {} GROUP BY tenant_id",
                storage.local("audit_log")
            ))
            .fetch_all()
            .await
            .unwrap();
        by_shard.push(counts.into_iter().collect());
    }
    by_shard
}

async fn verifies(app: &TestApp, slug: &str) {
    let output = app
        .run_cli(&["control-plane", "audit", "verify", slug])
        .await
        .unwrap();
    assert!(output.contains("verifies"), "{slug}: {output}");
}

#[tokio::test]
async fn each_tenants_events_live_on_the_shard_its_id_picks_and_its_chain_query_and_usage_work() {
    let app = TestApp::spawn_with(on_cluster(
        tenantry_tests::clickhouse_url(),
        local_cluster(),
    ))
    .await;
    let tenants = tenants_on_both_shards(&app, "spread").await;
    for tenant in &tenants {
        create_records(&tenant.owner, 2).await;
    }
    for tenant in &tenants {
        let (rows, distinct) = app
            .wait_for_audit_events(&tenant.id, "records.create", 2, Duration::from_secs(10))
            .await;
        assert_eq!((rows, distinct), (2, 2), "{}", tenant.slug);
    }
    app.control.events.as_ref().unwrap().flush().await;

    let by_shard = rows_by_shard(&app).await;
    for tenant in &tenants {
        let holders: Vec<usize> = (0..by_shard.len())
            .filter(|shard| by_shard[*shard].contains_key(&tenant.id))
            .collect();
        assert_eq!(
            holders,
            vec![tenant.shard],
            "{}'s rows are not all on its shard: {by_shard:?}",
            tenant.slug
        );
    }
    assert!(by_shard.iter().all(|rows| !rows.is_empty()), "{by_shard:?}");

    // The chain verifies and the audit query answers, whichever shard holds the tenant.
    for tenant in &tenants {
        verifies(&app, &tenant.slug).await;
        let page = tenant
            .owner
            .audit(&tenantry_tests::client::AuditQuery {
                action: Some("records.create".to_owned()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.events.len(), 2, "{}: {page:?}", tenant.slug);
        // Daily usage is counted from the same `Distributed` tables.
        let reply = tenant
            .owner
            .get("/v1/admin/usage?days=1")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        let usage = reply.value();
        let today = &usage["days"][0];
        assert!(today["requests"].as_u64().unwrap() >= 2, "{usage}");
        assert_eq!(today["active_users"], 1, "{usage}");
    }
}

#[tokio::test]
async fn with_a_shard_down_audited_writes_go_on_and_every_event_arrives_once_it_is_back() {
    let mut shards = PrivateClickHouse::start_cluster("tenantry_events", 2).await;
    let cluster = ClickHouseCluster {
        name: "tenantry_events".to_owned(),
        shard_urls: shards.iter().map(PrivateClickHouse::url).collect(),
    };
    let app = TestApp::spawn_with(on_cluster(shards[0].url(), cluster)).await;
    let tenants = tenants_on_both_shards(&app, "outage").await;

    // The second shard goes away: inserts fail, batches spool, requests still succeed and
    // the node stays ready (its spool has room).
    shards[1].stop();
    for tenant in &tenants {
        create_records(&tenant.owner, 1).await;
    }
    let ready = app
        .http
        .get(format!("{}/readyz", app.data_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    // Back: the spool replays, each event exactly once, each chain whole.
    shards[1].resume().await;
    for tenant in &tenants {
        let (rows, distinct) = app
            .wait_for_audit_events(&tenant.id, "records.create", 1, Duration::from_secs(60))
            .await;
        assert_eq!((rows, distinct), (1, 1), "{}", tenant.slug);
    }
    app.control.events.as_ref().unwrap().flush().await;
    for tenant in &tenants {
        verifies(&app, &tenant.slug).await;
    }
}
