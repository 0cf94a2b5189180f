use control_plane::templates::{migrate_all, RolloutOptions};
use reqwest::StatusCode;
use shared::template::Template;
use tenantry_tests::{column, roll_out, template_with_notes, TestApp};

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

/// Every object of `tenant`'s schema as lines of text, sorted, with the schema's and the role's
/// names replaced by `S` and `R`: tables and indexes (and who owns them), columns in order with
/// their types, defaults and nullability, constraints, index definitions, triggers; then how
/// many rows each table holds (the template's own, like V7's storage counter, and the seed's,
/// which is the same for every new tenant). Plus the migration history (version, name,
/// checksum), and whether any column got its value for existing rows from
/// `ALTER TABLE … ADD COLUMN … DEFAULT` (Postgres's "missing value").
async fn described(
    app: &TestApp,
    tenant: &shared::tenant::Tenant,
) -> (Vec<String>, Vec<String>, bool) {
    let db = app.superuser().await;
    let schema = tenant.schema.as_str();
    let mut objects: Vec<String> = db
        .query(
            "SELECT format('relation %s kind=%s owned=%s acl=%s', c.relname, c.relkind,
                           c.relowner = n.nspowner, c.relacl)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1
             UNION ALL
             SELECT format('column %s #%s %s %s notnull=%s default=%s identity=%s generated=%s \
                            collation=%s dropped=%s',
                           c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                           a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity,
                           a.attgenerated, a.attcollation::regcollation, a.attisdropped)
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE n.nspname = $1 AND a.attnum > 0
             UNION ALL
             SELECT format('constraint %s %s %s deferrable=%s', c.relname, k.conname,
                           pg_get_constraintdef(k.oid), k.condeferrable)
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1
             UNION ALL
             SELECT format('index %s', pg_get_indexdef(i.indexrelid))
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1
             UNION ALL
             SELECT format('trigger %s', pg_get_triggerdef(t.oid))
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND NOT t.tgisinternal
             UNION ALL
             SELECT format('type %s %s', t.typname, t.typtype)
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = $1
             UNION ALL
             SELECT format('function %s %s', p.proname, pg_get_function_identity_arguments(p.oid))
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = $1
             ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            row.get::<_, String>(0)
                .replace(tenant.role.as_str(), "R")
                .replace(schema, "S")
        })
        .collect();
    let tables = db
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 AND tablename <> $2
             ORDER BY 1",
            &[&schema, &shared::template::HISTORY_TABLE],
        )
        .await
        .unwrap();
    for table in tables.iter().map(|row| row.get::<_, String>(0)) {
        let rows = db
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.{}",
                    tenant.schema.quoted(),
                    shared::tenant::quote_ident(&table)
                ),
                &[],
            )
            .await
            .unwrap();
        objects.push(format!("rows of {table}: {}", rows.get::<_, i64>(0)));
    }
    let history = column(
        &db,
        &format!(
            "SELECT version || ' ' || name || ' ' || checksum FROM {}.refinery_schema_history
             ORDER BY version",
            tenant.schema.quoted()
        ),
    )
    .await;
    let missing_values: bool = db
        .query_one(
            "SELECT count(*) > 0 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             WHERE c.relnamespace = $1::text::regnamespace AND a.atthasmissing",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    (objects, history, missing_values)
}

#[tokio::test]
async fn a_new_tenant_is_made_from_the_baseline_and_gets_the_schema_its_versions_make() {
    let app = TestApp::spawn().await;
    let baseline = Template::default_template()
        .baseline()
        .expect("the default template has a baseline");
    assert!(baseline.version <= current_version());

    let from_baseline = app.create_tenant("based").await;
    let replaying = app
        .control
        .with_template(Template::default_template().without_baseline());
    let replayed = app
        .create_tenant_on(&replaying, "replayed", Default::default())
        .await
        .unwrap();

    let (based_objects, based_history, based_missing) = described(&app, &from_baseline).await;
    let (replayed_objects, replayed_history, replayed_missing) = described(&app, &replayed).await;
    // Versions 5 and 9 add columns with defaults: replayed, they leave Postgres's missing
    // values behind; made from the baseline, the columns are created with their tables.
    assert!(
        replayed_missing && !based_missing,
        "the new tenant was not made from the baseline"
    );
    assert!(based_objects.len() > 200, "{based_objects:?}");
    let only_based: Vec<_> = based_objects
        .iter()
        .filter(|line| !replayed_objects.contains(line))
        .collect();
    let only_replayed: Vec<_> = replayed_objects
        .iter()
        .filter(|line| !based_objects.contains(line))
        .collect();
    assert!(
        only_based.is_empty() && only_replayed.is_empty(),
        "the baseline (version {}) and versions 1 to {} make different schemas or rows:\n\
         only from the baseline: {only_based:#?}\nonly from the versions: {only_replayed:#?}",
        baseline.version,
        baseline.version,
    );
    assert_eq!(based_objects, replayed_objects);
    assert_eq!(based_history, replayed_history);
    assert_eq!(based_history.len(), current_version() as usize);

    // A later version applies to a tenant made from the baseline like to any other: refinery
    // takes the history written beside the baseline as its own.
    let control = app.control.with_template(template_with_notes());
    let report = roll_out(&control, 2).await;
    assert_eq!((report.migrated.len(), report.failed.len()), (2, 0));
}
