//! Moving a tenant to another cluster while it is served: reads go on, writes pause for the
//! copy and none is lost or doubled; a move cut short anywhere is finished by running it again
//! or cancelled; bad requests change nothing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use control_plane::error::ControlError;
use control_plane::moves::service::{move_tenant, MoveOptions};
use control_plane::moves::store::{self, Compare};
use control_plane::moves::Stage;
use reqwest::StatusCode;
use serde_json::json;
use shared::tenant::TenantSlug;
use tenantry_tests::client::TenantPatch;
use tenantry_tests::{column, records_on, Client, TestApp};
use uuid::Uuid;

/// Tenant `slug` on the catalog's cluster with an owner signed in, `records` tasks written.
async fn tenant_with_tasks(app: &TestApp, slug: &str, records: usize) -> Client {
    let owner = app.tenant_with_owner_on(slug, "primary").await;
    app.raise_rate_limits(slug).await;
    for n in 0..records {
        owner
            .records("tasks")
            .create(&json!({"title": format!("seed {n}")}))
            .await
            .unwrap();
    }
    owner
}

fn no_progress(_: &str) {}

/// Runs a move of `slug` to `to` through the control plane's own code, stopping after `stage`.
async fn move_cut_after(app: &TestApp, slug: &str, to: &str, stage: Stage) {
    let outcome = move_tenant(
        &app.control,
        &TenantSlug::parse(slug).unwrap(),
        to,
        &MoveOptions {
            grace: Duration::ZERO,
            interrupt_after: Some(stage),
        },
        &no_progress,
    )
    .await;
    assert!(
        matches!(outcome, Err(ControlError::MoveInterrupted(at)) if at == stage),
        "{stage:?}: {outcome:?}"
    );
}

async fn cluster_of(app: &TestApp, slug: &str) -> String {
    app.operator_api()
        .tenants()
        .get(slug)
        .await
        .unwrap()
        .cluster
}

