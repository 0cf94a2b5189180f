//! RFC 7643/7644 compliance, checked by scim2-tester (PyPI; installed by
//! `deploy/local/test.sh` into the API tools' venv, found through `TENANTRY_TEST_API_PYTHON`).
//! It reads our discovery endpoints and, for every resource type and attribute they publish,
//! creates, reads, lists, searches, replaces, patches (add, replace, remove) and deletes
//! resources, checking each answer against the RFCs.

use tenantry_tests::TestApp;

use super::directory;

#[tokio::test]
async fn scim2_tester_finds_no_violation_of_the_rfcs() {
    let python = std::env::var("TENANTRY_TEST_API_PYTHON").unwrap_or_else(|_| {
        panic!(
            "TENANTRY_TEST_API_PYTHON is not set: deploy/local/test.sh installs scim2-tester and \
             sets it"
        )
    });
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    app.set_quotas("acme", serde_json::json!({"max_users": 1000}))
        .await;
    let scim = directory(&app, "acme", &owner).await;
    let token = scim.access_token().await.unwrap().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/api/scim/check_server.py");
    let output = tokio::process::Command::new(python)
        .args([script, &app.data_url, "acme", "-"])
        .env("SCIM_TOKEN", token.expose())
        .output()
        .await
        .expect("the checker runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "scim2-tester found violations:\n{report}"
    );
    // Every resource type was exercised: not a run that skipped them all.
    for check in ["User", "Group"] {
        assert!(
            report
                .lines()
                .any(|line| line.starts_with("ok   SUCCESS") && line.contains(check)),
            "no successful check of {check}:\n{report}"
        );
    }
    println!("{report}");
}
