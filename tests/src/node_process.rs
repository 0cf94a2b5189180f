//! A data-plane node in a process of its own, for the tests that kill or stop one as an
//! operator's fleet would (SIGKILL, SIGTERM) — what an in-process server cannot show.
//!
//! The process is this test binary run again with the name of one ignored test,
//! [`NODE_TEST`], which reads the configuration file named by [`NODE_CONFIG_VAR`] and calls
//! `data_plane::server::serve`, exactly what `data-plane serve` runs. So no extra binary is
//! linked for the tests. The environment is cleared first: a `TENANTRY_*` variable of the
//! test run must not override the node's file.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::TestApp;

/// The ignored test that is the node's body (`tests/api/node_process.rs`).
pub const NODE_TEST: &str = "node_process::serve_a_data_plane_node_from_the_node_config";
/// Names the node's TOML configuration file.
pub const NODE_CONFIG_VAR: &str = "TENANTRY_TEST_NODE_CONFIG";

pub struct NodeProcess {
    child: Child,
    pub url: String,
    pub port: u16,
    /// The node's stdout and stderr: its log, one JSON object a line.
    pub log: PathBuf,
}

/// A port free right now on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NodeProcess {
    /// Starts a node of `app`'s deployment on `port` with `settings` (config keys) added, and
    /// waits until it answers `/healthz`.
    pub async fn start(app: &TestApp, port: u16, settings: &[(&str, String)]) -> NodeProcess {
        let mut node = Self::launch(app, port, settings);
        let http = reqwest::Client::new();
        let up = TestApp::eventually(Duration::from_secs(30), || async {
            http.get(format!("{}/healthz", node.url))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
        })
        .await;
        if up.is_none() {
            node.kill();
            panic!("the node did not come up: {}", node.log_text());
        }
        node
    }

    /// Starts a node as [`Self::start`] does, without waiting for it to answer (for
    /// [`Self::refused`]).
    fn launch(app: &TestApp, port: u16, settings: &[(&str, String)]) -> NodeProcess {
        let kek_file = app.kek_file();
        let pepper_file = crate::pepper_file_for(&kek_file);
        let events = crate::event_settings(&kek_file, &app.options);
        let mut defaults = vec![
            ("database_url", app.database_url.clone()),
            ("role_prefix", app.role_prefix.as_str().to_owned()),
            ("kek_file", kek_file.display().to_string()),
            ("password_pepper_file", pepper_file.display().to_string()),
            ("base_domain", crate::BASE_DOMAIN.to_owned()),
            ("data_listen", format!("127.0.0.1:{port}")),
            ("data_workers", "2".to_owned()),
            ("data_pool_size", "8".to_owned()),
            ("clickhouse_url", events.clickhouse_url.clone()),
            ("clickhouse_database", events.clickhouse_database.clone()),
            ("audit_spool_dir", events.spool_dir.display().to_string()),
            ("shutdown_drain_ms", "0".to_owned()),
        ];
        if let Some(ca_file) = &app.options.clickhouse_ca_file {
            defaults.push(("clickhouse_ca_file", ca_file.display().to_string()));
        }
        if let Some(cluster) = &events.clickhouse_cluster {
            defaults.push(("clickhouse_cluster", cluster.name.clone()));
            defaults.push(("clickhouse_shard_urls", cluster.shard_urls.join(",")));
        }
        let mut config = toml_table(
            &defaults
                .into_iter()
                .filter(|(key, _)| settings.iter().all(|(given, _)| given != key))
                .collect::<Vec<_>>(),
        );
        config.push_str(&toml_table(settings));
        let directory = kek_file.with_file_name(format!("node-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let config_file = directory.join("node.toml");
        std::fs::write(&config_file, config).unwrap();
        let log = directory.join("node.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args([NODE_TEST, "--exact", "--ignored", "--nocapture"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(NODE_CONFIG_VAR, &config_file)
            .env("RUST_LOG", "info")
            .env("TENANTRY_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        NodeProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies at once, whatever it holds in memory.
    pub fn kill(&mut self) {
        // `Child::kill` sends SIGKILL on Unix.
        if self.child.kill().is_ok() {
            self.child.wait().unwrap();
        }
    }

    /// SIGTERM: the node shuts down gracefully.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Launches a node with `settings` that must refuse to start: asserts that it exits
    /// unsuccessfully within 30 s; what it logged.
    pub async fn refused(app: &TestApp, settings: &[(&str, String)]) -> String {
        let mut node = Self::launch(app, free_port(), settings);
        let status = node.exit_status(Duration::from_secs(30)).await;
        assert!(
            status.is_some_and(|status| !status.success()),
            "the node did not refuse to start:\n{}",
            node.log_text()
        );
        node.log_text()
    }

    /// Waits up to `limit` for the process to exit.
    pub async fn exit_status(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn toml_table(settings: &[(&str, String)]) -> String {
    settings
        .iter()
        .map(|(key, value)| format!("{key} = {}\n", toml_string(value)))
        .collect()
}

fn toml_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}
