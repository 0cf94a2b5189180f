use clap::Parser;
use control_plane::cli::Cli;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tenantry_tests::TestApp;

#[tokio::test]
async fn the_cli_creates_shows_lists_and_sets_quotas_with_json_output() {
    let app = TestApp::spawn().await;
    let created: Value = serde_json::from_str(
        &app.run_cli(&[
            "control-plane",
            "tenant",
            "create",
            "globex",
            "--name",
            "Globex",
            "--plan",
            "standard",
            "--json",
        ])
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(created["status"], "active");
    assert_eq!(created["plan"], "standard");

    let shown: Value = serde_json::from_str(
        &app.run_cli(&["control-plane", "tenant", "show", "globex", "--json"])
            .await
            .unwrap(),
    )
    .unwrap();
    for field in ["id", "slug", "status", "schema", "role"] {
        assert_eq!(shown[field], created[field], "{field}");
        assert!(!shown[field].is_null(), "{field}");
    }
    assert_eq!(shown["schema"], "tenant_globex");

    let listed: Value = serde_json::from_str(
        &app.run_cli(&["control-plane", "tenant", "list", "--json"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["slug"], "globex");

    let quotas: Value = serde_json::from_str(
        &app.run_cli(&[
            "control-plane",
            "tenant",
            "quota",
            "globex",
            "--max-users",
            "7",
            "--events-per-day",
            "1000",
            "--json",
        ])
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(quotas["effective"]["max_users"], 7);
    assert_eq!(quotas["effective"]["events_per_day"], 1000);
    assert_eq!(
        quotas["effective"]["max_api_keys"], 20,
        "untouched limits keep the plan default"
    );

    let suspended = app
        .run_cli(&["control-plane", "tenant", "suspend", "globex"])
        .await
        .unwrap();
    assert!(suspended.contains("suspended"));
    let human = app
        .run_cli(&["control-plane", "tenant", "show", "globex"])
        .await
        .unwrap();
    assert!(human.contains("status:    suspended"), "{human}");
}

#[tokio::test]
async fn an_operator_token_from_the_cli_opens_the_rest_api() {
    let app = TestApp::spawn().await;
    let token = app
        .run_cli(&[
            "control-plane",
            "operator",
            "token",
            "create",
            "ops",
            "--raw",
        ])
        .await
        .unwrap();
    let token = token.trim();
    assert!(token.starts_with("tnop_"));
    let with_new_token =
        tenantry_tests::Operator::with_http(app.http.clone(), &app.control_url, token);
    let reply = with_new_token
        .call(Method::GET, "/v1/tenants")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let duplicate = app
        .run_cli(&["control-plane", "operator", "token", "create", "ops"])
        .await;
    let error = format!("{:#}", duplicate.unwrap_err());
    assert!(
        error.contains("an operator token named 'ops' already exists"),
        "{error}"
    );
}

#[tokio::test]
async fn the_cli_refuses_bad_slugs_and_missing_tenants() {
    let app = TestApp::spawn().await;
    let refusal = |args: &'static [&'static str]| {
        let app = &app;
        async move { format!("{:#}", app.run_cli(args).await.unwrap_err()) }
    };
    let bad_slug = refusal(&["control-plane", "tenant", "create", "Bad_Slug"]).await;
    assert!(
        bad_slug.contains("'Bad_Slug' is not a valid tenant slug"),
        "{bad_slug}"
    );
    for args in [
        &["control-plane", "tenant", "show", "nobody"],
        &["control-plane", "tenant", "resume", "nobody"],
    ] {
        let missing = refusal(args).await;
        assert!(
            missing.contains("no tenant with slug 'nobody'"),
            "{args:?}: {missing}"
        );
    }
    let not_a_number = Cli::try_parse_from([
        "control-plane",
        "tenant",
        "quota",
        "acme",
        "--max-users",
        "many",
    ])
    .unwrap_err();
    assert_eq!(not_a_number.kind(), clap::error::ErrorKind::ValueValidation);
    assert_eq!(app.tenant_count("bad_slug").await, 0);
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["control-plane", "--help"],
        vec!["control-plane", "tenant", "create", "--help"],
        vec!["control-plane", "tenant", "delete", "--help"],
        vec!["control-plane", "tenant", "quota", "--help"],
        vec!["control-plane", "templates", "migrate", "--help"],
        vec!["control-plane", "operator", "token", "create", "--help"],
    ] {
        let error = Cli::try_parse_from(&args).unwrap_err();
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::DisplayHelp,
            "{args:?}"
        );
        assert!(error.to_string().contains("Usage"), "{args:?}");
    }
}

#[tokio::test]
async fn a_new_activation_token_from_the_cli_activates_an_invited_admin_and_only_them() {
    let app = TestApp::spawn().await;
    let email = tenantry_tests::unique_address("lost-mail");
    let (_tenant, first_token) = app.create_tenant_with_admin("acme", &email).await;
    let issue = |address: String| {
        let app = &app;
        async move {
            app.run_cli(&[
                "control-plane",
                "tenant",
                "activation-token",
                "acme",
                "--email",
                &address,
                "--json",
            ])
            .await
        }
    };
    let issued: Value = serde_json::from_str(&issue(email.clone()).await.unwrap()).unwrap();
    let token = issued["activation_token"].as_str().unwrap().to_owned();
    assert_ne!(token, first_token);
    // Mailed as well: the address now has two activation mails, the new token in one.
    let mailed = TestApp::eventually(std::time::Duration::from_secs(10), || async {
        app.mails_to(&email)
            .iter()
            .any(|mail| mail.body.contains(&token))
    })
    .await;
    assert!(mailed.is_some(), "no mail carries the new token");

    let acme = app.tenant("acme");
    let activate = |token: String| {
        acme.post("/v1/auth/activate")
            .json(&serde_json::json!({"token": token, "password": tenantry_tests::PASSWORD}))
            .send()
    };
    assert_eq!(
        activate(token.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    // Spent, and the admin is active now: no further token is issued for them, nor for an
    // address that is not an invited user.
    assert_eq!(
        activate(token).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    for address in [email, "nobody@acme.example".to_owned()] {
        let error = format!("{:#}", issue(address.clone()).await.unwrap_err());
        assert!(
            error.contains(&format!("{address} is not an invited user of this tenant")),
            "{error}"
        );
    }
}

/// `tenant create` and `POST /v1/tenants` are one flow: the same answer, the token only when a
/// first admin is named, and the same refusal of a bad admin address, which creates nothing.
#[tokio::test]
async fn the_cli_and_the_operator_api_create_a_tenant_with_the_same_answer() {
    let app = TestApp::spawn().await;
    let create_by_cli = |slug: &'static str, admin: Option<String>| {
        let app = &app;
        async move {
            let mut args = vec!["control-plane", "tenant", "create", slug, "--json"];
            let admin = admin.unwrap_or_default();
            if !admin.is_empty() {
                args.extend(["--admin-email", admin.as_str()]);
            }
            app.run_cli(&args).await
        }
    };
    let operator = app.operator_api();
    let create_by_api = |body: Value| {
        operator
            .call(Method::POST, "/v1/tenants")
            .json(&body)
            .send()
    };
    let keys = |answer: &Value| -> Vec<String> {
        let mut keys: Vec<String> = answer.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };

    let by_cli: Value = serde_json::from_str(
        &create_by_cli(
            "initrode",
            Some(tenantry_tests::unique_address("cli-admin")),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let reply = create_by_api(
        serde_json::json!({"slug": "umbrella", "admin_email": tenantry_tests::unique_address("api-admin")}),
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED);
    let by_api = reply.value();
    assert_eq!(keys(&by_cli), keys(&by_api));
    for answer in [&by_cli, &by_api] {
        assert_eq!(answer["status"], "active", "{answer}");
        assert!(answer["activation_token"].is_string(), "{answer}");
        assert!(answer["host"].is_string(), "{answer}");
    }

    let by_cli: Value =
        serde_json::from_str(&create_by_cli("cyberdyne", None).await.unwrap()).unwrap();
    let reply = create_by_api(serde_json::json!({"slug": "tyrell"}))
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED);
    let by_api = reply.value();
    assert_eq!(keys(&by_cli), keys(&by_api));
    for answer in [&by_cli, &by_api] {
        assert!(answer.get("activation_token").is_none(), "{answer}");
    }

    let refused = format!(
        "{:#}",
        create_by_cli("soylent", Some("not-an-address".to_owned()))
            .await
            .unwrap_err()
    );
    assert!(
        refused.contains("--admin-email is not a valid email address"),
        "{refused}"
    );
    let reply = create_by_api(serde_json::json!({"slug": "soylent", "admin_email": "nope"}))
        .await
        .unwrap();
    assert_eq!(
        reply.error_code(),
        (StatusCode::BAD_REQUEST, "invalid_input")
    );
    assert_eq!(app.tenant_count("soylent").await, 0);
}
