//! The cluster registry: operators register the Postgres clusters tenants are placed on, by a
//! reference to where the URL is (never the URL itself), and the control plane prepares each
//! one (the data plane's role, the audit outbox).

use control_plane::error::ControlError;
use control_plane::provisioning::{ProvisionOptions, Step};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

use tenantry_tests::client::{Cluster, Error, NewCluster, NewTenant, TenantPatch};
use tenantry_tests::{has_schema, roll_out, template_with_notes, TestApp};

/// A file holding `url`, named for the test; the cluster is registered by its path.
fn url_file(app: &TestApp, name: &str, url: &str) -> String {
    let dir = std::env::temp_dir().join("tenantry-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("cluster-{}-{name}", app.role_prefix.as_str()));
    std::fs::write(&path, format!("{url}\n")).unwrap();
    path.display().to_string()
}

/// The second cluster's URL with a password in it: trust authentication ignores it, so it
/// stands for a secret that must never show.
async fn second_cluster_with_secret(app: &TestApp) -> String {
    app.second_cluster_url()
        .await
        .replacen("postgres@", "postgres:hunter2-not-shown@", 1)
}

fn refused(outcome: Result<Cluster, Error>) -> (Option<StatusCode>, String) {
    let error = outcome.expect_err("refused");
    (error.status(), error.code().unwrap_or_default().to_owned())
}

fn named<'a>(clusters: &'a [Cluster], name: &str) -> &'a Cluster {
    clusters
        .iter()
        .find(|cluster| cluster.name == name)
        .unwrap_or_else(|| panic!("no cluster {name} in {clusters:?}"))
}

