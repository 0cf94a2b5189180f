//! The test harness shared by the integration tests and the benchmark: a fresh catalog
//! database per [`TestApp`], both planes started on port 0 against real Postgres (and
//! ClickHouse for readiness), and one-line helpers for the common steps.
//!
//! Environment: `TENANTRY_TEST_DATABASE_URL` (a database on the server to create test
//! databases from; default `postgres://postgres@127.0.0.1:5432/postgres`),
//! `TENANTRY_CLICKHOUSE_URL` and `TENANTRY_CLICKHOUSE_DATABASE`, `TENANTRY_TEST_SMTP_URL` and
//! `TENANTRY_TEST_MAILDIR` (the test SMTP server `deploy/local/test.sh` starts, and the Maildir
//! it stores every mail in; default `smtp://127.0.0.1:18025` and
//! `deploy/local/state/mail/maildir`). Databases are named
//! `tenantry_test_*`, roles start with `tt_` and KEK files live in `$TMPDIR/tenantry-tests/`,
//! so `deploy/local/test.sh` can remove what earlier runs left.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod console;
pub mod hanging_proxy;
pub mod idp;
pub mod node_process;
pub mod private_clickhouse;
pub mod private_postgres;
pub mod totp;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use control_plane::config::Config as ControlConfig;
use control_plane::provisioning::ProvisionOptions;
use control_plane::tenants::service::{self, CreateTenant, TenantName};
use control_plane::ControlPlane;
use data_plane::config::Config as DataConfig;
use data_plane::mail::MailSettings;
use data_plane::DataPlane;
use hanging_proxy::HangingProxy;
use ring::rand::SecureRandom;
use shared::config::ConfigSource;
use shared::template::Template;
use shared::tenant::{RolePrefix, Tenant, TenantSlug};

pub use tenantry_client::{self as client, Client, Operator, Reply};

pub const BASE_DOMAIN: &str = "tenantry.test";

/// The password of every test user that has one (it passes the default password policy).
pub const PASSWORD: &str = "correct horse battery staple";

/// The first admin (owner) of a tenant made by [`TestApp::tenant_with_owner`].
pub const OWNER_EMAIL: &str = "olga@acme.example";

pub fn admin_database_url() -> String {
    std::env::var("TENANTRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Where the local PgBouncer listens (transaction pooling, in front of the server
/// [`admin_database_url`] names; `deploy/local/test.sh` starts it on 127.0.0.1:16432 and sets
/// `TENANTRY_TEST_PGBOUNCER`).
pub fn pgbouncer_address() -> String {
    std::env::var("TENANTRY_TEST_PGBOUNCER").unwrap_or_else(|_| "127.0.0.1:16432".to_owned())
}

/// `database_url` (a test's database, as [`database_url_for`] writes it) through the local
/// PgBouncer: the same database and user, PgBouncer's address.
pub fn through_pgbouncer(database_url: &str) -> String {
    let config: tokio_postgres::Config = database_url.parse().unwrap();
    format!(
        "postgres://{}@{}/{}",
        config.get_user().unwrap_or("postgres"),
        pgbouncer_address(),
        config.get_dbname().unwrap_or("postgres")
    )
}

/// The CA file an environment variable names: one of the throw-away CAs `deploy/local/lib.sh`
/// makes for the TLS tests (`make_test_certificates`).
pub fn test_ca(variable: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run deploy/local/test.sh (it makes the test CAs)")
    }));
    assert!(
        path.exists(),
        "{}: run deploy/local/test.sh",
        path.display()
    );
    path
}

/// A superuser connection to the second Postgres cluster (`deploy/local/test.sh` starts it on
/// 127.0.0.1:15433 and sets `TENANTRY_TEST_SECOND_DATABASE_URL`).
pub fn second_cluster_admin_url() -> String {
    std::env::var("TENANTRY_TEST_SECOND_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:15433/postgres".to_owned())
}

/// The default template plus one more version, `V100__notes` (a table `notes`), for roll-out
/// tests.
pub fn template_with_notes() -> Template {
    Template::default_template().with_extra(vec![refinery::Migration::unapplied(
        "V100__notes",
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL)",
    )
    .unwrap()])
}

/// Rolls `control`'s template over every tenant behind it, `concurrency` at a time on each
/// cluster, without a canary group.
pub async fn roll_out(
    control: &ControlPlane,
    concurrency: usize,
) -> control_plane::templates::RolloutReport {
    let options = control_plane::templates::RolloutOptions {
        concurrency,
        canary: None,
    };
    control_plane::templates::migrate_all(control, options, |_| {})
        .await
        .unwrap()
}

pub fn clickhouse_url() -> String {
    std::env::var("TENANTRY_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".to_owned())
}

/// The ClickHouse database of the test run whose files are named with `suffix`: one per
/// [`TestApp`], so concurrent test runs sharing a server never see each other's events.
pub fn clickhouse_database_for(suffix: &str) -> String {
    format!("tenantry_test_{suffix}")
}

/// The suffix of a test run, from its KEK file's name (`kek-<suffix>`).
fn suffix_of(kek_file: &Path) -> String {
    kek_file
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
        .trim_start_matches("kek-")
        .to_owned()
}

/// Event settings of the test run whose KEK file is `kek_file`: its own ClickHouse database
/// and spool directory (`$TMPDIR/tenantry-tests/spool-<suffix>/`).
pub fn event_settings(kek_file: &Path, options: &TestOptions) -> shared::events::EventSettings {
    let suffix = suffix_of(kek_file);
    shared::events::EventSettings {
        clickhouse_url: options.clickhouse_url.clone(),
        clickhouse_cluster: options.clickhouse_cluster.clone(),
        clickhouse_tls: options
            .clickhouse_ca_file
            .as_deref()
            .map(|ca_file| shared::events::tls::ClickHouseTls::from_ca_file(ca_file).unwrap()),
        clickhouse_database: clickhouse_database_for(&suffix),
        spool_dir: options
            .spool_dir
            .clone()
            .unwrap_or_else(|| kek_file.with_file_name(format!("spool-{suffix}"))),
        spool_max_bytes: options.spool_max_bytes,
        flush_interval: options.event_flush_interval,
    }
}

