//! A data-plane node as a process of its own, killed (SIGKILL) or stopped (SIGTERM) under a
//! steady load of audited writes: every change it acknowledged is in the audit log exactly
//! once, and a node restarted on the same port binds it at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::node_process::{free_port, NodeProcess};
use tenantry_tests::{client, Client, TestApp};

/// What the load saw: request ids of acknowledged (201) writes, and the failures.
#[derive(Default)]
struct Load {
    acknowledged: Vec<String>,
    /// Failures that are not "connection refused" (a request the node had accepted and did
    /// not answer), with their error text.
    broken: Vec<String>,
    refused: usize,
}

/// `clients` tasks creating records as `owner` until a write fails to connect (the node is
/// gone) or `stop` is set; each request has its own id. Each task is a client of its own
/// (its own connections) presenting the owner's access token as it stands.
async fn start_load(
    owner: &Client,
    clients: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Arc<Mutex<Load>>, Vec<tokio::task::JoinHandle<()>>) {
    let token = owner.access_token().await.unwrap().unwrap();
    let slug = owner.tenant_slug().unwrap();
    let load = Arc::new(Mutex::new(Load::default()));
    let tasks = (0..clients)
        .map(|client| {
            let owner = Client::with_http(reqwest::Client::new(), owner.base_url())
                .tenant(slug)
                .with_bearer(token.expose());
            let (load, stop) = (load.clone(), stop.clone());
            tokio::spawn(async move {
                for index in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let id = format!("load-{client}-{index}");
                    let outcome = owner
                        .post("/v1/collections/tasks/records")
                        .header("X-Request-Id", &id)
                        .json(&json!({"title": id}))
                        .send()
                        .await;
                    let mut load = load.lock().unwrap();
                    match outcome {
                        Ok(reply) if reply.status() == StatusCode::CREATED => {
                            load.acknowledged.push(id);
                        }
                        Ok(reply) => load.broken.push(format!("{id}: {}", reply.status())),
                        Err(client::Error::Transport(error)) if error.is_connect() => {
                            load.refused += 1;
                            return;
                        }
                        Err(error) => {
                            load.broken.push(format!("{id}: {error:?}"));
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    (load, tasks)
}

/// Waits until the load has `count` acknowledged writes.
async fn until_acknowledged(load: &Mutex<Load>, count: usize) {
    let reached = TestApp::eventually(Duration::from_secs(60), || async {
        load.lock().unwrap().acknowledged.len() >= count
    })
    .await;
    assert!(reached.is_some(), "the load never reached {count} writes");
}

/// `records.create` events of the tenant per request id, and how many were rebuilt from the
/// outbox.
async fn create_events(app: &TestApp, tenant: &str) -> (HashMap<String, u64>, u64) {
    let rows: Vec<(String, u64, u64)> = app
        .clickhouse()
        .query(
            "SELECT request_id, count(), countIf(result = 'committed') FROM audit_log \
             WHERE tenant_id = ? AND action = 'records.create' GROUP BY request_id",
        )
        .bind(tenant)
        .fetch_all()
        .await
        .unwrap();
    let recovered = rows.iter().map(|(_, _, recovered)| recovered).sum();
    (
        rows.into_iter().map(|(id, count, _)| (id, count)).collect(),
        recovered,
    )
}

/// A deployment with tenant `slug` (an owner signed in, limits lifted) and a node process of
/// it on a free port with `settings`: (app, the owner on that node, tenant id, node).
async fn deployment_with_node(
    slug: &str,
    settings: &[(&str, String)],
) -> (TestApp, Client, String, NodeProcess) {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner(slug).await;
    app.raise_rate_limits(slug).await;
    let tenant = app.tenant_id(slug).await;
    let node = NodeProcess::start(&app, free_port(), settings).await;
    (app, owner.on(&node.url), tenant, node)
}

async fn records_in(app: &TestApp, slug: &str) -> i64 {
    app.superuser()
        .await
        .query_one(&format!("SELECT count(*) FROM tenant_{slug}.records"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_node_killed_under_load_loses_no_audit_event_of_a_change_it_committed() {
    // A long flush interval, so the kill surely finds events that are only in memory.
    let settings = [
        ("audit_flush_interval_ms", "2000".to_owned()),
        ("audit_outbox_recover_after_ms", "1000".to_owned()),
    ];
    let (app, owner, tenant, mut node) = deployment_with_node("crash", &settings).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (load, tasks) = start_load(&owner, 4, stop.clone()).await;
    until_acknowledged(&load, 60).await;
    node.kill();
    for task in tasks {
        task.await.unwrap();
    }
    let acknowledged = load.lock().unwrap().acknowledged.clone();

    // The restarted node binds the same port at once, and ships what the dead one left.
    let restarted = NodeProcess::start(&app, node.port, &settings).await;
    let committed = records_in(&app, "crash").await;
    let complete = TestApp::eventually(Duration::from_secs(60), || async {
        create_events(&app, &tenant).await.0.len() as i64 >= committed
    })
    .await;
    let (events, recovered) = create_events(&app, &tenant).await;
    assert!(
        complete.is_some(),
        "{} events for {committed} committed records; node log:\n{}",
        events.len(),
        restarted.log_text()
    );
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !events.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes without an event: {missing:?}"
    );
    let repeated: Vec<_> = events.iter().filter(|(_, count)| **count != 1).collect();
    assert!(
        repeated.is_empty(),
        "events stored more than once: {repeated:?}"
    );
    // Exactly the committed changes: one event per record, none for a write that did not
    // commit.
    assert_eq!(events.len() as i64, committed);
    assert!(
        recovered > 0,
        "the kill left nothing in memory to recover: the test proved nothing"
    );
    // The recovered events joined the restarted node's chain: the log still verifies.
    let verified = app
        .run_cli(&["control-plane", "audit", "verify", "crash"])
        .await;
    assert!(verified.is_ok(), "{verified:?}");
    // And the outbox is empty again.
    let left: i64 = app
        .superuser()
        .await
        .query_one("SELECT count(*) FROM control.audit_outbox", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_node_stopped_under_load_answers_what_it_accepted_and_its_port_is_free_at_once() {
    let settings = [
        ("audit_flush_interval_ms", "2000".to_owned()),
        ("shutdown_drain_ms", "1000".to_owned()),
    ];
    let (app, owner, tenant, mut node) = deployment_with_node("stopping", &settings).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (load, tasks) = start_load(&owner, 4, stop.clone()).await;
    until_acknowledged(&load, 60).await;

    node.terminate();
    // Draining: the node says it is not ready while it still serves; the balancer (here the
    // test) sees it at its next health check and sends no more. What is under way then must
    // be answered.
    let balancer = owner.anonymous();
    let draining = TestApp::eventually(Duration::from_secs(5), || async {
        balancer
            .get("/readyz")
            .send()
            .await
            .is_ok_and(|reply| reply.status() == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    assert!(
        draining.is_some(),
        "/readyz never said the node is draining"
    );
    let during_drain = load.lock().unwrap().acknowledged.len();
    until_acknowledged(&load, during_drain + 8).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let status = node.exit_status(Duration::from_secs(40)).await;
    assert!(
        status.is_some_and(|status| status.success()),
        "{status:?}; log:\n{}",
        node.log_text()
    );
    for task in tasks {
        task.await.unwrap();
    }
    let load = Arc::try_unwrap(load).ok().unwrap().into_inner().unwrap();
    assert!(
        load.broken.is_empty(),
        "requests the node accepted and did not answer: {:?}",
        load.broken
    );

    // Restarting on the same port works at once.
    let restarted = NodeProcess::start(&app, node.port, &settings).await;
    // Every acknowledged write's event was written out before the node exited: none needed
    // the outbox.
    let (events, recovered) = create_events(&app, &tenant).await;
    let missing: Vec<_> = load
        .acknowledged
        .iter()
        .filter(|id| !events.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes without an event: {missing:?}\n{}",
        restarted.log_text()
    );
    assert_eq!(recovered, 0);
    assert_eq!(events.len() as i64, records_in(&app, "stopping").await);
}
