use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use data_plane::config::Config;
use data_plane::DataPlane;
use shared::config::{config_path, ConfigSource};

/// Tenantry data plane: serves tenants' requests, each in its own schema.
#[derive(Debug, Parser)]
#[command(name = "data-plane", version)]
struct Cli {
    /// TOML configuration file (also TENANTRY_CONFIG); TENANTRY_* variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the tenant API.
    Serve {
        /// HTTP worker threads (overrides `data_workers`; defaults to the number of cores).
        #[arg(long)]
        workers: Option<usize>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shared::observability::init_logging();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let source = ConfigSource::load(config_path(cli.config).as_deref())?;
    let mut config = Config::from_source(&source)?;
    let Command::Serve { workers } = cli.command;
    if let Some(workers) = workers {
        anyhow::ensure!(workers > 0, "--workers must be at least 1");
        config.workers = workers;
    }
    let listen = config.listen;
    let state = DataPlane::new(config)?;
    // Serve even if Postgres is not there yet: /readyz tells, and the listener keeps trying.
    data_plane::server::prepare(&state).await?;
    let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    tracing::info!(address = %listen, "data plane listening");
    data_plane::server::serve(state, listener).await
}