/// The local two-shard ClickHouse cluster: `deploy/local/test.sh` starts a second server
/// beside the first and names both shards of `tenantry_events`
/// (`TENANTRY_TEST_CLICKHOUSE_CLUSTER`, `TENANTRY_TEST_CLICKHOUSE_SHARD_URLS`).
pub fn local_cluster() -> shared::events::ClickHouseCluster {
    let shard_urls = std::env::var("TENANTRY_TEST_CLICKHOUSE_SHARD_URLS")
        .unwrap_or_else(|_| "http://127.0.0.1:18123,http://127.0.0.1:18124".to_owned());
    shared::events::ClickHouseCluster {
        name: std::env::var("TENANTRY_TEST_CLICKHOUSE_CLUSTER")
            .unwrap_or_else(|_| "tenantry_events".to_owned()),
        shard_urls: shard_urls.split(',').map(str::to_owned).collect(),
    }
}

pub fn smtp_url() -> String {
    std::env::var("TENANTRY_TEST_SMTP_URL").unwrap_or_else(|_| "smtp://127.0.0.1:18025".to_owned())
}

pub fn maildir() -> PathBuf {
    std::env::var_os("TENANTRY_TEST_MAILDIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/state/mail/maildir"),
        PathBuf::from,
    )
}

/// Settings a test may change before the app starts.
#[derive(Debug, Clone)]
pub struct TestOptions {
    pub data_pool_size: usize,
    /// The data plane's `data_connection_max_uses`.
    pub connection_max_uses: usize,
    /// The data plane's `data_affinity_groups`.
    pub affinity_groups: usize,
    /// The data plane's `data_cluster_password_dir`.
    pub cluster_password_dir: Option<PathBuf>,
    /// The data plane's `trusted_proxies` and `forwarded_header`.
    pub trusted_proxies: shared::http::client_address::TrustedProxies,
    /// Both planes' `egress_allow_networks`: loopback by default, where the local IdPs
    /// listen; the tests of the guard itself give none.
    pub egress: shared::egress::EgressPolicy,
    pub control_pool_size: usize,
    /// Long by default, so tests prove that NOTIFY, not expiry, evicts tenant entries.
    pub tenant_cache_ttl: Duration,
    pub clickhouse_url: String,
    /// Both planes' `clickhouse_ca_file` (for an `https://` [`Self::clickhouse_url`]).
    pub clickhouse_ca_file: Option<PathBuf>,
    /// Both planes' `clickhouse_cluster` and `clickhouse_shard_urls` (see [`local_cluster`]).
    pub clickhouse_cluster: Option<shared::events::ClickHouseCluster>,
    pub data_workers: usize,
    /// The data plane's `smtp_url`; `None` starts no mail worker.
    pub smtp_url: Option<String>,
    /// Where the test SMTP server stores what it receives.
    pub maildir: PathBuf,
    /// Mail retry timing (production defaults unless a test needs faster retries).
    pub mail_retry_base: Duration,
    pub mail_retry_cap: Duration,
    /// A manual clock for both planes (`None`: the system clock).
    pub clock: Option<shared::clock::ManualClock>,
    /// The data plane's rate-limit settings (production defaults unless a test changes them).
    pub rate_limit: data_plane::rate_limit::RateLimitSettings,
    /// The data plane's `max_body_bytes`.
    pub max_body_bytes: usize,
    /// Whether the data plane writes audit events.
    pub audit_enabled: bool,
    /// The spool base directory (default: one per test run under `$TMPDIR/tenantry-tests`).
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: u64,
    /// How long the event writer gathers a batch (short in tests, so reads see events soon;
    /// the production default, 200 ms, in benchmarks).
    pub event_flush_interval: Duration,
    /// Age at which audit outbox rows count as left by a dead node.
    pub outbox_recover_after: Duration,
    /// The data plane's hashing gate (production defaults for this machine's cores).
    pub password_hashing: data_plane::identity::hash_gate::HashLimits,
    /// Whether the data plane's pools reach Postgres through the local PgBouncer in
    /// transaction mode (its `LISTEN`s go directly, as `listen_database_url` says). Default:
    /// `TENANTRY_TEST_DATA_PLANE_VIA_PGBOUNCER=1`, which `deploy/local/test.sh` sets to run a
    /// slice of the tests a second time that way.
    pub via_pgbouncer: bool,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            data_pool_size: 8,
            connection_max_uses: 0,
            affinity_groups: 1,
            cluster_password_dir: None,
            trusted_proxies: Default::default(),
            egress: shared::egress::EgressPolicy::parse("127.0.0.0/8, ::1")
                .expect("loopback networks"),
            control_pool_size: 8,
            tenant_cache_ttl: Duration::from_secs(600),
            clickhouse_url: clickhouse_url(),
            clickhouse_ca_file: None,
            clickhouse_cluster: None,
            data_workers: 2,
            smtp_url: Some(smtp_url()),
            maildir: maildir(),
            mail_retry_base: Duration::from_secs(30),
            mail_retry_cap: Duration::from_secs(3600),
            clock: None,
            rate_limit: data_plane::rate_limit::RateLimitSettings::default(),
            max_body_bytes: shared::http::RAW_BODY_LIMIT,
            audit_enabled: true,
            spool_dir: None,
            spool_max_bytes: 64 << 20,
            event_flush_interval: Duration::from_millis(50),
            outbox_recover_after: Duration::from_secs(60),
            password_hashing: data_plane::identity::hash_gate::HashLimits::for_cores(
                std::thread::available_parallelism().map_or(2, usize::from),
            ),
            via_pgbouncer: std::env::var("TENANTRY_TEST_DATA_PLANE_VIA_PGBOUNCER")
                .is_ok_and(|value| value == "1"),
        }
    }
}

