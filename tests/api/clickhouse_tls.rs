//! TLS to ClickHouse (`clickhouse_url` with `https://`, `clickhouse_ca_file`): a server whose
//! certificate the configured CA signed, for the host name in the URL, is reached over TLS;
//! another CA's certificate, another name or a server without TLS is refused, and a node
//! refuses to start on it with a clear message. The local ClickHouse also serves HTTPS with a
//! throw-away CA that `deploy/local/lib.sh` makes (`ensure_clickhouse`); its certificate names
//! `localhost` only.

use std::time::Duration;

use serde_json::json;
use shared::config::{ConfigError, ConfigSource};
use shared::events::EventSettings;
use tenantry_tests::node_process::NodeProcess;
use tenantry_tests::{test_ca as ca, TestApp, TestOptions};

/// The local ClickHouse's HTTPS address (`https://localhost:<port>`).
fn https_url() -> String {
    std::env::var("TENANTRY_TEST_CLICKHOUSE_HTTPS_URL")
        .unwrap_or_else(|_| "https://localhost:18443".to_owned())
}

fn settings(pairs: &[(&str, &str)]) -> Result<EventSettings, ConfigError> {
    EventSettings::from_source(&ConfigSource::from_pairs(pairs.iter().copied()))
}

/// What `SELECT 1` gets from ClickHouse under `settings`: `Ok`, or the whole error chain when
/// it is a TLS failure (any other failure fails the test).
async fn select_one(settings: &EventSettings) -> Result<(), String> {
    let answer = settings
        .client()
        .with_database("system")
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await;
    match answer {
        Ok(one) => {
            assert_eq!(one, 1);
            Ok(())
        }
        Err(error) => {
            assert!(
                shared::tls::is_tls_failure(&error),
                "not a TLS failure: {error}"
            );
            Err(shared::tls::describe(&error))
        }
    }
}

#[tokio::test]
async fn only_a_certificate_of_the_configured_ca_for_the_urls_host_is_accepted() {
    let url = https_url();
    let trusted = ca("TENANTRY_TEST_CLICKHOUSE_CA").display().to_string();
    let other = ca("TENANTRY_TEST_CLICKHOUSE_OTHER_CA")
        .display()
        .to_string();

    let right = settings(&[("clickhouse_url", &url), ("clickhouse_ca_file", &trusted)]).unwrap();
    select_one(&right).await.unwrap();

    // Another CA, a name the certificate does not carry, a port that speaks no TLS: refused.
    let wrong_ca = settings(&[("clickhouse_url", &url), ("clickhouse_ca_file", &other)]).unwrap();
    let error = select_one(&wrong_ca).await.unwrap_err();
    assert!(error.contains("UnknownIssuer"), "{error}");
    let by_address = url.replace("localhost", "127.0.0.1");
    let wrong_name = settings(&[
        ("clickhouse_url", &by_address),
        ("clickhouse_ca_file", &trusted),
    ])
    .unwrap();
    let error = select_one(&wrong_name).await.unwrap_err();
    assert!(error.contains("certificate"), "{error}");
    // A port that speaks no TLS either answers the handshake with plain HTTP (a TLS error)
    // or waits for the rest of a request line that never comes (ClickHouse reads until
    // CRLF; whether the handshake's random bytes hold one is chance): never a connection.
    let plain_port =
        tenantry_tests::clickhouse_url().replace("http://127.0.0.1", "https://localhost");
    let no_tls = settings(&[
        ("clickhouse_url", &plain_port),
        ("clickhouse_ca_file", &trusted),
    ])
    .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(5), select_one(&no_tls)).await;
    assert!(
        !matches!(outcome, Ok(Ok(()))),
        "a plain port answered over TLS"
    );

    // Without a CA file an https:// URL is checked against the system's trust store, which
    // does not hold the test CA.
    let system = settings(&[("clickhouse_url", &url)]).unwrap();
    let error = select_one(&system).await.unwrap_err();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn a_ca_file_with_a_plain_url_or_that_holds_no_certificate_is_refused_at_start() {
    let trusted = ca("TENANTRY_TEST_CLICKHOUSE_CA").display().to_string();
    let refused_key = |outcome: Result<EventSettings, ConfigError>| match outcome {
        Err(ConfigError::Invalid { key, reason }) => (key, reason),
        other => panic!("not refused: {other:?}"),
    };
    let (key, reason) = refused_key(settings(&[
        ("clickhouse_url", "http://127.0.0.1:18123"),
        ("clickhouse_ca_file", &trusted),
    ]));
    assert_eq!(key, "clickhouse_ca_file");
    assert!(reason.contains("http://"), "{reason}");
    let (key, reason) = refused_key(settings(&[
        ("clickhouse_url", &https_url()),
        ("clickhouse_ca_file", "/nonexistent/ca.crt"),
    ]));
    assert_eq!(key, "clickhouse_ca_file");
    assert!(reason.contains("/nonexistent/ca.crt"), "{reason}");
    let (key, _) = refused_key(settings(&[("clickhouse_url", "ftp://localhost:18443")]));
    assert_eq!(key, "clickhouse_url");
}

#[tokio::test]
async fn audit_events_travel_over_tls_and_a_node_with_the_wrong_ca_refuses_to_start() {
    let app = TestApp::spawn_with(TestOptions {
        clickhouse_url: https_url(),
        clickhouse_ca_file: Some(ca("TENANTRY_TEST_CLICKHOUSE_CA")),
        ..TestOptions::default()
    })
    .await;
    // Both planes' writers, the schema migration and the audit query: all over HTTPS.
    let owner = app.tenant_with_owner("encrypted").await;
    let tenant = app.tenant_id("encrypted").await;
    owner
        .records("tasks")
        .create(&json!({"title": "sent over TLS"}))
        .await
        .unwrap();
    app.wait_for_audit_events(&tenant, "records.create", 1, Duration::from_secs(10))
        .await;
    let page = owner
        .audit(&tenantry_tests::client::AuditQuery {
            action: Some("records.create".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1, "{page:?}");

    // The wrong CA: the node exits at start, saying why.
    let log = NodeProcess::refused(
        &app,
        &[(
            "clickhouse_ca_file",
            ca("TENANTRY_TEST_CLICKHOUSE_OTHER_CA")
                .display()
                .to_string(),
        )],
    )
    .await;
    assert!(
        log.contains(&format!("TLS to ClickHouse at {} failed", https_url()))
            && log.contains("UnknownIssuer"),
        "{log}"
    );
}
