//! Contract fuzzing with an independent tool: schemathesis (PyPI, installed by
//! `deploy/local/test.sh`, found through `TENANTRY_TEST_SCHEMATHESIS`) reads each plane's
//! OpenAPI document from the running server and sends it generated requests, as an
//! anonymous caller and as an authorised one on a fresh tenant. Its checks: no 5xx, and
//! every answer conforms to the document (status codes, content types, bodies, headers).
//!
//! Seeded and bounded (`EXAMPLES` per operation), so a run is reproducible and its size known
//! (docs/routes.md records it).

use std::time::Instant;

use data_plane::rate_limit::RateLimitSettings;
use tenantry_tests::{TestApp, TestOptions};

/// Generated examples per operation and phase.
const EXAMPLES: u32 = 10;
const SEED: u32 = 20261206;

/// Runs schemathesis against the document at `base_url`/v1/openapi.json with `headers`;
/// its output when it found a failure.
async fn schemathesis(
    base_url: &str,
    headers: &[String],
    extra: &[&str],
) -> Result<String, String> {
    let program = std::env::var("TENANTRY_TEST_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "TENANTRY_TEST_SCHEMATHESIS is not set: deploy/local/test.sh installs schemathesis \
             and sets it"
        )
    });
    let mut command = tokio::process::Command::new(program);
    command
        .arg("run")
        .arg(format!("{base_url}/v1/openapi.json"))
        .args(["--seed", &SEED.to_string()])
        .args(["--max-examples", &EXAMPLES.to_string()])
        .args(["--checks", "all"])
        // Schema-valid is not always acceptable: a well-formed token that was never issued,
        // an email with no account, a collection never written are refused by rules no
        // schema states. Every other check runs.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--workers", "1"])
        // Nothing kept between runs (each run is seeded and stands alone), and nothing
        // written into the source tree.
        .args(["--generation-database", "none"])
        .current_dir(std::env::temp_dir())
        .args(["--no-color", "--warnings", "off"])
        .env("SCHEMATHESIS_HOOKS", "");
    for header in headers {
        command.args(["--header", header]);
    }
    command.args(extra);
    let started = Instant::now();
    let output = command.output().await.expect("schemathesis runs");
    let text = format!(
        "{}{}\n(took {:?})",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        started.elapsed()
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[tokio::test]
async fn the_data_plane_answers_schemathesis_within_its_contract() {
    // Rate limits out of the way: a 429 would hide the answer the check is after.
    let app = TestApp::spawn_with(TestOptions {
        rate_limit: RateLimitSettings {
            auth_per_minute: 1_000_000,
            auth_burst: 1_000_000,
            ..RateLimitSettings::default()
        },
        ..TestOptions::default()
    })
    .await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    let token = owner.access_token().await.unwrap().unwrap();
    let tenant = "X-Tenant: acme".to_owned();
    for (headers, extra) in [
        (vec![tenant.clone()], vec![]),
        // Signing out would leave the rest of the run anonymous: the first run covers it.
        (
            vec![
                tenant.clone(),
                format!("Authorization: Bearer {}", token.expose()),
            ],
            vec!["--exclude-operation-id", "logout"],
        ),
    ] {
        let outcome = schemathesis(&app.data_url, &headers, &extra).await;
        match outcome {
            // Its summary (operations, test cases, time) for `--nocapture` runs.
            Ok(text) => println!("{text}"),
            Err(text) => panic!("{text}"),
        }
    }
}

#[tokio::test]
async fn the_control_plane_answers_schemathesis_within_its_contract() {
    let app = TestApp::spawn().await;
    for headers in [
        vec![],
        vec![format!("Authorization: Bearer {}", app.operator_token)],
    ] {
        let outcome = schemathesis(&app.control_url, &headers, &[]).await;
        match outcome {
            Ok(text) => println!("{text}"),
            Err(text) => panic!("{text}"),
        }
    }
}
