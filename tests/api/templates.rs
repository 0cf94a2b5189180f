use control_plane::templates::{migrate_all, RolloutOptions};
use reqwest::StatusCode;
use shared::template::Template;
use tenantry_tests::{roll_out, template_with_notes, TestApp};

async fn versions(app: &TestApp) -> Vec<(String, i32)> {
    app.superuser()
        .await
        .query(
            "SELECT slug, template_version FROM control.tenants ORDER BY created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// The version a tenant is created at: the newest of the default template.
fn current_version() -> i32 {
    Template::default_template().latest_version()
}

/// Makes V100 fail for `slug` by creating the table it creates.
async fn sabotage(app: &TestApp, slug: &str) {
    app.superuser()
        .await
        .batch_execute(&format!("CREATE TABLE tenant_{slug}.notes (id int)"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_new_template_version_rolls_over_every_tenant_and_a_second_run_has_nothing_to_do() {
    let app = TestApp::spawn().await;
    for slug in ["one", "two", "three"] {
        app.create_tenant(slug).await;
    }
    let control = app.control.with_template(template_with_notes());
    let report = roll_out(&control, 2).await;
    assert_eq!(
        (report.behind, report.migrated.len(), report.failed.len()),
        (3, 3, 0)
    );
    assert!(versions(&app)
        .await
        .iter()
        .all(|(_, version)| *version == 100));
    let db = app.superuser().await;
    for slug in ["one", "two", "three"] {
        let owner: String = db
            .query_one(&format!("SELECT tableowner::text FROM pg_tables WHERE schemaname = 'tenant_{slug}' AND tablename = 'notes'"), &[])
            .await
            .unwrap()
            .get(0);
        assert!(
            owner.ends_with(&format!("_t_{slug}")),
            "notes of {slug} owned by {owner}"
        );
    }
    let again = roll_out(&control, 2).await;
    assert_eq!(again.behind, 0);
}

#[tokio::test]
async fn a_failing_tenant_is_reported_the_rest_continue_and_a_rerun_finishes_it() {
    let app = TestApp::spawn().await;
    for slug in ["one", "two", "three"] {
        app.create_tenant(slug).await;
    }
    sabotage(&app, "two").await;
    let control = app.control.with_template(template_with_notes());
    let report = roll_out(&control, 3).await;
    assert_eq!(report.migrated.len(), 2);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].slug, "two");
    assert!(report.failed[0].error.as_deref().unwrap().contains("notes"));
    assert_eq!(
        versions(&app).await,
        vec![
            ("one".into(), 100),
            ("two".into(), current_version()),
            ("three".into(), 100)
        ]
    );
    let recorded: String = app
        .superuser()
        .await
        .query_one(
            "SELECT s.state FROM control.tenant_template_status s JOIN control.tenants t ON t.id = s.tenant_id WHERE t.slug = 'two'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, "failed");

    // The tenant one version behind is still served (migrations are additive).
    let reply = app.tenant("two").get("/v1/tenant").send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);

    app.superuser()
        .await
        .batch_execute("DROP TABLE tenant_two.notes")
        .await
        .unwrap();
    let resumed = roll_out(&control, 3).await;
    assert_eq!(
        (resumed.behind, resumed.migrated.len(), resumed.failed.len()),
        (1, 1, 0)
    );
    assert!(versions(&app)
        .await
        .iter()
        .all(|(_, version)| *version == 100));
}

#[tokio::test]
async fn a_failure_in_the_canary_group_halts_the_roll() {
    let app = TestApp::spawn().await;
    for slug in ["first", "second", "third"] {
        app.create_tenant(slug).await;
    }
    sabotage(&app, "first").await;
    let control = app.control.with_template(template_with_notes());
    let report = migrate_all(
        &control,
        RolloutOptions {
            concurrency: 2,
            canary: Some(1),
        },
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.halted_by_canary);
    assert_eq!((report.migrated.len(), report.failed.len()), (0, 1));
    assert!(versions(&app)
        .await
        .iter()
        .all(|(_, version)| *version == current_version()));
}
