//! The `control-plane` command line. `main` parses [`Cli`], runs `serve` itself and hands every
//! other command to [`execute`]; tests call [`execute`] with the same parsed commands and read
//! what it printed. Each subcommand's arguments and what it prints live in the module of its
//! concept; the rules are the services'.

mod audit;
mod clusters;
mod operators;
mod sso;
mod templates;
mod tenants;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use shared::tenant::TenantSlug;

use crate::context::ControlPlane;

pub use audit::AuditCommand;
pub use clusters::ClusterCommand;
pub use operators::{OperatorCommand, TokenCommand};
pub use sso::SsoCommand;
pub use templates::TemplatesCommand;
pub use tenants::{DomainCommand, QuotaArgs, TenantCommand};

/// Tenantry control plane: provisions and manages tenants.
#[derive(Debug, Parser)]
#[command(name = "control-plane", version)]
pub struct Cli {
    /// TOML configuration file (also TENANTRY_CONFIG); TENANTRY_* variables override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the catalog (schema `control`) and the data plane's role, and
    /// prepare every registered cluster again.
    Migrate,
    /// Run the operator REST API.
    Serve,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage the Postgres clusters tenants are placed on.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Roll tenant template versions over all tenants.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Manage operator credentials.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Manage a tenant's single sign-on providers (OIDC, OAuth2, SAML).
    #[command(subcommand)]
    Sso(SsoCommand),
    /// The audit log in ClickHouse: tamper check and retention.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// Runs every command but `serve` (which `main` runs, since it never returns).
pub async fn execute(
    command: Command,
    control: &ControlPlane,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            control.migrate().await?;
            writeln!(
                out,
                "catalog migrated; template '{}' at version {}",
                control.template.name,
                control.template.latest_version()
            )?;
            // Every cluster is tried; one that fails is named and fails the command.
            let mut failed = Vec::new();
            for (name, outcome) in crate::clusters::service::prepare_all(control).await? {
                match outcome {
                    Ok(()) => writeln!(out, "cluster {name} prepared")?,
                    Err(error) => {
                        writeln!(out, "cluster {name} NOT prepared: {error}")?;
                        failed.push(name);
                    }
                }
            }
            if !failed.is_empty() {
                anyhow::bail!("clusters not prepared: {}", failed.join(", "));
            }
        }
        Command::Serve => anyhow::bail!("`serve` is run by main"),
        Command::Tenant(command) => tenants::run(command, control, out).await?,
        Command::Cluster(command) => clusters::run(command, control, out).await?,
        Command::Templates(command) => templates::run(command, control, out).await?,
        Command::Sso(command) => sso::run(command, control, out).await?,
        Command::Audit(command) => audit::run(command, control, out).await?,
        Command::Operator(command) => operators::run(command, control, out).await?,
    }
    Ok(())
}

fn slug(raw: &str) -> anyhow::Result<TenantSlug> {
    TenantSlug::parse(raw).with_context(|| format!("'{raw}' is not a valid tenant slug"))
}

fn print_json(out: &mut dyn Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