pub struct TestApp {
    pub control: ControlPlane,
    pub data: DataPlane,
    pub control_url: String,
    pub data_url: String,
    pub operator_token: String,
    pub http: reqwest::Client,
    /// The test's catalog database, as the (superuser) control-plane role.
    pub database_url: String,
    pub role_prefix: RolePrefix,
    pub options: TestOptions,
    /// The running data-plane server (to stop it in restart tests).
    pub data_server: Option<actix_web::dev::ServerHandle>,
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    ring::rand::SystemRandom::new().fill(&mut buffer).unwrap();
    hex::encode(buffer)
}

fn database_url_for(admin_url: &str, database: &str) -> String {
    let config: tokio_postgres::Config = admin_url.parse().unwrap();
    let user = config.get_user().unwrap_or("postgres");
    let (host, port) = match (config.get_hosts().first(), config.get_ports().first()) {
        (Some(tokio_postgres::config::Host::Tcp(host)), Some(port)) => (host.clone(), *port),
        _ => ("127.0.0.1".to_owned(), 5432),
    };
    format!("postgres://{user}@{host}:{port}/{database}")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(options: TestOptions) -> TestApp {
        let suffix = random_hex(6);
        let database = format!("tenantry_test_{suffix}");
        let admin = shared::db::connect(&admin_database_url().parse().unwrap()).await.expect(
            "cannot reach the test Postgres; run deploy/local/test.sh or set TENANTRY_TEST_DATABASE_URL",
        );
        admin
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        let database_url = database_url_for(&admin_database_url(), &database);
        let role_prefix = RolePrefix::parse(&format!("tt_{suffix}")).unwrap();

        let kek_dir = std::env::temp_dir().join("tenantry-tests");
        std::fs::create_dir_all(&kek_dir).unwrap();
        let kek_file = kek_dir.join(format!("kek-{suffix}"));
        std::fs::write(&kek_file, random_hex(32)).unwrap();
        std::fs::write(kek_dir.join(format!("pepper-{suffix}")), random_hex(32)).unwrap();

        let control_config = ControlConfig {
            database_url: database_url.clone(),
            kek_file: kek_file.clone(),
            base_domain: BASE_DOMAIN.to_owned(),
            role_prefix: role_prefix.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            pool_size: options.control_pool_size,
            default_plan: "free".to_owned(),
            public_scheme: "https".to_owned(),
            events: event_settings(&kek_file, &options),
            request_deadline: Duration::from_secs(60),
            metrics_listen: None,
            postgres_ca_file: None,
            egress: options.egress.clone(),
        };
        let control = ControlPlane::new(control_config, Template::default_template()).unwrap();
        let control = match &options.clock {
            Some(clock) => control.with_clock(shared::clock::Clock::Manual(clock.clone())),
            None => control,
        };
        control.migrate().await.unwrap();
        let operator_token = control_plane::operators::create_token(&control, "tests")
            .await
            .unwrap()
            .to_string();

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let control_url = format!("http://{}", listener.local_addr().unwrap());
        let server = control_plane::server::build(control.clone(), listener).unwrap();
        tokio::spawn(server);

        let mut app = TestApp {
            data: start_data_plane(
                data_config(&database_url, &role_prefix, &kek_file, &options),
                &options,
            ),
            control,
            control_url,
            data_url: String::new(),
            operator_token,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            database_url,
            role_prefix,
            options,
            data_server: None,
        };
        let (url, handle) = app.serve_data_plane(app.data.clone()).await;
        app.data_url = url;
        app.data_server = Some(handle);
        app
    }

    async fn serve_data_plane(&self, data: DataPlane) -> (String, actix_web::dev::ServerHandle) {
        data.wait_until_listening().await;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = data_plane::server::build(data, listener).unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        (url, handle)
    }

    /// Stops the data plane as `data-plane serve` does on SIGTERM (server, then the event
    /// writer, whose queue goes to ClickHouse or the spool), and starts a new one on the same
    /// spool directory, as a restarted process would.
    pub async fn restart_data_plane(&mut self) {
        if let Some(handle) = self.data_server.take() {
            handle.stop(true).await;
        }
        self.data.events.stop().await;
        let data = start_data_plane(
            data_config(
                &self.database_url,
                &self.role_prefix,
                &self.kek_file(),
                &self.options,
            ),
            &self.options,
        );
        self.data = data;
        let (url, handle) = self.serve_data_plane(self.data.clone()).await;
        self.data_url = url;
        self.data_server = Some(handle);
    }

    /// A client of this test run's ClickHouse database.
    pub fn clickhouse(&self) -> clickhouse::Client {
        self.control.config.events.client()
    }

    /// Another data-plane node on the same catalog, as a load balancer would have.
    pub async fn spawn_data_node(&self, options: &TestOptions) -> (DataPlane, String) {
        let data = start_data_plane(
            data_config(
                &self.database_url,
                &self.role_prefix,
                &self.kek_file(),
                options,
            ),
            options,
        );
        let (url, _) = self.serve_data_plane(data.clone()).await;
        (data, url)
    }

    /// Creates and provisions a tenant through the control plane's own code path.
    pub async fn create_tenant(&self, slug: &str) -> Tenant {
        self.create_tenant_with(slug, ProvisionOptions::default())
            .await
            .unwrap()
    }

    pub async fn create_tenant_with(
        &self,
        slug: &str,
        options: ProvisionOptions,
    ) -> Result<Tenant, control_plane::error::ControlError> {
        self.create_tenant_on(&self.control, slug, options).await
    }

    pub async fn create_tenant_on(
        &self,
        control: &ControlPlane,
        slug: &str,
        options: ProvisionOptions,
    ) -> Result<Tenant, control_plane::error::ControlError> {
        Self::create_placed(control, slug, None, options).await
    }

    /// Creates tenant `slug` on `cluster` (the default when `None`), stopping where `options`
    /// say.
    pub async fn create_placed(
        control: &ControlPlane,
        slug: &str,
        cluster: Option<&str>,
        options: ProvisionOptions,
    ) -> Result<Tenant, control_plane::error::ControlError> {
        let request = CreateTenant {
            slug: TenantSlug::parse(slug).unwrap(),
            name: Some(TenantName::parse(&format!("{slug} display")).unwrap()),
            plan: None,
            admin_email: None,
            cluster: cluster.map(str::to_owned),
        };
        service::create(control, request, options).await
    }

    /// Creates a tenant whose first admin is `email`, as an operator does (`tenant create
    /// --admin-email`); returns it and the activation token.
    pub async fn create_tenant_with_admin(&self, slug: &str, email: &str) -> (Tenant, String) {
        self.create_tenant_with_admin_on(slug, email, None).await
    }

    /// [`Self::create_tenant_with_admin`] on `cluster` (the default when `None`).
    pub async fn create_tenant_with_admin_on(
        &self,
        slug: &str,
        email: &str,
        cluster: Option<&str>,
    ) -> (Tenant, String) {
        let request = CreateTenant {
            slug: TenantSlug::parse(slug).unwrap(),
            name: None,
            plan: None,
            admin_email: Some(shared::email::Email::parse(email).unwrap()),
            cluster: cluster.map(str::to_owned),
        };
        let created = service::create_and_invite(&self.control, request)
            .await
            .unwrap();
        let token = created.activation_token.as_deref().unwrap().to_string();
        (created.details.tenant, token)
    }

    /// An anonymous client of the first data-plane node for tenant `slug` (in `X-Tenant`).
    pub fn tenant(&self, slug: &str) -> Client {
        Client::with_http(self.http.clone(), &self.data_url).tenant(slug)
    }

    /// A browser on tenant `slug`'s console, with no cookies yet.
    pub fn browser(&self, slug: &str) -> console::Browser {
        console::Browser::new(self.http.clone(), &self.data_url, slug)
    }

    /// A client of tenant `slug` presenting `token` as a bearer token (an access token, or an
    /// API key presented that way); it does not refresh.
    pub fn as_bearer(&self, slug: &str, token: &str) -> Client {
        self.tenant(slug).with_bearer(token)
    }

    /// The operator API of the control plane, with this app's operator token.
    pub fn operator_api(&self) -> Operator {
        Operator::with_http(self.http.clone(), &self.control_url, &self.operator_token)
    }

    /// Changes the tenant's quota overrides through the operator API and waits (up to the
    /// second NOTIFY is given) until the data plane serves the tenant with them.
    pub async fn set_quotas(&self, slug: &str, patch: serde_json::Value) {
        let quotas = self
            .operator_api()
            .tenants()
            .set_quotas(slug, &patch)
            .await
            .unwrap();
        let effective = quotas["effective"].clone();
        let key = data_plane::tenancy::resolve::TenantKey::Slug(TenantSlug::parse(slug).unwrap());
        let applied = Self::eventually(Duration::from_secs(1), || async {
            let served = self.data.registry.lookup(&key).await.unwrap().unwrap();
            serde_json::to_value(&served.quotas).unwrap() == effective
        })
        .await;
        assert!(
            applied.is_some(),
            "the data plane did not reload {slug}'s quotas"
        );
    }

    /// Tenant `slug` with an active owner ([`OWNER_EMAIL`], [`PASSWORD`]), signed in.
    pub async fn tenant_with_owner(&self, slug: &str) -> Client {
        self.tenant_with_active_admin(slug, OWNER_EMAIL, PASSWORD)
            .await;
        self.signed_in(slug, OWNER_EMAIL, PASSWORD).await
    }

    /// [`Self::tenant_with_owner`] placed on `cluster`.
    pub async fn tenant_with_owner_on(&self, slug: &str, cluster: &str) -> Client {
        let (_, token) = self
            .create_tenant_with_admin_on(slug, OWNER_EMAIL, Some(cluster))
            .await;
        self.tenant(slug)
            .auth()
            .activate(&token, PASSWORD)
            .await
            .unwrap_or_else(|error| panic!("activating {OWNER_EMAIL} at {slug}: {error}"));
        self.signed_in(slug, OWNER_EMAIL, PASSWORD).await
    }

    /// Registers the Postgres `url` as cluster `name` (by a file holding it, as an operator
    /// would) and waits until the data plane serves it (its change listener is in place).
    pub async fn register_cluster(&self, name: &str, url: &str) {
        let dir = std::env::temp_dir().join("tenantry-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("cluster-{}-{name}", self.role_prefix.as_str()));
        std::fs::write(&path, format!("{url}\n")).unwrap();
        self.operator_api()
            .clusters()
            .add(&client::NewCluster {
                name: name.into(),
                url_file: Some(path.display().to_string()),
                ..client::NewCluster::default()
            })
            .await
            .unwrap_or_else(|error| panic!("registering cluster {name}: {error}"));
        let served = tokio::time::timeout(
            Duration::from_secs(10),
            self.data.clusters.wait_until_listening(name),
        )
        .await;
        assert!(
            served.is_ok(),
            "the data plane does not serve cluster {name}"
        );
    }

    /// The name of this run's catalog database (its databases on other clusters share it).
    pub fn database_name(&self) -> String {
        let config: tokio_postgres::Config = self.database_url.parse().unwrap();
        config.get_dbname().unwrap().to_owned()
    }

    /// Registers a database named like this run's catalog database on the test's own
    /// `cluster` as `name` ([`Self::register_cluster`]).
    pub async fn register_private_cluster(
        &self,
        name: &str,
        cluster: &private_postgres::PrivatePostgres,
    ) {
        let database = self.database_name();
        Self::connect_to(&cluster.url("postgres"))
            .await
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        self.register_cluster(name, &cluster.url(&database)).await;
    }

    /// Registers this run's database on the second cluster as `name` ([`Self::register_cluster`]).
    pub async fn register_second_cluster(&self, name: &str) {
        self.register_cluster(name, &self.second_cluster_url().await)
            .await;
    }

    /// Registers this run's database on the second cluster as `name`, reached through a
    /// proxy the test can cut (as a server that stops would) or freeze: the second Postgres
    /// is shared by every test of a run, so it cannot be stopped itself.
    pub async fn register_second_cluster_behind_a_proxy(&self, name: &str) -> HangingProxy {
        let second = self.second_cluster_url().await;
        let port = second
            .parse::<tokio_postgres::Config>()
            .unwrap()
            .get_ports()[0];
        let proxy = HangingProxy::start(([127, 0, 0, 1], port).into()).await;
        let proxied = second.replace(&format!(":{port}/"), &format!(":{}/", proxy.port()));
        self.register_cluster(name, &proxied).await;
        proxy
    }

    /// A client of tenant `slug` signed in as `email` with `password`.
    pub async fn signed_in(&self, slug: &str, email: &str, password: &str) -> Client {
        self.tenant(slug)
            .sign_in(email, password)
            .await
            .unwrap_or_else(|error| panic!("{email} signs in at {slug}: {error}"))
    }

    /// Invites `email` with `roles` as `admin`, activates the account with the mailed token
    /// and [`PASSWORD`]; the new user's id.
    pub async fn invite_and_activate(
        &self,
        admin: &Client,
        email: &str,
        roles: &[&str],
    ) -> uuid::Uuid {
        let user = admin.users().invite(email, roles).await.unwrap();
        let mails = self.wait_for_mail(email, Duration::from_secs(10)).await;
        let slug = admin
            .tenant_slug()
            .expect("an admin client names its tenant");
        let token = mailed_token(&mails[0], slug, "/console/accept-invitation");
        admin
            .anonymous()
            .auth()
            .activate(&token, PASSWORD)
            .await
            .unwrap();
        user.id
    }

    /// The schema of active tenant `slug`, quoted for SQL.
    pub async fn tenant_schema(&self, slug: &str) -> String {
        let name: String = self
            .superuser()
            .await
            .query_one(
                "SELECT schema_name FROM control.tenants WHERE slug = $1 AND status = 'active'",
                &[&slug],
            )
            .await
            .unwrap()
            .try_get("schema_name")
            .unwrap();
        format!("\"{name}\"")
    }

    /// Creates tenant `slug` with an active admin `email` / `password`.
    pub async fn tenant_with_active_admin(
        &self,
        slug: &str,
        email: &str,
        password: &str,
    ) -> Tenant {
        let (tenant, token) = self.create_tenant_with_admin(slug, email).await;
        self.tenant(slug)
            .auth()
            .activate(&token, password)
            .await
            .unwrap_or_else(|error| panic!("activating {email} at {slug}: {error}"));
        tenant
    }

    /// Starts creating tenant `slug` and stops it right after `step`, as a crash there would;
    /// asserts the run stopped exactly there.
    pub async fn create_tenant_interrupted_after(
        &self,
        slug: &str,
        step: control_plane::provisioning::Step,
    ) {
        let outcome = self
            .create_tenant_with(
                slug,
                ProvisionOptions {
                    interrupt_after: Some(step),
                },
            )
            .await;
        assert!(
            matches!(outcome, Err(control_plane::error::ControlError::Interrupted(at)) if at == step),
            "{step}: {outcome:?}"
        );
    }

    /// Lifts the rate limits of tenant `slug` (the free plan's 10 requests/s, burst 20, writes
    /// half of that) for tests that send bursts but are not about limits, and waits until the
    /// data plane serves the tenant with the new quotas.
    pub async fn raise_rate_limits(&self, slug: &str) {
        self.set_quotas(
            slug,
            serde_json::json!({"requests_per_second": 10000, "burst": 10000}),
        )
        .await;
    }

    /// This run's database on the second Postgres cluster (named like its catalog database),
    /// created at the first call: its superuser URL.
    pub async fn second_cluster_url(&self) -> String {
        let database = self.database_name();
        let admin = shared::db::connect(&second_cluster_admin_url().parse().unwrap())
            .await
            .expect("cannot reach the second test Postgres; run deploy/local/test.sh");
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
            .await
            .unwrap()
            .is_some();
        if !exists {
            // Two tests of one run may race to create it: the loser finds it made.
            if let Err(error) = admin
                .batch_execute(&format!("CREATE DATABASE {database}"))
                .await
            {
                assert_eq!(
                    error.code(),
                    Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE),
                    "{error}"
                );
            }
        }
        database_url_for(&second_cluster_admin_url(), &database)
    }

    /// A superuser connection to `url`.
    pub async fn connect_to(url: &str) -> tokio_postgres::Client {
        shared::db::connect(&url.parse().unwrap()).await.unwrap()
    }

    /// A superuser connection to the test's catalog database.
    pub async fn superuser(&self) -> tokio_postgres::Client {
        shared::db::connect(&self.database_url.parse().unwrap())
            .await
            .unwrap()
    }

    pub async fn tenant_status(&self, slug: &str) -> String {
        self.superuser()
            .await
            .query_one(
                "SELECT status FROM control.tenants WHERE slug = $1 AND status <> 'deleted'",
                &[&slug],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Asserts that `client` runs as the data plane's login role and that its `search_path`
    /// does not name `schema` (a tenant context left behind by an earlier transaction).
    pub async fn assert_no_tenant_context(&self, client: &tokio_postgres::Client, schema: &str) {
        // Unprepared: a statement prepared in one round trip and run in the next would not
        // survive a transaction-mode PgBouncer (these tests also run behind one).
        let rows = client
            .query_typed(
                "SELECT current_user::text, current_setting('search_path')",
                &[],
            )
            .await
            .unwrap();
        let row = &rows[0];
        assert_eq!(
            row.get::<_, String>(0),
            self.role_prefix.data_plane_role().as_str()
        );
        let search_path: String = row.get(1);
        assert!(!search_path.contains(schema), "search_path {search_path}");
    }

    /// A tenant with an active admin `admin_email`, its limits lifted; the admin, signed in.
    pub async fn tenant_with_admin(&self, slug: &str, admin_email: &str) -> Client {
        self.tenant_with_active_admin(slug, admin_email, PASSWORD)
            .await;
        self.raise_rate_limits(slug).await;
        self.signed_in(slug, admin_email, PASSWORD).await
    }

    /// Rows of active tenant `slug`'s `sql_from_where` (a table, with a `WHERE` when wanted:
    /// `users WHERE email = '…'`), counted by the superuser.
    pub async fn count_in(&self, slug: &str, sql_from_where: &str) -> i64 {
        let schema = self.tenant_schema(slug).await;
        self.superuser()
            .await
            .query_one(
                &format!("SELECT count(*) FROM {schema}.{sql_from_where}"),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    pub async fn tenant_count(&self, slug: &str) -> i64 {
        self.superuser()
            .await
            .query_one(
                "SELECT count(*) FROM control.tenants WHERE slug = $1",
                &[&slug],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Polls `check` until it returns true or `limit` passes; how long it took.
    /// For waiting on asynchronous propagation (NOTIFY), not as a timing assertion.
    pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if check().await {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    pub fn kek_file(&self) -> PathBuf {
        self.control.config.kek_file.clone()
    }

    /// Every mail the test SMTP server has stored for the envelope recipient `address`.
    /// Tests use unique addresses ([`unique_address`]), so they never see each other's mail.
    pub fn mails_to(&self, address: &str) -> Vec<ReceivedMail> {
        read_maildir(&self.options.maildir, address)
    }

    /// Waits (polling the Maildir, up to `limit`) until at least one mail for `address` has
    /// arrived; returns all of them. Panics when none arrives in time.
    pub async fn wait_for_mail(&self, address: &str, limit: Duration) -> Vec<ReceivedMail> {
        let arrived =
            Self::eventually(limit, || async { !self.mails_to(address).is_empty() }).await;
        assert!(
            arrived.is_some(),
            "no mail for {address} within {limit:?} in {}",
            self.options.maildir.display()
        );
        self.mails_to(address)
    }
}

/// The first column of every row `sql` returns on `client`.
pub async fn column<T: tokio_postgres::types::FromSqlOwned>(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Vec<T> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Whether schema `schema` exists on the server `client` is connected to.
pub async fn has_schema(client: &tokio_postgres::Client, schema: &str) -> bool {
    client
        .query_one("SELECT to_regnamespace($1) IS NOT NULL", &[&schema])
        .await
        .unwrap()
        .get(0)
}

/// Rows in the records table of tenant `slug`'s schema on the server `client` reaches, or
/// `None` when the schema is not there (the tenant is on another cluster, or was moved).
pub async fn records_on(client: &tokio_postgres::Client, slug: &str) -> Option<i64> {
    let schema = shared::tenant::tenant_schema(&TenantSlug::parse(slug).unwrap());
    if !has_schema(client, schema.as_str()).await {
        return None;
    }
    let sql = format!("SELECT count(*) FROM {}.records", schema.quoted());
    Some(client.query_one(&sql, &[]).await.unwrap().get(0))
}

/// A wrong-password sign-in through `client` for an address nobody has, with the extra header
/// `name: value` (a request id, a forwarding header); its status.
pub async fn failed_sign_in(client: &Client, name: &str, value: &str) -> reqwest::StatusCode {
    client
        .post("/v1/auth/login")
        .header(name, value)
        .json(
            &serde_json::json!({"email": unique_address("nobody"), "password": "not the password"}),
        )
        .send()
        .await
        .unwrap()
        .status()
}

/// A recipient address no other test uses.
pub fn unique_address(label: &str) -> String {
    format!("{label}-{}@mail.tenantry.test", random_hex(6))
}

/// A mail as the test SMTP server stored it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub file: PathBuf,
    /// The SMTP envelope's recipients (aiosmtpd's `X-RcptTo` header).
    pub envelope_to: Vec<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub body: String,
}

fn read_maildir(maildir: &Path, address: &str) -> Vec<ReceivedMail> {
    let needle = address.to_ascii_lowercase();
    let mut mails = Vec::new();
    for folder in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue; // moved or removed meanwhile
            };
            // Cheap filter before parsing: the envelope header holds the address verbatim.
            if !String::from_utf8_lossy(&bytes)
                .to_ascii_lowercase()
                .contains(&needle)
            {
                continue;
            }
            let mail = parse_mail(entry.path(), &bytes);
            if mail
                .envelope_to
                .iter()
                .any(|to| to.to_ascii_lowercase() == needle)
            {
                mails.push(mail);
            }
        }
    }
    mails.sort_by(|a, b| a.file.cmp(&b.file));
    mails
}

fn parse_mail(file: PathBuf, bytes: &[u8]) -> ReceivedMail {
    let message = mail_parser::MessageParser::default()
        .parse(bytes)
        .unwrap_or_else(|| panic!("{} is not a mail", file.display()));
    let text = |header: &str| {
        message
            .header(header)
            .and_then(|value| value.as_text())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let addresses = |address: Option<&mail_parser::Address>| {
        address
            .map(|address| {
                address
                    .iter()
                    .filter_map(|addr| addr.address())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    ReceivedMail {
        envelope_to: text("X-RcptTo")
            .split(',')
            .map(|to| to.trim().to_owned())
            .filter(|to| !to.is_empty())
            .collect(),
        from: addresses(message.from()),
        to: addresses(message.to()),
        subject: message.subject().unwrap_or_default().to_owned(),
        message_id: message.message_id().unwrap_or_default().to_owned(),
        body: message.body_text(0).unwrap_or_default().into_owned(),
        file,
    }
}

/// A data plane on `config`, reading the time from the options' manual clock if any.
fn start_data_plane(config: DataConfig, options: &TestOptions) -> DataPlane {
    let data = DataPlane::new(config).unwrap();
    match &options.clock {
        Some(clock) => data.with_clock(shared::clock::Clock::Manual(clock.clone())),
        None => data,
    }
}

/// The password pepper file of the test run whose KEK file is `kek_file` (`pepper-<suffix>`).
pub fn pepper_file_for(kek_file: &Path) -> PathBuf {
    kek_file.with_file_name(
        kek_file
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .replace("kek-", "pepper-"),
    )
}

pub fn data_config(
    database_url: &str,
    role_prefix: &RolePrefix,
    kek_file: &std::path::Path,
    options: &TestOptions,
) -> DataConfig {
    let pepper_file = pepper_file_for(kek_file);
    let as_data_plane = |url: &str| {
        shared::db::pg_config(url, Some(role_prefix.data_plane_role().as_str())).unwrap()
    };
    let direct = as_data_plane(database_url);
    DataConfig {
        database: match options.via_pgbouncer {
            true => as_data_plane(&through_pgbouncer(database_url)),
            false => direct.clone(),
        },
        listen_database: direct,
        role_prefix: role_prefix.clone(),
        base_domain: BASE_DOMAIN.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        pool_size: options.data_pool_size,
        cluster_pool_size: options.data_pool_size,
        cluster_password_dir: options.cluster_password_dir.clone(),
        trusted_proxies: options.trusted_proxies.clone(),
        egress: options.egress.clone(),
        metrics_listen: None,
        postgres_ca_file: None,
        connection_max_uses: options.connection_max_uses,
        affinity_groups: options.affinity_groups,
        workers: options.data_workers,
        events: event_settings(kek_file, options),
        audit_enabled: options.audit_enabled,
        audit_outbox_recover_after: options.outbox_recover_after,
        shutdown_drain: Duration::ZERO,
        request_deadline: Duration::from_secs(30),
        keep_alive: Duration::from_secs(data_plane::config::DEFAULT_KEEP_ALIVE_SECONDS),
        telemetry_max_body_bytes: 4 << 20,
        tenant_cache_ttl: options.tenant_cache_ttl,
        statement_timeout_ms: 5000,
        kek_file: kek_file.to_owned(),
        password_pepper_file: pepper_file,
        password_hashing: options.password_hashing,
        access_token_ttl: Duration::from_secs(900),
        public_scheme: "https".to_owned(),
        mail: mail_settings(options),
        rate_limit: options.rate_limit,
        max_body_bytes: options.max_body_bytes,
    }
}

fn mail_settings(options: &TestOptions) -> MailSettings {
    let source = ConfigSource::from_pairs(options.smtp_url.as_deref().map(|url| ("smtp_url", url)));
    let mut settings = MailSettings::from_source(&source).unwrap();
    settings.retry_base = options.mail_retry_base;
    settings.retry_cap = options.mail_retry_cap;
    settings
}

/// The Prometheus text a node at `base_url` serves at `/metrics`.
pub async fn metrics_text(http: &reqwest::Client, base_url: &str) -> String {
    http.get(format!("{base_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The count of `tenantry_http_refusals_total` for `status` and `code` in `metrics`.
pub fn refusals_counted(metrics: &str, status: u16, code: &str) -> Option<u64> {
    metric_value(
        metrics,
        &format!("tenantry_http_refusals_total{{code=\"{code}\",status=\"{status}\"}}"),
    )
    .map(|value| value as u64)
}

/// The value of `series` (a name and its labels in name order, as the exposition writes them:
/// `tenantry_rate_limited_total{class="auth"}`) in the `metrics` text.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

// Domain helpers several test modules share (mail, clocks, tokens, settings, audit, the CLI):
// here, so that no test module imports another.

/// `method path` as `caller`, with `body` as JSON if any; whatever the answer (for tables of
/// calls, some with a body).
pub async fn send(
    caller: &Client,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Reply {
    let call = caller.call(method, path);
    match body {
        Some(body) => call.json(&body),
        None => call,
    }
    .send()
    .await
    .unwrap()
}

/// How long a test waits for the test SMTP server to store an expected mail.
pub const MAIL_WAIT: Duration = Duration::from_secs(30);

impl TestApp {
    /// An app whose planes read a manual clock, started 10 seconds into a 30-second TOTP step
    /// near the real time.
    pub async fn spawn_with_clock() -> (TestApp, shared::clock::ManualClock) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let start = time::OffsetDateTime::from_unix_timestamp(now - now % 30 + 10).unwrap();
        let clock = shared::clock::ManualClock::new(start);
        let app = TestApp::spawn_with(TestOptions {
            clock: Some(clock.clone()),
            ..TestOptions::default()
        })
        .await;
        (app, clock)
    }

    /// Signs in at `slug` with a password and returns the session's tokens, for tests about
    /// the tokens themselves (a user without MFA).
    pub async fn sign_in_tokens(&self, slug: &str, email: &str, password: &str) -> client::Tokens {
        match self.tenant(slug).auth().login(email, password).await {
            Ok(client::LoginOutcome::Tokens(tokens)) => tokens,
            Ok(client::LoginOutcome::MfaRequired(_)) => panic!("{email} has MFA at {slug}"),
            Err(error) => panic!("{email} signs in at {slug}: {error}"),
        }
    }

    /// Lets anyone register at `slug` (the tenant's auth policy), for tests of tenants that
    /// have no admin to set it through the settings API.
    pub async fn allow_self_signup(&self, slug: &str) {
        self.superuser()
            .await
            .execute(
                &format!(
                    "INSERT INTO tenant_{slug}.settings (key, value)
                     VALUES ('auth_policy', '{{\"self_signup\": true}}')
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                ),
                &[],
            )
            .await
            .unwrap();
    }

    /// Mails queued for `address` in the outbox of tenant `slug`, sent or not: what the
    /// server decided, without waiting for delivery.
    pub async fn queued_mails(&self, slug: &str, address: &str) -> i64 {
        self.superuser()
            .await
            .query_one(
                &format!(
                    "SELECT count(*) AS queued FROM tenant_{slug}.mail_outbox WHERE to_address = $1"
                ),
                &[&address],
            )
            .await
            .unwrap()
            .try_get("queued")
            .unwrap()
    }

    /// Waits (up to [`MAIL_WAIT`]) for a mail to `address` whose subject contains `subject`.
    pub async fn wait_for_subject(&self, address: &str, subject: &str) -> ReceivedMail {
        let find = || {
            self.mails_to(address)
                .into_iter()
                .find(|mail| mail.subject.contains(subject))
        };
        let arrived = Self::eventually(MAIL_WAIT, || async { find().is_some() }).await;
        assert!(arrived.is_some(), "no mail '{subject}…' for {address}");
        find().unwrap()
    }
}

/// The token of the link to `page` in `mail`, checking the link names tenant `slug`'s site
/// and the token is a whole user token that the subject does not show.
pub fn mailed_token(mail: &ReceivedMail, slug: &str, page: &str) -> String {
    let link = format!("https://{slug}.{BASE_DOMAIN}{page}?token=");
    let start = mail
        .body
        .find(&link)
        .unwrap_or_else(|| panic!("no {link} in {}", mail.body))
        + link.len();
    let token: String = mail.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert!(token.starts_with("tnut_") && token.len() == 48, "{token}");
    assert!(!mail.subject.contains(&token));
    token
}

impl TestApp {
    /// An anonymous client of the first data-plane node naming no tenant: for what is not a
    /// tenant's (`/readyz`, `/metrics`), or names its tenant by host.
    pub fn data_client(&self) -> Client {
        Client::with_http(self.http.clone(), &self.data_url)
    }

    /// The id of tenant `slug` (one not deleted), as text: how audit rows name it.
    pub async fn tenant_id(&self, slug: &str) -> String {
        let id: uuid::Uuid = self
            .superuser()
            .await
            .query_one(
                "SELECT id FROM control.tenants WHERE slug = $1 AND status <> 'deleted'",
                &[&slug],
            )
            .await
            .unwrap()
            .try_get("id")
            .unwrap();
        id.to_string()
    }

    /// Runs the control-plane command line `args` (`["control-plane", "tenant", …]`) against
    /// this app's control plane, as the binary would; what it printed.
    pub async fn run_cli(&self, args: &[&str]) -> anyhow::Result<String> {
        use clap::Parser;
        let cli = control_plane::cli::Cli::try_parse_from(args)?;
        let mut out = Vec::new();
        control_plane::cli::execute(cli.command, &self.control, &mut out).await?;
        Ok(String::from_utf8(out)?)
    }

    /// Audit events of `action` for tenant `tenant_id` stored in ClickHouse: (rows, distinct
    /// ids). Panics when ClickHouse does not answer: a failed query is not "no events".
    pub async fn stored_audit_events(&self, tenant_id: &str, action: &str) -> (u64, u64) {
        self.count_audit_events(tenant_id, action)
            .await
            .unwrap_or_else(|error| panic!("counting `{action}` events in ClickHouse: {error}"))
    }

    async fn count_audit_events(
        &self,
        tenant_id: &str,
        action: &str,
    ) -> Result<(u64, u64), clickhouse::error::Error> {
        self.clickhouse()
            .query(
                "SELECT count(), uniqExact(event_id) FROM audit_log \
                 WHERE tenant_id = ? AND action = ?",
            )
            .bind(tenant_id)
            .bind(action)
            .fetch_one::<(u64, u64)>()
            .await
    }

    /// Waits until ClickHouse holds at least `count` audit events of `action`; then returns
    /// what it holds (rows, distinct ids), so the caller can assert there are no more.
    pub async fn wait_for_audit_events(
        &self,
        tenant_id: &str,
        action: &str,
        count: u64,
        limit: Duration,
    ) -> (u64, u64) {
        // While polling, a ClickHouse that does not answer yet (just restarted) is "not yet".
        let arrived = Self::eventually(limit, || async {
            self.count_audit_events(tenant_id, action)
                .await
                .is_ok_and(|(rows, _)| rows >= count)
        })
        .await;
        let stored = self.stored_audit_events(tenant_id, action).await;
        assert!(
            arrived.is_some(),
            "only {stored:?} of {count} `{action}` events arrived within {limit:?}"
        );
        stored
    }
}
