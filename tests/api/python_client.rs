//! The data plane's committed OpenAPI document (`docs/openapi/data-plane.json`) makes a Python
//! client an integrator can use: `openapi-python-client` (PyPI, installed by
//! `deploy/local/test.sh`, found through `TENANTRY_TEST_OPENAPI_PYTHON_CLIENT`) generates it,
//! and `python_client/smoke.py`, run by the same venv's Python (`TENANTRY_TEST_API_PYTHON`),
//! signs in, creates a record and reads it back through it. The record is then read with this
//! harness's own HTTP client, so the generated client cannot agree with itself about something
//! the server never stored.
//!
//! The endpoints the generator leaves out are pinned ([`SKIPPED_BY_THE_GENERATOR`], listed in
//! docs/clients.md): a change to the document that costs a Python integrator an operation
//! fails here.

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::TestApp;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const EMAIL: &str = "integrator@example.com";
const PASSWORD: &str = "python-client-passphrase-1";
/// The package the generated client is imported as.
const PACKAGE: &str = "tenantry_data_plane";

/// Operations `openapi-python-client` does not generate: the SSO provider body
/// (`ProviderKind`, a `oneOf` of `allOf`s closed with `unevaluatedProperties: false`) is a
/// construct it cannot parse, so the two operations that take it are skipped; and it knows no
/// NDJSON or CSV bodies, the only ones bulk telemetry takes.
const SKIPPED_BY_THE_GENERATOR: [&str; 3] = [
    "POST /v1/admin/sso",
    "PUT /v1/admin/sso/{name}",
    "POST /v1/telemetry/events",
];

/// A path from environment variable `name`, which `deploy/local/test.sh` sets.
fn tool(name: &str, what: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("{name} is not set: deploy/local/test.sh installs {what} and sets it")
        })
}

/// Generates the client from the committed document into `directory`/[`PACKAGE`]; returns
/// the endpoints the generator reported it skipped ("METHOD /path").
async fn generate(directory: &Path) -> Vec<String> {
    let generator = tool(
        "TENANTRY_TEST_OPENAPI_PYTHON_CLIENT",
        "openapi-python-client",
    );
    let document =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi/data-plane.json");
    // The generator formats its output with `ruff` from its own venv, as it would in an
    // integrator's activated venv.
    let mut path = vec![generator
        .parent()
        .expect("the generator is in a directory")
        .to_path_buf()];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let output = tokio::process::Command::new(&generator)
        .arg("generate")
        .arg("--path")
        .arg(&document)
        .arg("--output-path")
        .arg(directory.join(PACKAGE))
        .args(["--meta", "none"])
        .env("PATH", std::env::join_paths(path).unwrap())
        .current_dir(directory)
        .output()
        .await
        .unwrap_or_else(|error| panic!("{} does not run: {error}", generator.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "generation failed:\n{text}");
    assert!(
        directory.join(PACKAGE).join("client.py").exists(),
        "no client generated:\n{text}"
    );
    text.lines()
        .filter(|line| line.contains("Endpoint will not be generated"))
        .filter_map(|line| {
            let endpoint = line.split_once("WARNING parsing ")?.1;
            Some(endpoint.split_once(" within ")?.0.to_owned())
        })
        .collect()
}

/// Runs `python_client/smoke.py` against tenant `slug` with the generated package on its
/// path; returns the JSON line it printed (it prints one on failure too).
async fn smoke(
    directory: &Path,
    app: &TestApp,
    slug: &str,
    collection: &str,
    record: &Value,
) -> Value {
    let python = tool("TENANTRY_TEST_API_PYTHON", "the API tools' Python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("api/python_client/smoke.py");
    let output = tokio::process::Command::new(&python)
        .arg(script)
        .args([&app.data_url, slug, EMAIL, PASSWORD, collection])
        .arg(record.to_string())
        .env("PYTHONPATH", directory)
        // Nothing written beside the generated code or the script.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .await
        .unwrap_or_else(|error| panic!("{} does not run: {error}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let seen = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str::<Value>(line).ok());
    match seen {
        Some(seen) if output.status.success() => seen,
        _ => panic!(
            "the smoke script failed ({}):\n{stdout}\n{stderr}",
            output.status
        ),
    }
}

fn timestamp(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("a timestamp string"), &Rfc3339)
        .unwrap_or_else(|error| panic!("{value}: {error}"))
}

#[tokio::test]
async fn a_python_client_generated_from_the_document_signs_in_and_writes_a_record() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("pyclient", EMAIL, PASSWORD)
        .await;
    let directory = std::env::temp_dir()
        .join("tenantry-tests")
        .join(format!("python-client-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&directory).unwrap();

    let skipped = generate(&directory).await;
    assert_eq!(
        skipped, SKIPPED_BY_THE_GENERATOR,
        "the endpoints the generator skips changed: fix the document, or update the list here \
         and in docs/clients.md"
    );

    let record = json!({
        "title": "Quarterly report",
        "pages": 12,
        "ratio": 0.25,
        "tags": ["q4", "finance"],
        "meta": {"draft": false, "reviewer": null, "city": "Zürich"}
    });
    let seen = smoke(&directory, &app, "pyclient", "reports", &record).await;

    // A wrong password is the documented 401 envelope, which the client parses.
    assert_eq!(
        seen["wrong_password"],
        json!({"status": 401, "code": "invalid_credentials"}),
        "{seen}"
    );
    assert_eq!(
        seen["login"],
        json!({"status": 200, "token_type": "Bearer"}),
        "{seen}"
    );
    assert_eq!(seen["create"]["status"], 201, "{seen}");
    let created = &seen["create"]["record"];
    assert_eq!(created["data"], record, "{seen}");
    assert_eq!(created["collection"], "reports", "{seen}");
    assert_eq!(seen["read"]["status"], 200, "{seen}");
    assert_eq!(seen["read"]["record"], *created, "{seen}");

    // The record is the tenant's: the server hands it to a client of its own.
    let owner = app.signed_in("pyclient", EMAIL, PASSWORD).await;
    let id = created["id"].as_str().unwrap();
    let response = owner
        .get(format!("/v1/collections/reports/records/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stored = response.value();
    for field in ["id", "collection", "data", "version", "owner_id"] {
        assert_eq!(stored[field], created[field], "{field}: {stored} vs {seen}");
    }
    for field in ["created_at", "updated_at"] {
        assert_eq!(
            timestamp(&stored[field]),
            timestamp(&created[field]),
            "{field}"
        );
    }

    std::fs::remove_dir_all(&directory).unwrap();
}
