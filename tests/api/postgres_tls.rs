//! TLS to Postgres (`postgres_ca_file`): a server whose certificate the configured CA signed,
//! for the host name in the URL, is reached over TLS; another CA's certificate or another
//! name is refused, and a data-plane node refuses to start on it with a clear message. The
//! second test cluster serves TLS with a throw-away CA that `deploy/local/lib.sh` makes
//! (`ensure_second_postgres_tls`); its certificate names `localhost` only.

use reqwest::StatusCode;
use shared::db::tls::{is_tls_failure, PostgresTls};
use shared::db::DbSetupError;
use tenantry_tests::node_process::{free_port, NodeProcess};
use tenantry_tests::{test_ca as ca, TestApp};

/// The second cluster's database `database`, reached by host name `host`.
fn second_cluster(host: &str, database: &str) -> tokio_postgres::Config {
    let admin: tokio_postgres::Config = tenantry_tests::second_cluster_admin_url().parse().unwrap();
    let mut config = tokio_postgres::Config::new();
    config
        .host(host)
        .port(admin.get_ports()[0])
        .user("postgres")
        .dbname(database);
    config
}

async fn connect(
    config: &tokio_postgres::Config,
    tls: &PostgresTls,
) -> Result<tokio_postgres::Client, DbSetupError> {
    shared::db::connect_with(config, tls.applied(config)).await
}

fn tls_failure(outcome: Result<tokio_postgres::Client, DbSetupError>) -> String {
    match outcome {
        Err(DbSetupError::Connect(error)) => {
            assert!(is_tls_failure(&error), "not a TLS failure: {error}");
            shared::db::tls::describe(&error)
        }
        Err(other) => panic!("not a connection failure: {other}"),
        Ok(_) => panic!("connected"),
    }
}

#[tokio::test]
async fn only_a_certificate_of_the_configured_ca_for_the_urls_host_is_accepted() {
    let trusted = PostgresTls::from_ca_file(&ca("TENANTRY_TEST_POSTGRES_CA")).unwrap();
    let other = PostgresTls::from_ca_file(&ca("TENANTRY_TEST_POSTGRES_OTHER_CA")).unwrap();
    let by_name = second_cluster("localhost", "postgres");

    // The right CA and name: the session is encrypted.
    let client = connect(&by_name, &trusted).await.unwrap();
    let encrypted: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted);

    // Another CA, or a name the certificate does not carry: refused, and said so.
    let error = tls_failure(connect(&by_name, &other).await);
    assert!(error.contains("certificate"), "{error}");
    let by_address = second_cluster("127.0.0.1", "postgres");
    let error = tls_failure(connect(&by_address, &trusted).await);
    assert!(error.contains("certificate"), "{error}");

    // With a CA file every connection uses TLS (`prefer` counts as `require`) but those that
    // say `sslmode=disable`; without one, only those that say `sslmode=require`.
    let mut disabled = by_name.clone();
    disabled.ssl_mode(tokio_postgres::config::SslMode::Disable);
    assert!(trusted.applied(&disabled).is_none());
    let (upgraded, _) = trusted.applied(&by_name).unwrap();
    assert_eq!(
        upgraded.get_ssl_mode(),
        tokio_postgres::config::SslMode::Require
    );
    let system = PostgresTls::system().unwrap();
    assert!(system.applied(&by_name).is_none());
    let mut required = by_name.clone();
    required.ssl_mode(tokio_postgres::config::SslMode::Require);
    assert!(system.applied(&required).is_some());
}

#[tokio::test]
async fn a_ca_file_that_is_missing_or_holds_no_certificate_is_a_clear_error() {
    let missing = PostgresTls::from_ca_file(std::path::Path::new("/nonexistent/ca.crt"));
    let error = missing.err().unwrap().to_string();
    assert!(error.contains("/nonexistent/ca.crt"), "{error}");
    let garbage = std::env::temp_dir().join(format!("not-a-ca-{}", uuid::Uuid::new_v4()));
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let error = PostgresTls::from_ca_file(&garbage)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("no PEM certificate"), "{error}");
    std::fs::remove_file(&garbage).unwrap();
}

#[tokio::test]
async fn a_node_reaches_its_catalog_over_tls_and_refuses_to_start_with_the_wrong_ca() {
    let app = TestApp::spawn().await;
    // A catalog on the TLS cluster: this run's database there, migrated by a control plane
    // of the test's own (over plain text: the test process keeps its connections plain).
    let admin_url = app.second_cluster_url().await;
    let database = app.database_name();
    let control = control_plane::ControlPlane::new(
        control_plane::config::Config {
            database_url: admin_url.clone(),
            ..(*app.control.config).clone()
        },
        shared::template::Template::default_template(),
    )
    .unwrap();
    control.migrate().await.unwrap();
    let url = format!(
        "postgres://postgres@localhost:{}/{database}",
        second_cluster("localhost", &database).get_ports()[0]
    );

    // The wrong CA: the node exits at start, saying why.
    let log = NodeProcess::refused(
        &app,
        &[
            ("database_url", url.clone()),
            (
                "postgres_ca_file",
                ca("TENANTRY_TEST_POSTGRES_OTHER_CA").display().to_string(),
            ),
        ],
    )
    .await;
    assert!(
        log.contains("TLS to Postgres at localhost failed") && log.contains("UnknownIssuer"),
        "{log}"
    );

    // The right CA: the node serves, and its connections are encrypted.
    let node = NodeProcess::start(
        &app,
        free_port(),
        &[
            ("database_url", url),
            (
                "postgres_ca_file",
                ca("TENANTRY_TEST_POSTGRES_CA").display().to_string(),
            ),
        ],
    )
    .await;
    let ready = app
        .http
        .get(format!("{}/readyz", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "{}", node.log_text());
    let watcher = TestApp::connect_to(&admin_url).await;
    let (encrypted, plain): (i64, i64) = {
        let row = watcher
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
                 FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                 WHERE a.datname = $1 AND a.usename = $2",
                &[&database, &app.role_prefix.data_plane_role().as_str()],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(encrypted > 0, "no encrypted connection of the node");
    assert_eq!(plain, 0, "the node has plain connections");
}
