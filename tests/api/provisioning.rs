use control_plane::error::ControlError;
use control_plane::provisioning::{ProvisionOptions, Step};
use control_plane::tenants::service;
use refinery::Migration;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::envelope::{EnvelopeError, Kek, WrappedKey};
use shared::template::Template;
use shared::tenant::TenantSlug;
use tenantry_tests::client::NewTenant;
use tenantry_tests::TestApp;

async fn count(
    app: &TestApp,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> i64 {
    app.superuser()
        .await
        .query_one(sql, params)
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn create_tenant_provisions_schema_role_data_key_and_built_in_roles() {
    let app = TestApp::spawn().await;
    let created = app
        .operator_api()
        .tenants()
        .create(&NewTenant {
            slug: "acme".to_owned(),
            name: Some("Acme Corp".to_owned()),
            ..NewTenant::default()
        })
        .await
        .unwrap();
    assert_eq!(created.status, "active");
    assert_eq!(created.schema, "tenant_acme");
    let role = created.role;
    assert_eq!(role, format!("{}_t_acme", app.role_prefix.as_str()));

    let db = app.superuser().await;
    let owner: String = db
        .query_one(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'tenant_acme'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, role);
    let history = count(
        &app,
        "SELECT count(*) FROM tenant_acme.refinery_schema_history",
        &[],
    )
    .await;
    assert_eq!(
        history,
        Template::default_template().migrations().len() as i64
    );
    let built_in = count(
        &app,
        "SELECT count(*) FROM tenant_acme.roles WHERE built_in",
        &[],
    )
    .await;
    assert_eq!(built_in, 6);

    // The data key is stored only wrapped, and unwraps with the KEK for this tenant.
    let id = created.id;
    let row = db
        .query_one(
            "SELECT kek_id, nonce, wrapped_key FROM control.tenant_data_keys WHERE tenant_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let wrapped = WrappedKey {
        kek_id: row.get(0),
        nonce: row.get(1),
        ciphertext: row.get(2),
    };
    let kek = Kek::from_file(&app.kek_file()).unwrap();
    assert!(kek.unwrap_key(&wrapped, id, 1).is_ok());
    // Bound to its tenant and version: under another tenant's id (or another version) the
    // same KEK refuses it as not authentic.
    for (tenant, version) in [(uuid::Uuid::new_v4(), 1), (id, 2)] {
        let refused = kek.unwrap_key(&wrapped, tenant, version);
        assert!(
            matches!(refused, Err(EnvelopeError::Unwrap)),
            "{:?}",
            refused.err()
        );
    }

    let served: Value = app.tenant("acme").get("/v1/tenant").ok().await.unwrap();
    assert_eq!(served["display_name"], "Acme Corp");
}

#[tokio::test]
async fn provisioning_interrupted_after_any_step_is_finished_by_rerunning_it() {
    let app = TestApp::spawn().await;
    for (index, step) in Step::ALL
        .into_iter()
        .filter(|step| *step != Step::Activate)
        .enumerate()
    {
        let slug = format!("step-{index}");
        app.create_tenant_interrupted_after(&slug, step).await;
        assert_eq!(app.tenant_status(&slug).await, "provisioning", "{step}");
        let half_made = app.tenant(&slug).get("/v1/tenant").send().await.unwrap();
        assert_eq!(
            half_made.status(),
            StatusCode::NOT_FOUND,
            "half-made tenant served after {step}"
        );

        let report = service::retry_provisioning(&app.control, &TenantSlug::parse(&slug).unwrap())
            .await
            .unwrap();
        assert_eq!(report.outcome, "provisioned", "{step}");
        let tenant = &report.details.tenant;
        assert_eq!(tenant.status.as_str(), "active", "{step}");
        let schema = tenant.schema.as_str();
        assert_eq!(
            count(&app, &format!("SELECT count(*) FROM {schema}.roles"), &[]).await,
            6,
            "{step}"
        );
        assert_eq!(
            count(
                &app,
                "SELECT count(*) FROM control.tenant_data_keys WHERE tenant_id = $1",
                &[&tenant.id]
            )
            .await,
            1,
            "{step}"
        );
        let served = app.tenant(&slug).get("/v1/tenant").send().await.unwrap();
        assert_eq!(served.status(), StatusCode::OK, "{step}");
    }
}

#[tokio::test]
async fn steps_that_ran_but_were_not_recorded_are_safe_to_run_again() {
    let app = TestApp::spawn().await;
    app.create_tenant_interrupted_after("rewind", Step::SeedRoles)
        .await;
    // As if the process died after every step ran but before any was recorded.
    app.superuser()
        .await
        .execute(
            "UPDATE control.provisioning_jobs SET last_step = 'catalog_row'",
            &[],
        )
        .await
        .unwrap();
    let report = service::retry_provisioning(&app.control, &TenantSlug::parse("rewind").unwrap())
        .await
        .unwrap();
    assert_eq!(report.outcome, "provisioned");
    assert_eq!(report.details.tenant.status.as_str(), "active");
    assert_eq!(
        count(&app, "SELECT count(*) FROM tenant_rewind.roles", &[]).await,
        6
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM control.tenant_data_keys", &[]).await,
        1
    );
}

#[tokio::test]
async fn concurrent_creates_of_one_slug_give_one_tenant_and_one_409() {
    let app = TestApp::spawn().await;
    let operator = app.operator_api();
    let create = || {
        operator
            .call(Method::POST, "/v1/tenants")
            .json(&json!({"slug": "race"}))
            .send()
    };
    let (first, second) = tokio::join!(create(), create());
    let mut replies = [first.unwrap(), second.unwrap()];
    replies.sort_by_key(|reply| reply.status());
    assert_eq!(replies[0].status(), StatusCode::CREATED);
    assert_eq!(
        replies[1].error_code(),
        (StatusCode::CONFLICT, "slug_taken")
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM control.tenants WHERE slug = 'race'",
            &[]
        )
        .await,
        1
    );
    assert_eq!(app.tenant_status("race").await, "active");
}

#[tokio::test]
async fn a_failed_step_leaves_the_tenant_failed_and_unserved_until_retried() {
    let app = TestApp::spawn().await;
    let broken = Template::default_template().with_extra(vec![Migration::unapplied(
        "V900__broken",
        "CREATE TABLE broken (id int REFERENCES nowhere)",
    )
    .unwrap()]);
    let outcome = app
        .create_tenant_on(
            &app.control.with_template(broken),
            "fragile",
            ProvisionOptions::default(),
        )
        .await;
    assert!(
        matches!(
            outcome,
            Err(ControlError::ProvisioningFailed {
                step: Step::TemplateMigrations,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(app.tenant_status("fragile").await, "failed");
    let error: Option<String> = app
        .superuser()
        .await
        .query_one("SELECT last_error FROM control.provisioning_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert!(error.unwrap().contains("nowhere"));
    let fragile = app.tenant("fragile");
    let unserved = fragile.get("/v1/tenant").send().await.unwrap();
    assert_eq!(unserved.status(), StatusCode::NOT_FOUND);

    let retried = app
        .operator_api()
        .call(Method::POST, "/v1/tenants/fragile/provision")
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), StatusCode::OK);
    let body = retried.value();
    assert_eq!(body["outcome"], "provisioned", "{body}");
    assert_eq!(body["status"], "active", "{body}");
    assert_eq!(app.tenant_status("fragile").await, "active");
    let served = fragile.get("/v1/tenant").send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_create_requests_get_400_and_create_nothing() {
    let app = TestApp::spawn().await;
    let operator = app.operator_api();
    let create = |body: Value| {
        operator
            .call(Method::POST, "/v1/tenants")
            .json(&body)
            .send()
    };
    let forty_one = "x".repeat(41);
    for slug in [
        "ab",
        "Acme",
        "admin",
        "a\"; DROP SCHEMA control; --",
        forty_one.as_str(),
        "acme-",
        "9lives",
    ] {
        let refused = create(json!({"slug": slug})).await.unwrap();
        assert_eq!(
            refused.error_code(),
            (StatusCode::BAD_REQUEST, "invalid_slug"),
            "{slug}"
        );
    }
    let unknown_plan = create(json!({"slug": "acme", "plan": "gold"}))
        .await
        .unwrap();
    assert_eq!(unknown_plan.status(), StatusCode::BAD_REQUEST);
    let bad_name = create(json!({"slug": "acme", "name": "a\u{0007}b"}))
        .await
        .unwrap();
    assert_eq!(bad_name.status(), StatusCode::BAD_REQUEST);
    let not_json = operator
        .call(Method::POST, "/v1/tenants")
        .body("{\"slug\": ", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        not_json.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    // The client always names a body's type: this one request goes out without any.
    let wrong_type = app
        .http
        .post(format!("{}/v1/tenants", app.control_url))
        .bearer_auth(&app.operator_token)
        .body("slug=acme")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let unknown_field = create(json!({"slug": "acme", "owner": "x"})).await.unwrap();
    assert_eq!(unknown_field.status(), StatusCode::BAD_REQUEST);

    assert_eq!(
        count(&app, "SELECT count(*) FROM control.tenants", &[]).await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'",
            &[]
        )
        .await,
        0
    );
    let prefix = format!("{}\\_t\\_%", app.role_prefix.as_str());
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1",
            &[&prefix]
        )
        .await,
        0
    );
}
