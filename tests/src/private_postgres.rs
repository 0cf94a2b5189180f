//! A Postgres cluster of a test's own, for tests that stop and start a cluster: the shared
//! clusters (5432, 15433) serve every concurrent test run and must never be stopped.
//!
//! Made the way `deploy/local/lib.sh` makes the second cluster (`start_postgres_cluster`):
//! Debian's `initdb` and `pg_ctl` of the newest installed version, trust on loopback, run as
//! the `postgres` user when the tests run as root. Data under a temporary directory, removed
//! on drop; a free loopback port.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct PrivatePostgres {
    data: PathBuf,
    pub port: u16,
    /// The superuser's password when connections over TCP must give one.
    password: Option<String>,
    running: bool,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Postgres is not installed (/usr/lib/postgresql); run deploy/local/test.sh")
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin").join(name)))
        })
        .filter(|(_, path)| path.exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .unwrap_or_else(|| panic!("no {name} under /usr/lib/postgresql"))
        .1
}

fn as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0)
}

/// Runs a Postgres program as the user who may own a cluster (`postgres` when we are root).
fn run(program: &str, args: &[&str]) {
    let program = pg_bin(program);
    let status = if as_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&program)
            .args(args)
            .stdout(Stdio::null())
            .status()
    } else {
        Command::new(&program)
            .args(args)
            .stdout(Stdio::null())
            .status()
    }
    .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
    assert!(status.success(), "{} {args:?}: {status}", program.display());
}

/// Hands `path` to the user who runs the cluster (`postgres` when we are root).
fn give_to_cluster_owner(path: &std::path::Path) {
    if as_root() {
        let status = Command::new("chown")
            .arg("postgres:")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown postgres {}", path.display());
    }
}

impl PrivatePostgres {
    /// Creates a new cluster that trusts loopback and starts it; returns once it accepts
    /// connections.
    pub async fn start() -> Self {
        Self::create(None).await
    }

    /// Creates a new cluster where every connection over TCP gives a password
    /// (`scram-sha-256`), the superuser's `password`, and starts it.
    pub async fn start_with_password(password: &str) -> Self {
        Self::create(Some(password.to_owned())).await
    }

    async fn create(password: Option<String>) -> Self {
        let data = std::env::temp_dir()
            .join("tenantry-tests")
            .join(format!("postgres-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data).unwrap();
        give_to_cluster_owner(&data);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let path = data.display().to_string();
        let mut args = vec![
            "-D".to_owned(),
            path.clone(),
            "-U".into(),
            "postgres".into(),
        ];
        args.extend(["-E".into(), "UTF8".into(), "--auth-local=trust".into()]);
        if let Some(password) = &password {
            // Beside the data directory, readable by the cluster's owner only.
            let file = data.join("superuser-password");
            std::fs::write(&file, password).unwrap();
            give_to_cluster_owner(&file);
            args.extend([
                "--auth-host=scram-sha-256".into(),
                format!("--pwfile={}", file.display()),
            ]);
        } else {
            args.push("--auth-host=trust".into());
        }
        // initdb wants an empty directory: the data go one level down.
        let data = data.join("data");
        args[1] = data.display().to_string();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run("initdb", &args)
        })
        .await
        .unwrap();
        let mut cluster = Self {
            data,
            port,
            password,
            running: false,
        };
        cluster.resume().await;
        cluster
    }

    /// The superuser URL of database `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        let password = self
            .password
            .as_ref()
            .map(|password| format!(":{password}"))
            .unwrap_or_default();
        format!(
            "postgres://postgres{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Starts the stopped cluster again, on the same port and data.
    pub async fn resume(&mut self) {
        assert!(!self.running, "already running");
        let (path, port) = (self.data.display().to_string(), self.port);
        tokio::task::spawn_blocking(move || {
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {path} -c max_connections=100 \
                 -c fsync=off"
            );
            let log = format!("{path}/server.log");
            run(
                "pg_ctl",
                &["-D", &path, "-l", &log, "-w", "-o", &options, "start"],
            );
        })
        .await
        .unwrap();
        self.running = true;
    }

    /// Stops the cluster as an operator's `pg_ctl stop` does (fast mode: sessions are ended,
    /// the server exits, its port refuses connections). Returns once it is down.
    pub async fn stop(&mut self) {
        assert!(self.running, "not running");
        let path = self.data.display().to_string();
        tokio::task::spawn_blocking(move || {
            run("pg_ctl", &["-D", &path, "-m", "fast", "-w", "stop"])
        })
        .await
        .unwrap();
        self.running = false;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let path = self.data.display().to_string();
            run("pg_ctl", &["-D", &path, "-m", "immediate", "-w", "stop"]);
        }
        if let Some(dir) = self.data.parent() {
            if let Err(error) = std::fs::remove_dir_all(dir) {
                eprintln!("leaving {}: {error}", dir.display());
            }
        }
    }
}
