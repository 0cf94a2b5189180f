//! A ClickHouse server of a test's own, for tests that stop and restart ClickHouse: the shared
//! server on 18123 serves every concurrent test run and must never be stopped.
//!
//! The configuration is derived from the system's `/etc/clickhouse-server/config.xml` the way
//! `deploy/local/lib.sh` derives the shared one: free loopback ports, paths under a temporary
//! directory (removed on drop). The server runs as a child process.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct PrivateClickHouse {
    dir: PathBuf,
    pub http_port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server's loopback ports.
struct Ports {
    http: u16,
    tcp: u16,
    interserver: u16,
}

impl Ports {
    fn free() -> Self {
        Self {
            http: free_port(),
            tcp: free_port(),
            interserver: free_port(),
        }
    }
}

impl PrivateClickHouse {
    /// Starts a new server and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(Ports::free(), None).await
    }

    /// Starts `count` servers, each a shard of cluster `name` (in every one's
    /// `remote_servers`), and waits until each answers.
    pub async fn start_cluster(name: &str, count: usize) -> Vec<Self> {
        let ports: Vec<Ports> = (0..count).map(|_| Ports::free()).collect();
        let shards: String = ports
            .iter()
            .map(|ports| {
                format!(
                    "<shard><replica><host>127.0.0.1</host><port>{}</port></replica></shard>",
                    ports.tcp
                )
            })
            .collect();
        let cluster =
            format!("<yandex><remote_servers><{name}>{shards}</{name}></remote_servers></yandex>");
        let mut servers = Vec::new();
        for ports in ports {
            servers.push(Self::start_with(ports, Some(&cluster)).await);
        }
        servers
    }

    async fn start_with(ports: Ports, cluster: Option<&str>) -> Self {
        let Ports {
            http: http_port,
            tcp: tcp_port,
            interserver: interserver_port,
        } = ports;
        let dir = std::env::temp_dir()
            .join("tenantry-tests")
            .join(format!("clickhouse-{}", uuid::Uuid::new_v4().simple()));
        for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let d = dir.display();
        let config = std::fs::read_to_string("/etc/clickhouse-server/config.xml")
            .expect("ClickHouse is not installed (/etc/clickhouse-server/config.xml)")
            .replace(
                "<http_port>8123</http_port>",
                &format!("<http_port>{http_port}</http_port>"),
            )
            .replace(
                "<tcp_port>9000</tcp_port>",
                &format!("<tcp_port>{tcp_port}</tcp_port>"),
            )
            .replace(
                "<interserver_http_port>9009</interserver_http_port>",
                &format!("<interserver_http_port>{interserver_port}</interserver_http_port>"),
            )
            .replace("<listen_host>::1</listen_host>", "")
            .replace("/var/lib/clickhouse/tmp/", &format!("{d}/tmp/"))
            .replace(
                "/var/lib/clickhouse/user_files/",
                &format!("{d}/user_files/"),
            )
            .replace(
                "/var/lib/clickhouse/format_schemas/",
                &format!("{d}/format_schemas/"),
            )
            .replace(
                "<path>/var/lib/clickhouse/</path>",
                &format!("<path>{d}/data/</path>"),
            )
            .replace("/var/log/clickhouse-server/", &format!("{d}/log/"));
        std::fs::write(dir.join("config.xml"), config).unwrap();
        std::fs::copy("/etc/clickhouse-server/users.xml", dir.join("users.xml")).unwrap();
        if let Some(cluster) = cluster {
            std::fs::create_dir_all(dir.join("config.d")).unwrap();
            std::fs::write(dir.join("config.d/cluster.xml"), cluster).unwrap();
        }
        let mut server = Self {
            dir,
            http_port,
            child: None,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Starts the (stopped) server again on the same ports and data; waits until it answers.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.join("log/stdout.log")).unwrap();
        let child = Command::new("clickhouse-server")
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cannot run clickhouse-server");
        self.child = Some(child);
        let http = reqwest::Client::new();
        let url = format!("{}/ping", self.url());
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(response) = http.get(&url).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "private ClickHouse did not answer within 60 s; see {}",
            self.dir.join("log").display()
        );
    }

    /// Freezes the server (SIGSTOP): it keeps its port, the kernel still accepts connections,
    /// and nothing is ever answered — a hung process, unlike a stopped one.
    /// Returns once every thread of it is stopped, so nothing sent afterwards is answered.
    pub fn freeze(&self) {
        self.signal("-STOP");
        let pid = self.child.as_ref().expect("not running").id();
        let every_thread_stopped = || {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .flatten()
                .all(|task| {
                    let stat =
                        std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                    // The state follows the command name, which is in parentheses.
                    stat.rfind(')')
                        .and_then(|end| stat[end + 1..].split_whitespace().next())
                        .is_some_and(|state| state == "T" || state == "t")
                })
        };
        let started = std::time::Instant::now();
        while !every_thread_stopped() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "ClickHouse did not stop"
            );
            std::thread::yield_now();
        }
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("not running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Kills the server (as a crash or an outage would) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