#[tokio::test]
async fn a_tenant_moves_under_reads_and_writes_and_no_acknowledged_write_is_lost_or_doubled() {
    let app = TestApp::spawn().await;
    app.register_second_cluster("eu-2").await;
    let owner = tenant_with_tasks(&app, "mover", 200).await;

    // Writers and readers run through the whole move.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let refused = Arc::new(Mutex::new(Vec::<(StatusCode, String)>::new()));
    let mut workers = Vec::new();
    for writer in 0..2 {
        let (owner, stop) = (owner.clone(), stop.clone());
        let (acknowledged, refused) = (acknowledged.clone(), refused.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let title = format!("writer {writer} #{n}");
                match owner
                    .records("tasks")
                    .create(&json!({ "title": title }))
                    .await
                {
                    Ok(record) => acknowledged.lock().unwrap().push(record.id),
                    Err(error) => refused.lock().unwrap().push((
                        error.status().unwrap_or_default(),
                        error.code().unwrap_or_default().to_owned(),
                    )),
                }
            }
        }));
    }
    let failed_reads = Arc::new(Mutex::new(Vec::<String>::new()));
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (owner, stop) = (owner.clone(), stop.clone());
        let (failed_reads, reads) = (failed_reads.clone(), reads.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match owner
                    .get("/v1/collections/tasks/records?limit=5")
                    .send()
                    .await
                {
                    Ok(reply) if reply.status() == StatusCode::OK => {}
                    Ok(reply) => failed_reads.lock().unwrap().push(format!(
                        "{} {:?}",
                        reply.status(),
                        reply.code()
                    )),
                    Err(error) => failed_reads.lock().unwrap().push(error.to_string()),
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Some writes before the move starts, some after it ends.
    let written = |count: usize| {
        let acknowledged = acknowledged.clone();
        async move {
            TestApp::eventually(Duration::from_secs(30), || async {
                acknowledged.lock().unwrap().len() >= count
            })
            .await
            .is_some()
        }
    };
    assert!(written(20).await, "the writers are not writing");

    let report = app
        .operator_api()
        .tenants()
        .move_to("mover", "eu-2", Some(1))
        .await
        .unwrap();
    assert_eq!(
        (
            report.source.as_str(),
            report.target.as_str(),
            report.step.as_str()
        ),
        ("primary", "eu-2", "switched")
    );
    assert!(report.rows >= 220, "{report:?}");
    assert!(report.freeze_ms.is_some());
    let after_move = acknowledged.lock().unwrap().len();
    assert!(
        written(after_move + 20).await,
        "writes did not resume after the move"
    );
    // The source is dropped once its grace (1 s here; a request that had resolved the tenant
    // just before the switch finishes on it meanwhile) has passed, by running the move again,
    // the readers and writers still at work.
    let dropped = TestApp::eventually(Duration::from_secs(15), || async {
        let again = app
            .operator_api()
            .tenants()
            .move_to("mover", "eu-2", Some(1))
            .await
            .unwrap();
        again.step == "done"
    })
    .await;
    assert!(
        dropped.is_some(),
        "the source was not dropped after its grace"
    );
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    // Reads never failed; writes were only ever refused as `tenant_moving`.
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(*failed_reads.lock().unwrap(), Vec::<String>::new());
    let refused = refused.lock().unwrap().clone();
    assert!(
        refused
            .iter()
            .all(|(status, code)| *status == StatusCode::SERVICE_UNAVAILABLE
                && code == "tenant_moving"),
        "{refused:?}"
    );

    // Every acknowledged write is on the target exactly once, and nothing else was added.
    let acknowledged = acknowledged.lock().unwrap().clone();
    let distinct: HashSet<_> = acknowledged.iter().collect();
    assert_eq!(distinct.len(), acknowledged.len());
    let second = TestApp::connect_to(&app.second_cluster_url().await).await;
    let found: i64 = second
        .query_one(
            "SELECT count(*) FROM tenant_mover.records WHERE id = ANY($1)",
            &[&acknowledged],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(found, acknowledged.len() as i64);
    assert_eq!(
        records_on(&second, "mover").await,
        Some(200 + acknowledged.len() as i64)
    );

    // The catalog names the target, the source is gone, and the tenant is served from the
    // target: its owner's session, its records.
    assert_eq!(cluster_of(&app, "mover").await, "eu-2");
    assert_eq!(records_on(&app.superuser().await, "mover").await, None);
    let listed = owner
        .records("tasks")
        .list_all(&Default::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 200 + acknowledged.len());
    let tenant_id = app.tenant_id("mover").await;
    app.wait_for_audit_events(&tenant_id, "tenant.move", 1, Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn a_move_cut_short_after_any_stage_is_finished_by_running_it_again() {
    let app = TestApp::spawn().await;
    app.register_second_cluster("eu-2").await;
    for (n, stage) in Stage::ALL.into_iter().enumerate() {
        let slug = format!("cut-{n}");
        let owner = tenant_with_tasks(&app, &slug, 3).await;
        move_cut_after(&app, &slug, "eu-2", stage).await;

        // Exactly one cluster is the tenant's: the source until the switch, then the target.
        let expected = if stage == Stage::Switched {
            "eu-2"
        } else {
            "primary"
        };
        assert_eq!(cluster_of(&app, &slug).await, expected, "{stage:?}");
        // Reads are served at every point; writes are refused while frozen, never lost.
        let listed = owner.records("tasks").list_all(&Default::default()).await;
        assert_eq!(
            listed.map(|records| records.len()).ok(),
            Some(3),
            "{stage:?}"
        );
        let write = owner
            .records("tasks")
            .create(&json!({"title": "during"}))
            .await;
        let written = match (stage, write) {
            (Stage::Fenced | Stage::Verified, Err(error)) => {
                assert_eq!(error.code(), Some("tenant_moving"), "{stage:?}");
                0
            }
            (Stage::Prepared | Stage::Copied | Stage::Switched, Ok(_)) => 1,
            (stage, outcome) => panic!("{stage:?}: {outcome:?}"),
        };

        let report = app
            .operator_api()
            .tenants()
            .move_to(&slug, "eu-2", Some(0))
            .await
            .unwrap_or_else(|error| panic!("{stage:?}: {error}"));
        assert_eq!(report.step, "done", "{stage:?}");
        assert_eq!(cluster_of(&app, &slug).await, "eu-2");
        let second = TestApp::connect_to(&app.second_cluster_url().await).await;
        assert_eq!(
            records_on(&second, &slug).await,
            Some(3 + written),
            "{stage:?}"
        );
        assert_eq!(
            records_on(&app.superuser().await, &slug).await,
            None,
            "{stage:?}"
        );
        owner
            .records("tasks")
            .create(&json!({"title": "after"}))
            .await
            .unwrap_or_else(|error| panic!("{stage:?}: writing after the move: {error}"));
    }
}

#[tokio::test]
async fn what_changes_after_the_bulk_copy_is_caught_up_in_the_freeze_and_nothing_else() {
    let app = TestApp::spawn().await;
    app.register_second_cluster("eu-2").await;
    let owner = tenant_with_tasks(&app, "busy", 0).await;
    let tasks = owner.records("tasks");
    let mut seeded = Vec::new();
    for n in 0..40 {
        seeded.push(
            tasks
                .create(&json!({"title": format!("seed {n:02}")}))
                .await
                .unwrap(),
        );
    }
    move_cut_after(&app, "busy", "eu-2", Stage::Copied).await;

    // After the bulk copy, the tenant still takes writes of every kind: a new record, a
    // changed one, a deleted one, and a row of a table without a primary key (the throttle
    // of account mail, written by a password-reset request for the owner).
    let added = tasks
        .create(&json!({"title": "after the copy"}))
        .await
        .unwrap();
    let changed = tasks
        .update(
            seeded[1].id,
            &json!({"title": "changed after the copy"}),
            None,
        )
        .await
        .unwrap();
    tasks.delete(seeded[2].id, None).await.unwrap();
    owner
        .auth()
        .request_password_reset(tenantry_tests::OWNER_EMAIL)
        .await
        .unwrap();
    let source = app.superuser().await;
    let mail_sends = |client: tokio_postgres::Client| async move {
        client
            .query_one("SELECT count(*) FROM tenant_busy.account_mail_sends", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let sends_on_source = mail_sends(source).await;
    assert!(sends_on_source >= 1);

    let report = app
        .operator_api()
        .tenants()
        .move_to("busy", "eu-2", Some(0))
        .await
        .unwrap();
    assert_eq!(report.step, "done");
    // Resumed after the copy, the run compares instead of copying again: it rewrites the
    // two records that changed (a new one, an updated one) and what else changed since (the
    // reset's token and mail), removes the deleted one, and copies the table without a key
    // whole: a few rows, not the 40 records and the rest of the tenant again.
    assert!((2..10).contains(&report.rows), "{report:?}");
    // In the freeze, nothing changed since; the table without a key is copied whole again.
    assert!(report.caught_up as i64 >= sends_on_source, "{report:?}");

    // The target has the tenant as the source had it at the freeze.
    let listed = tasks.list_all(&Default::default()).await.unwrap();
    let mut titles: Vec<_> = listed
        .iter()
        .map(|record| record.data["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    let mut expected: Vec<String> = (0..40)
        .filter(|n| ![1, 2].contains(n))
        .map(|n| format!("seed {n:02}"))
        .collect();
    expected.extend(["after the copy".into(), "changed after the copy".into()]);
    expected.sort();
    assert_eq!(titles, expected);
    assert_eq!(tasks.get(added.id).await.unwrap().version, added.version);
    assert_eq!(
        tasks.get(changed.id).await.unwrap().version,
        changed.version
    );
    assert_eq!(
        tasks.get(seeded[2].id).await.unwrap_err().status(),
        Some(StatusCode::NOT_FOUND)
    );
    let second = TestApp::connect_to(&app.second_cluster_url().await).await;
    assert_eq!(mail_sends(second).await, sends_on_source);
}

/// A connection of the control plane's to cluster `name`.
async fn cluster_connection(app: &TestApp, name: &str) -> deadpool_postgres::Object {
    let catalog = app.control.pool.get().await.unwrap();
    let cluster = app
        .control
        .clusters
        .named(&app.control, &catalog, name)
        .await
        .unwrap();
    cluster.pool.get().await.unwrap()
}

#[tokio::test]
async fn the_freeze_reads_in_full_only_the_rows_written_since_the_last_full_comparison() {
    let app = TestApp::spawn().await;
    app.register_second_cluster("eu-2").await;
    let owner = tenant_with_tasks(&app, "since", 0).await;
    let tasks = owner.records("tasks");
    let mut seeded = Vec::new();
    for n in 0..10 {
        seeded.push(
            tasks
                .create(&json!({"title": format!("seed {n}")}))
                .await
                .unwrap(),
        );
    }
    // The target's empty schema, then the move's own steps, driven one by one.
    move_cut_after(&app, "since", "eu-2", Stage::Prepared).await;
    let schema = shared::tenant::PgIdentifier::from_catalog("tenant_since".to_owned());
    let (mut source, mut target) = (
        cluster_connection(&app, "primary").await,
        cluster_connection(&app, "eu-2").await,
    );
    let tables = store::tables(&source, &schema).await.unwrap();
    let sync = store::sync(
        &mut source,
        &mut target,
        &schema,
        &tables,
        Compare::EveryRow,
    );
    let copied = sync.await.unwrap();
    assert!(copied.rows >= 10, "{copied:?}");

    // Written after that full comparison: a record added, one changed, one deleted.
    let added = tasks.create(&json!({"title": "new"})).await.unwrap();
    tasks
        .update(seeded[3].id, &json!({"title": "changed"}), None)
        .await
        .unwrap();
    tasks.delete(seeded[7].id, None).await.unwrap();

    let since = Compare::WrittenSince(copied.xmin);
    let caught_up = store::sync(&mut source, &mut target, &schema, &tables, since)
        .await
        .unwrap();
    // In `records`, exactly those three rows were touched, not the ten.
    let records = tables
        .iter()
        .position(|table| table.name == "records")
        .unwrap();
    let mut touched = caught_up.touched[records].clone().unwrap();
    touched.sort();
    let mut expected: Vec<String> = [added.id, seeded[3].id, seeded[7].id]
        .iter()
        .map(|id| format!("({id})"))
        .collect();
    expected.sort();
    assert_eq!(touched, expected);

    // And the two sides are now the same, every row of every table.
    let whole: Vec<Option<Vec<String>>> = vec![None; tables.len()];
    let there = store::fingerprints(&mut source, &tables, &whole)
        .await
        .unwrap();
    let here = store::fingerprints(&mut target, &tables, &whole)
        .await
        .unwrap();
    assert_eq!(there, here);
    let titles: Vec<String> = column(
        &target,
        "SELECT data->>'title' FROM tenant_since.records ORDER BY 1",
    )
    .await;
    assert_eq!(titles.len(), 10);
    assert!(titles.contains(&"changed".to_owned()) && titles.contains(&"new".to_owned()));
    assert!(!titles.contains(&"seed 7".to_owned()));
    app.operator_api()
        .tenants()
        .cancel_move("since")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_move_cancelled_before_its_switch_leaves_the_tenant_where_it_was_taking_writes() {
    let app = TestApp::spawn().await;
    app.register_second_cluster("eu-2").await;
    let owner = tenant_with_tasks(&app, "stayer", 2).await;
    move_cut_after(&app, "stayer", "eu-2", Stage::Verified).await;
    let refused = owner.records("tasks").create(&json!({"title": "x"})).await;
    assert_eq!(refused.unwrap_err().code(), Some("tenant_moving"));

    let report = app
        .operator_api()
        .tenants()
        .cancel_move("stayer")
        .await
        .unwrap();
    assert_eq!(report.step, "cancelled");
    assert_eq!(cluster_of(&app, "stayer").await, "primary");
    let second = TestApp::connect_to(&app.second_cluster_url().await).await;
    assert_eq!(
        records_on(&second, "stayer").await,
        None,
        "the target's copy is dropped"
    );
    let accepted = TestApp::eventually(Duration::from_secs(5), || async {
        owner
            .records("tasks")
            .create(&json!({"title": "again"}))
            .await
            .is_ok()
    })
    .await;
    assert!(accepted.is_some(), "writes are refused after the cancel");
    assert_eq!(records_on(&app.superuser().await, "stayer").await, Some(3));

    // Nothing left to cancel, and the cancelled move keeps no cluster: the target can go.
    app.operator_api().clusters().remove("eu-2").await.unwrap();
    let again = app
        .operator_api()
        .tenants()
        .cancel_move("stayer")
        .await
        .unwrap_err();
    assert_eq!(
        (again.status(), again.code()),
        (Some(StatusCode::CONFLICT), Some("no_move"))
    );
}

#[tokio::test]
async fn bad_moves_are_refused_with_a_code_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.register_second_cluster("eu-2").await;
    let owner = tenant_with_tasks(&app, "fixed", 1).await;
    let operator = app.operator_api();
    let tenants = operator.tenants();
    let refused =
        |outcome: Result<tenantry_tests::client::MoveReport, tenantry_tests::client::Error>| {
            let error = outcome.expect_err("refused");
            (
                error.status().map(|status| status.as_u16()),
                error.code().unwrap_or_default().to_owned(),
            )
        };

    assert_eq!(
        refused(tenants.move_to("fixed", "nowhere", None).await),
        (Some(400), "unknown_cluster".into())
    );
    assert_eq!(
        refused(tenants.move_to("fixed", "primary", None).await),
        (Some(409), "same_cluster".into())
    );
    assert_eq!(
        refused(tenants.move_to("nobody", "eu-2", None).await),
        (Some(404), "tenant_not_found".into())
    );
    let too_long = tenants
        .move_to("fixed", "eu-2", Some(10 * 365 * 24 * 3600))
        .await;
    assert_eq!(refused(too_long), (Some(400), "invalid_input".into()));

    app.operator_api().clusters().drain("eu-2").await.unwrap();
    assert_eq!(
        refused(tenants.move_to("fixed", "eu-2", None).await),
        (Some(409), "cluster_drained".into())
    );
    app.operator_api().clusters().undrain("eu-2").await.unwrap();

    let suspend = |status: &str| TenantPatch {
        status: Some(status.into()),
        ..TenantPatch::default()
    };
    tenants
        .update("fixed", &suspend("suspended"))
        .await
        .unwrap();
    assert_eq!(
        refused(tenants.move_to("fixed", "eu-2", None).await),
        (Some(409), "tenant_not_movable".into())
    );
    tenants.update("fixed", &suspend("active")).await.unwrap();

    // A target that does not answer.
    let proxy = app.register_second_cluster_behind_a_proxy("flaky").await;
    proxy.cut();
    assert_eq!(
        refused(tenants.move_to("fixed", "flaky", None).await),
        (Some(422), "cluster_unreachable".into())
    );
    proxy.restore();

    // One move at a time: a move under way to eu-2 is finished (or cancelled) before another.
    move_cut_after(&app, "fixed", "eu-2", Stage::Prepared).await;
    assert_eq!(
        refused(tenants.move_to("fixed", "flaky", None).await),
        (Some(409), "move_in_progress".into())
    );
    tenants.cancel_move("fixed").await.unwrap();

    // Nothing of it changed the tenant: on its cluster, taking writes, its rows all there.
    assert_eq!(cluster_of(&app, "fixed").await, "primary");
    let accepted = TestApp::eventually(Duration::from_secs(5), || async {
        owner
            .records("tasks")
            .create(&json!({"title": "still here"}))
            .await
            .is_ok()
    })
    .await;
    assert!(accepted.is_some());
    assert_eq!(records_on(&app.superuser().await, "fixed").await, Some(2));
    let second = TestApp::connect_to(&app.second_cluster_url().await).await;
    assert_eq!(records_on(&second, "fixed").await, None);
}

#[tokio::test]
async fn a_request_that_meets_its_tenants_dropped_source_gets_a_retryable_503_not_a_500() {
    // What a node that has not heard of a move's switch meets once the source is dropped
    // (a move with no grace): the tenant's role and schema gone from the cluster it routes to.
    let app = TestApp::spawn().await;
    let owner = tenant_with_tasks(&app, "dropped", 1).await;
    let slug = TenantSlug::parse("dropped").unwrap();
    let role = app.role_prefix.tenant_role(&slug);
    let schema = shared::tenant::tenant_schema(&slug);
    app.superuser()
        .await
        .batch_execute(&format!(
            "DROP SCHEMA \"{}\" CASCADE; DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\"",
            schema.as_str(),
            role = role.as_str()
        ))
        .await
        .unwrap();
    let reply = owner
        .get("/v1/collections/tasks/records?limit=5")
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.error_code(),
        (StatusCode::SERVICE_UNAVAILABLE, "tenant_unavailable"),
        "{}",
        reply.text()
    );
    assert!(reply.header("retry-after").is_some());
}
