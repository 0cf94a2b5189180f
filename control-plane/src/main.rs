use std::net::TcpListener;

use anyhow::Context as _;
use clap::Parser;
use control_plane::cli::{Cli, Command};
use control_plane::config::Config;
use control_plane::ControlPlane;
use shared::config::{config_path, ConfigSource};
use shared::template::Template;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shared::observability::init_logging();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let source = ConfigSource::load(config_path(cli.config).as_deref())?;
    let config = Config::from_source(&source)?;
    let control = ControlPlane::new(config, Template::default_template())?;
    match cli.command {
        Command::Serve => {
            let catalog = shared::db::pg_config(&control.config.database_url, None)?;
            shared::db::tls::check_at_start(&catalog)
                .await
                .map_err(anyhow::Error::msg)?;
            shared::events::tls::check_at_start(&control.config.events)
                .await
                .map_err(anyhow::Error::msg)?;
            let listener = TcpListener::bind(control.config.listen)
                .with_context(|| format!("binding {}", control.config.listen))?;
            tracing::info!(address = %control.config.listen, "control plane listening");
            if let Some(address) = control.config.metrics_listen {
                let listener =
                    TcpListener::bind(address).with_context(|| format!("binding {address}"))?;
                let metrics = control.clone();
                tokio::spawn(shared::metrics::serve(listener, move || {
                    metrics.render_metrics()
                })?);
                tracing::info!(%address, "metrics listening");
            }
            control_plane::audit::spawn_retention_job(control.clone());
            control_plane::moves::service::spawn_source_drops(control.clone());
            let served = control_plane::server::build(control.clone(), listener)?.await;
            control.flush_events().await;
            served?;
        }
        command => {
            let outcome = {
                let mut stdout = std::io::stdout().lock();
                control_plane::cli::execute(command, &control, &mut stdout).await
            };
            // Lifecycle events the command queued go to ClickHouse (or the spool) first.
            control.flush_events().await;
            outcome?;
        }
    }
    Ok(())
}
