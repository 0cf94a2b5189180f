//! `control-plane templates`: rolls a template's newest version over every tenant behind it,
//! with progress on stderr and the report on stdout.

use std::io::Write;

use clap::Subcommand;

use super::print_json;
use crate::context::ControlPlane;
use crate::templates::{self, Progress, RolloutOptions};

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Apply the template's newest version to every tenant behind it.
    Migrate {
        /// Tenants migrated at once on each Postgres cluster.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Migrate this many tenants first; stop the roll if any of them fails.
        #[arg(long)]
        canary: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(
    command: TemplatesCommand,
    control: &ControlPlane,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let TemplatesCommand::Migrate {
        concurrency,
        canary,
        json,
    } = command;
    let options = RolloutOptions {
        concurrency,
        canary,
    };
    let report = templates::migrate_all(control, options, |progress| {
        if json {
            return;
        }
        // Progress goes to stderr so stdout stays the report.
        match progress {
            Progress::Started {
                behind,
                target_version,
            } => {
                eprintln!("{behind} tenant(s) behind version {target_version}");
            }
            Progress::Tenant {
                done,
                behind,
                outcome,
            } => match &outcome.error {
                None => eprintln!(
                    "[{done}/{behind}] {} ({}) v{} -> v{}",
                    outcome.slug,
                    outcome.cluster,
                    outcome.from_version,
                    outcome.to_version.unwrap_or_default()
                ),
                Some(error) => {
                    eprintln!(
                        "[{done}/{behind}] {} ({}) FAILED: {error}",
                        outcome.slug, outcome.cluster
                    )
                }
            },
        }
    })
    .await?;
    if json {
        print_json(out, &report)?;
    } else {
        writeln!(
            out,
            "migrated {}, failed {}{}",
            report.migrated.len(),
            report.failed.len(),
            if report.halted_by_canary {
                " (halted: canary failed)"
            } else {
                ""
            }
        )?;
        for (cluster, counts) in &report.clusters {
            writeln!(
                out,
                "  cluster {cluster}: {} behind, {} migrated, {} failed",
                counts.behind, counts.migrated, counts.failed
            )?;
        }
        for failed in &report.failed {
            writeln!(
                out,
                "  {}: {}",
                failed.slug,
                failed.error.as_deref().unwrap_or_default()
            )?;
        }
    }
    if !report.failed.is_empty() {
        anyhow::bail!(
            "{} tenant(s) failed to migrate; re-run to retry them",
            report.failed.len()
        );
    }
    Ok(())
}