#[tokio::test]
async fn a_cluster_is_added_prepared_listed_drained_made_default_and_removed() {
    let app = TestApp::spawn().await;
    let operator = app.operator_api();
    let clusters = operator.clusters();
    let path = url_file(&app, "eu-2", &second_cluster_with_secret(&app).await);

    let added = clusters
        .add(&NewCluster {
            name: "eu-2".into(),
            description: Some("second EU cluster".into()),
            url_file: Some(path.clone()),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    assert_eq!(added.url, format!("file:{path}"));
    assert!(added.reachable && !added.default && !added.drained);
    assert_eq!(added.tenants, 0);
    assert!(added.database_bytes.is_some_and(|bytes| bytes > 0));

    // Prepared: the data plane's role can log in there, and the outbox is in place.
    let second = TestApp::connect_to(&app.second_cluster_url().await).await;
    let data_plane = app.role_prefix.data_plane_role();
    let prepared = second
        .query_one(
            "SELECT (SELECT rolcanlogin FROM pg_roles WHERE rolname = $1) AS login,
                    to_regclass('control.audit_outbox') IS NOT NULL AS outbox,
                    to_regproc('tenantry_outbox.write') IS NOT NULL AS write",
            &[&data_plane.as_str()],
        )
        .await
        .unwrap();
    for column in ["login", "outbox", "write"] {
        assert_eq!(
            prepared.get::<_, Option<bool>>(column),
            Some(true),
            "{column}"
        );
    }

    // The catalog keeps the reference only; no answer shows the secret.
    let stored: String = app
        .superuser()
        .await
        .query_one(
            "SELECT row_to_json(c)::text FROM control.postgres_clusters c WHERE id = 'eu-2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        stored.contains(&path) && !stored.contains("hunter2"),
        "{stored}"
    );
    let listed = app
        .run_cli(&["control-plane", "cluster", "list"])
        .await
        .unwrap();
    assert!(!listed.contains("hunter2"), "{listed}");
    let all = clusters.list().await.unwrap();
    assert_eq!(all.len(), 2);
    let primary = named(&all, "primary");
    assert!(primary.default && primary.reachable && primary.url == "catalog");
    assert!(named(&all, "eu-2").reachable);

    // Drained, it cannot be the default; the default cannot be drained.
    assert!(clusters.drain("eu-2").await.unwrap().drained);
    assert_eq!(
        refused(clusters.set_default("eu-2").await),
        (Some(StatusCode::CONFLICT), "cluster_drained".into())
    );
    assert_eq!(
        refused(clusters.drain("primary").await),
        (Some(StatusCode::CONFLICT), "cluster_is_default".into())
    );
    assert!(!clusters.undrain("eu-2").await.unwrap().drained);
    // Made default, it cannot be drained or removed; the catalog's cluster then can be drained.
    assert!(clusters.set_default("eu-2").await.unwrap().default);
    assert_eq!(
        refused(clusters.drain("eu-2").await),
        (Some(StatusCode::CONFLICT), "cluster_is_default".into())
    );
    let primary = clusters.get("primary").await.unwrap();
    assert!(!primary.default);
    assert!(clusters.set_default("primary").await.unwrap().default);
    assert!(!clusters.get("eu-2").await.unwrap().default);

    // Neither the default nor the catalog's own cluster can be removed.
    let in_use = clusters.remove("primary").await.unwrap_err();
    assert_eq!(in_use.code(), Some("cluster_in_use"));
    clusters.remove("eu-2").await.unwrap();
    let all = clusters.list().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        refused(clusters.get("eu-2").await),
        (Some(StatusCode::NOT_FOUND), "cluster_not_found".into())
    );
}

#[tokio::test]
async fn bad_names_references_and_unreachable_clusters_are_refused_and_store_nothing() {
    let app = TestApp::spawn().await;
    let operator = app.operator_api();
    let clusters = operator.clusters();
    let good_file = url_file(&app, "good", &app.second_cluster_url().await);
    // Nothing listens on port 1; a URL that is not one at all.
    let nowhere = url_file(&app, "nowhere", "postgres://postgres@127.0.0.1:1/postgres");
    let garbage = url_file(&app, "garbage", "not a url at all");
    let cases = [
        (
            NewCluster {
                name: "Bad_Name".into(),
                url_file: Some(good_file.clone()),
                ..NewCluster::default()
            },
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            NewCluster {
                name: "rebalance".into(),
                url_file: Some(good_file.clone()),
                ..NewCluster::default()
            },
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            NewCluster {
                name: "both".into(),
                url_file: Some(good_file.clone()),
                url_env: Some("PATH".into()),
                ..NewCluster::default()
            },
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            NewCluster {
                name: "neither".into(),
                ..NewCluster::default()
            },
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            NewCluster {
                name: "unset".into(),
                url_env: Some("TENANTRY_TEST_SURELY_UNSET_CLUSTER_URL".into()),
                ..NewCluster::default()
            },
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            NewCluster {
                name: "missing-file".into(),
                url_file: Some("/nonexistent/cluster-url".into()),
                ..NewCluster::default()
            },
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            NewCluster {
                name: "garbage".into(),
                url_file: Some(garbage),
                ..NewCluster::default()
            },
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            NewCluster {
                name: "nowhere".into(),
                url_file: Some(nowhere),
                ..NewCluster::default()
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "cluster_unreachable",
        ),
        (
            NewCluster {
                name: "primary".into(),
                url_file: Some(good_file),
                ..NewCluster::default()
            },
            StatusCode::CONFLICT,
            "cluster_exists",
        ),
    ];
    for (input, status, code) in cases {
        let name = input.name.clone();
        assert_eq!(
            refused(clusters.add(&input).await),
            (Some(status), code.to_owned()),
            "{name}"
        );
    }
    assert_eq!(clusters.list().await.unwrap().len(), 1, "nothing stored");
    for outcome in [
        clusters.get("nope").await,
        clusters.drain("nope").await,
        clusters.undrain("nope").await,
        clusters.set_default("nope").await,
    ] {
        assert_eq!(
            refused(outcome),
            (Some(StatusCode::NOT_FOUND), "cluster_not_found".into())
        );
    }
    let removed = clusters.remove("nope").await.unwrap_err();
    assert_eq!(removed.code(), Some("cluster_not_found"));
}

#[tokio::test]
async fn migrate_prepares_every_registered_cluster_again_and_changes_nothing_else() {
    let app = TestApp::spawn().await;
    let path = url_file(&app, "eu-3", &app.second_cluster_url().await);
    let added = app
        .run_cli(&[
            "control-plane",
            "cluster",
            "add",
            "eu-3",
            "--url-file",
            &path,
        ])
        .await
        .unwrap();
    assert!(added.contains("cluster eu-3 added and prepared"), "{added}");
    // Someone dropped the outbox on the second cluster; `migrate` puts it back.
    let second = TestApp::connect_to(&app.second_cluster_url().await).await;
    second
        .batch_execute("DROP TABLE control.audit_outbox")
        .await
        .unwrap();
    for _ in 0..2 {
        let migrated = app.run_cli(&["control-plane", "migrate"]).await.unwrap();
        assert!(migrated.contains("cluster eu-3 prepared"), "{migrated}");
    }
    let outbox: Option<String> = second
        .query_one("SELECT to_regclass('control.audit_outbox')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(outbox.as_deref(), Some("control.audit_outbox"));
    let listed = app
        .run_cli(&["control-plane", "cluster", "list", "--json"])
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
}

/// Registers this run's database on the second cluster as `name`.
async fn register_second(app: &TestApp, name: &str) {
    let path = url_file(app, name, &app.second_cluster_url().await);
    app.operator_api()
        .clusters()
        .add(&NewCluster {
            name: name.into(),
            url_file: Some(path),
            ..NewCluster::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tenant_placed_on_another_cluster_is_provisioned_exported_and_deleted_there() {
    let app = TestApp::spawn().await;
    register_second(&app, "eu-2").await;
    let operator = app.operator_api();
    let created = operator
        .tenants()
        .create(&NewTenant {
            slug: "faraway".into(),
            admin_email: Some("ada@faraway.example".into()),
            cluster: Some("eu-2".into()),
            ..NewTenant::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (created.cluster.as_str(), created.status.as_str()),
        ("eu-2", "active")
    );
    assert!(created.activation_token.is_some());

    // Its schema, seed and first admin's mail are on the second cluster, not the catalog's.
    let second = TestApp::connect_to(&app.second_cluster_url().await).await;
    let schema = created.schema.clone();
    assert!(has_schema(&second, &schema).await);
    assert!(!has_schema(&app.superuser().await, &schema).await);
    let seeded = second
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {schema}.roles WHERE built_in) AS roles,
                        (SELECT count(*) FROM {schema}.users
                         WHERE email = 'ada@faraway.example' AND status = 'invited') AS admins,
                        (SELECT count(*) FROM {schema}.mail_outbox) AS mails,
                        (SELECT count(*) FROM control.mail_pending WHERE tenant_id = $1)
                            AS marked"
            ),
            &[&created.id],
        )
        .await
        .unwrap();
    assert!(seeded.get::<_, i64>("roles") >= 4);
    for column in ["admins", "mails", "marked"] {
        assert_eq!(seeded.get::<_, i64>(column), 1, "{column}");
    }
    let version: i32 = app
        .superuser()
        .await
        .query_one(
            "SELECT template_version FROM control.tenants WHERE slug = 'faraway'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, app.control.template.latest_version());

    // The registry counts it, and will not forget the cluster under it.
    assert_eq!(operator.clusters().get("eu-2").await.unwrap().tenants, 1);
    let in_use = operator.clusters().remove("eu-2").await.unwrap_err();
    assert_eq!(in_use.code(), Some("cluster_in_use"));

    // The data plane serves it there.
    let reply = app
        .tenant("faraway")
        .get("/v1/tenant")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);

    // Suspended, it is answered as a suspended tenant on any cluster.
    let suspend = |status: &str| TenantPatch {
        status: Some(status.into()),
        ..TenantPatch::default()
    };
    operator
        .tenants()
        .update("faraway", &suspend("suspended"))
        .await
        .unwrap();
    let suspended = TestApp::eventually(Duration::from_secs(5), || async {
        let reply = app
            .tenant("faraway")
            .get("/v1/tenant")
            .send()
            .await
            .unwrap();
        reply.error_code() == (StatusCode::FORBIDDEN, "tenant_suspended")
    })
    .await;
    assert!(
        suspended.is_some(),
        "a suspended tenant is 403 tenant_suspended"
    );
    operator
        .tenants()
        .update("faraway", &suspend("active"))
        .await
        .unwrap();

    // The operator's SSO management writes the provider into its schema there.
    let provider = json!({
        "name": "hub",
        "provider": {
            "kind": "oauth2",
            "authorization_url": "https://idp.faraway.example/auth",
            "token_url": "https://idp.faraway.example/token",
            "userinfo_url": "https://idp.faraway.example/me",
            "client_id": "faraway-client",
            "scopes": ["openid", "email"],
            "claims": {"subject": "sub", "email": "email", "name": "name"},
        },
        "client_secret": "not-a-real-secret",
    });
    let added = operator
        .call(Method::POST, "/v1/tenants/faraway/sso")
        .json(&provider)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let listed: Value = operator
        .client()
        .get("/v1/tenants/faraway/sso")
        .ok()
        .await
        .unwrap();
    assert_eq!(listed["providers"][0]["name"], "hub", "{listed}");
    let stored: i64 = second
        .query_one(&format!("SELECT count(*) FROM {schema}.sso_providers"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);

    // The export reads its tables there; the deletion drops its schema and role there.
    let export = operator.tenants().export("faraway").await.unwrap();
    let roles = export["tables"]["roles"].as_array().map(Vec::len);
    assert!(roles.is_some_and(|count| count >= 4), "{export}");
    operator.tenants().delete("faraway").await.unwrap();
    assert!(!has_schema(&second, &schema).await);
    let role_left: bool = second
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&created.role],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!role_left, "the tenant's role is dropped on its cluster");
}

#[tokio::test]
async fn placement_on_an_unknown_or_drained_cluster_is_refused_and_creates_nothing() {
    let app = TestApp::spawn().await;
    register_second(&app, "eu-2").await;
    let operator = app.operator_api();
    let tenants = operator.tenants();
    let create = |cluster: &str| NewTenant {
        slug: "nowhere".into(),
        cluster: Some(cluster.into()),
        ..NewTenant::default()
    };
    let unknown = tenants.create(&create("nope")).await.unwrap_err();
    assert_eq!(
        (unknown.status(), unknown.code()),
        (Some(StatusCode::BAD_REQUEST), Some("unknown_cluster"))
    );
    operator.clusters().drain("eu-2").await.unwrap();
    let drained = tenants.create(&create("eu-2")).await.unwrap_err();
    assert_eq!(
        (drained.status(), drained.code()),
        (Some(StatusCode::CONFLICT), Some("cluster_drained"))
    );
    assert!(tenants.list().await.unwrap().is_empty(), "nothing created");
    // Without a cluster, the policy passes the drained one over.
    let placed = tenants
        .create(&NewTenant {
            slug: "nearby".into(),
            ..NewTenant::default()
        })
        .await
        .unwrap();
    assert_eq!(placed.cluster, "primary");
}

#[tokio::test]
async fn a_provisioning_on_another_cluster_interrupted_after_any_step_finishes_on_retry() {
    let app = TestApp::spawn().await;
    register_second(&app, "eu-2").await;
    let second = TestApp::connect_to(&app.second_cluster_url().await).await;
    for step in Step::ALL.into_iter().filter(|step| *step != Step::Activate) {
        let slug = format!("cut-{}", step.as_str().replace('_', "-"));
        let interrupted = TestApp::create_placed(
            &app.control,
            &slug,
            Some("eu-2"),
            ProvisionOptions {
                interrupt_after: Some(step),
            },
        )
        .await;
        assert!(
            matches!(interrupted, Err(ControlError::Interrupted(at)) if at == step),
            "{step}: {interrupted:?}"
        );
        let finished = app.operator_api().tenants().provision(&slug).await;
        assert!(finished.is_ok(), "{step}: {finished:?}");
        let tenant = app.operator_api().tenants().get(&slug).await.unwrap();
        assert_eq!(tenant.status, "active", "{step}");
        let roles: i64 = second
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.roles WHERE built_in",
                    tenant.schema
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(roles >= 4, "{step}: seeded once on retry");
    }
}

#[tokio::test]
async fn a_template_roll_out_reaches_tenants_on_every_cluster() {
    let app = TestApp::spawn().await;
    register_second(&app, "eu-2").await;
    TestApp::create_placed(
        &app.control,
        "near",
        Some("primary"),
        ProvisionOptions::default(),
    )
    .await
    .unwrap();
    TestApp::create_placed(
        &app.control,
        "far",
        Some("eu-2"),
        ProvisionOptions::default(),
    )
    .await
    .unwrap();
    let report = roll_out(&app.control.with_template(template_with_notes()), 2).await;
    assert_eq!(
        (report.behind, report.migrated.len(), report.failed.len()),
        (2, 2, 0)
    );
    for cluster in ["primary", "eu-2"] {
        let counts = &report.clusters[cluster];
        assert_eq!(
            (counts.behind, counts.migrated, counts.failed),
            (1, 1, 0),
            "{cluster}"
        );
    }
    let far_outcome = report.migrated.iter().find(|outcome| outcome.slug == "far");
    assert_eq!(
        far_outcome.map(|outcome| outcome.cluster.as_str()),
        Some("eu-2")
    );
    // Each tenant's table is on its own cluster, owned by its role.
    let owner = |client: tokio_postgres::Client, slug: &'static str| async move {
        client
            .query_opt(
                "SELECT tableowner::text FROM pg_tables
                 WHERE schemaname = $1 AND tablename = 'notes'",
                &[&format!("tenant_{slug}")],
            )
            .await
            .unwrap()
            .map(|row| row.get::<_, String>(0))
    };
    let second = || async { TestApp::connect_to(&app.second_cluster_url().await).await };
    let far = owner(second().await, "far").await;
    assert!(far.is_some_and(|role| role.ends_with("_t_far")));
    assert_eq!(owner(app.superuser().await, "far").await, None);
    let near = owner(app.superuser().await, "near").await;
    assert!(near.is_some_and(|role| role.ends_with("_t_near")));
    assert_eq!(owner(second().await, "near").await, None);
}

/// Where the placement policy puts each of `slugs`, in order.
async fn placed(app: &TestApp, slugs: &[&str]) -> Vec<String> {
    let mut clusters = Vec::new();
    for slug in slugs {
        let tenant = app
            .operator_api()
            .tenants()
            .create(&NewTenant {
                slug: (*slug).into(),
                ..NewTenant::default()
            })
            .await
            .unwrap();
        clusters.push(tenant.cluster);
    }
    clusters
}

fn count(clusters: &[String], name: &str) -> usize {
    clusters.iter().filter(|cluster| *cluster == name).count()
}

#[tokio::test]
async fn the_placement_policy_evens_out_tenants_and_passes_over_drained_and_unreachable_clusters() {
    let app = TestApp::spawn().await;
    register_second(&app, "eu-2").await;
    let operator = app.operator_api();
    let clusters = operator.clusters();

    // Fewest tenants first: four new tenants end up two and two, alternating.
    let first = placed(&app, &["p-1", "p-2", "p-3", "p-4"]).await;
    assert_eq!(
        (count(&first, "primary"), count(&first, "eu-2")),
        (2, 2),
        "{first:?}"
    );
    assert!(first.windows(2).all(|pair| pair[0] != pair[1]), "{first:?}");

    // A drained cluster takes none, however empty.
    clusters.drain("eu-2").await.unwrap();
    assert_eq!(placed(&app, &["p-5", "p-6"]).await, ["primary", "primary"]);
    clusters.undrain("eu-2").await.unwrap();

    // An empty cluster that does not answer is passed over; once back, it is chosen.
    let proxy = app.register_second_cluster_behind_a_proxy("flaky").await;
    proxy.cut();
    assert_eq!(placed(&app, &["p-7"]).await, ["eu-2"]);
    proxy.restore();
    assert_eq!(placed(&app, &["p-8"]).await, ["flaky"]);
    let listed = clusters.list().await.unwrap();
    let tenants: Vec<_> = ["primary", "eu-2", "flaky"]
        .iter()
        .map(|name| named(&listed, name).tenants)
        .collect();
    assert_eq!(tenants, [4, 3, 1]);
}

#[tokio::test]
async fn rebalance_plans_and_runs_the_moves_that_even_out_the_clusters_and_empty_drained_ones() {
    let app = TestApp::spawn().await;
    register_second(&app, "eu-2").await;
    for slug in ["r-one", "r-two", "r-three"] {
        TestApp::create_placed(
            &app.control,
            slug,
            Some("primary"),
            ProvisionOptions::default(),
        )
        .await
        .unwrap();
    }
    let operator = app.operator_api();
    let clusters = operator.clusters();
    let placed = |plan: &Value| {
        (
            plan["before"].clone(),
            plan["after"].clone(),
            plan["moves"].as_array().map_or(0, Vec::len),
        )
    };

    // A dry run plans one move, the smallest tenant, and moves nothing.
    let plan = clusters.rebalance(false).await.unwrap();
    assert_eq!(
        placed(&plan),
        (
            json!({"primary": 3, "eu-2": 0}),
            json!({"primary": 2, "eu-2": 1}),
            1
        ),
        "{plan}"
    );
    assert_eq!(plan["moves"][0]["to"], "eu-2");
    assert!(plan["moves"][0]["bytes"].as_i64().unwrap() > 0, "{plan}");
    let printed = app
        .run_cli(&["control-plane", "cluster", "rebalance", "--dry-run"])
        .await
        .unwrap();
    assert!(
        printed.contains("would move") && printed.contains("-> eu-2"),
        "{printed}"
    );
    assert_eq!(clusters.get("eu-2").await.unwrap().tenants, 0);

    // Applied, the move is made.
    let applied = clusters.rebalance(true).await.unwrap();
    assert_eq!(applied["applied"][0]["step"], "switched", "{applied}");
    let moved = applied["moves"][0]["tenant"].as_str().unwrap().to_owned();
    assert_eq!(
        operator.tenants().get(&moved).await.unwrap().cluster,
        "eu-2"
    );
    assert_eq!(clusters.get("eu-2").await.unwrap().tenants, 1);
    assert_eq!(clusters.get("primary").await.unwrap().tenants, 2);
    assert_eq!(clusters.rebalance(false).await.unwrap()["moves"], json!([]));

    // A drained cluster's tenants are planned away.
    clusters.drain("eu-2").await.unwrap();
    let plan = clusters.rebalance(false).await.unwrap();
    assert_eq!(
        placed(&plan),
        (
            json!({"primary": 2, "eu-2": 1}),
            json!({"primary": 3, "eu-2": 0}),
            1
        ),
        "{plan}"
    );
    // Moving it back waits for the first move's source to be dropped: that copy is still
    // on the catalog's cluster for its grace period.
    let early = clusters.rebalance(true).await.unwrap_err();
    assert_eq!(early.code(), Some("move_in_progress"));
}

#[tokio::test]
async fn a_plan_pinned_to_a_cluster_places_its_new_tenants_there() {
    let app = TestApp::spawn().await;
    register_second(&app, "eu-2").await;
    let operator = app.operator_api();
    let clusters = operator.clusters();
    let pinned = clusters.pin("eu-2", "enterprise").await.unwrap();
    assert_eq!(pinned.plans, ["enterprise"]);
    let create = |slug: &str, plan: &str, cluster: Option<&str>| NewTenant {
        slug: slug.into(),
        plan: Some(plan.into()),
        cluster: cluster.map(Into::into),
        ..NewTenant::default()
    };
    // Pinned: there, even where the policy would choose otherwise; an explicit cluster wins.
    for slug in ["big-one", "big-two", "big-three"] {
        let tenant = operator
            .tenants()
            .create(&create(slug, "enterprise", None))
            .await
            .unwrap();
        assert_eq!(tenant.cluster, "eu-2", "{slug}");
    }
    let chosen = operator
        .tenants()
        .create(&create("big-here", "enterprise", Some("primary")))
        .await
        .unwrap();
    assert_eq!(chosen.cluster, "primary");
    // Rebalancing leaves a pinned plan's tenants where they are.
    assert_eq!(clusters.rebalance(false).await.unwrap()["moves"], json!([]));

    // Refusals, each changing nothing.
    let refused = |error: Error| (error.status(), error.code().unwrap_or_default().to_owned());
    assert_eq!(
        refused(clusters.pin("eu-2", "platinum").await.unwrap_err()),
        (Some(StatusCode::BAD_REQUEST), "unknown_plan".into())
    );
    assert_eq!(
        refused(clusters.pin("nowhere", "free").await.unwrap_err()),
        (Some(StatusCode::NOT_FOUND), "cluster_not_found".into())
    );
    assert_eq!(
        refused(clusters.unpin("primary", "enterprise").await.unwrap_err()),
        (Some(StatusCode::NOT_FOUND), "plan_not_pinned".into())
    );
    operator.tenants().delete("big-one").await.unwrap();
    operator.tenants().delete("big-two").await.unwrap();
    operator.tenants().delete("big-three").await.unwrap();
    assert_eq!(
        refused(clusters.remove("eu-2").await.unwrap_err()),
        (Some(StatusCode::CONFLICT), "cluster_in_use".into())
    );

    // Unpinned, the policy places the plan's tenants again.
    clusters.unpin("eu-2", "enterprise").await.unwrap();
    assert!(clusters.get("eu-2").await.unwrap().plans.is_empty());
    clusters.drain("eu-2").await.unwrap();
    let placed = operator
        .tenants()
        .create(&create("big-later", "enterprise", None))
        .await
        .unwrap();
    assert_eq!(placed.cluster, "primary");
    // A drained cluster takes no pin.
    assert_eq!(
        refused(clusters.pin("eu-2", "free").await.unwrap_err()),
        (Some(StatusCode::CONFLICT), "cluster_drained".into())
    );
}

#[tokio::test]
async fn the_operator_console_places_a_new_tenant_on_the_cluster_chosen() {
    let app = TestApp::spawn().await;
    register_second(&app, "eu-2").await;
    let mut operator = tenantry_tests::console::Browser::operator(&app).await;
    let form = operator.get("/console/tenants/new").await;
    assert!(
        form.html.contains("<option value=\"eu-2\">eu-2</option>"),
        "{}",
        form.html
    );

    let unknown = operator
        .submit(
            "/console/tenants/new",
            "/console/tenants",
            &[("slug", "placed"), ("cluster", "nowhere")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.html);
    assert_eq!(app.tenant_count("placed").await, 0);
    let created = operator
        .submit(
            "/console/tenants/new",
            "/console/tenants",
            &[("slug", "placed"), ("cluster", "eu-2")],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let tenant = app.operator_api().tenants().get("placed").await.unwrap();
    assert_eq!(tenant.cluster, "eu-2");
}
