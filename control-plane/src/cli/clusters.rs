//! `control-plane cluster`: the Postgres clusters tenants are placed on.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use super::print_json;
use crate::clusters::service::{self, ClusterView, NewCluster};
use crate::context::ControlPlane;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Register a cluster, and prepare it (the data plane's role, the audit outbox). Its URL
    /// is read from a file or an environment variable; the catalog keeps only which.
    Add {
        name: String,
        #[arg(long, conflicts_with = "url_env", required_unless_present = "url_env")]
        url_file: Option<PathBuf>,
        #[arg(long)]
        url_env: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the clusters: tenants, database size, connections, whether each answers now.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Place no new tenants on a cluster (its tenants stay).
    Drain { name: String },
    /// Place new tenants on a drained cluster again.
    Undrain { name: String },
    /// Make a cluster the default: the placement policy's fallback and last tie-break.
    SetDefault { name: String },
    /// Place a plan's new tenants on this cluster (unless `tenant create --cluster` says
    /// otherwise); rebalancing leaves them there.
    Pin {
        name: String,
        #[arg(long)]
        plan: String,
    },
    /// Undo `pin`: the plan's new tenants are placed by the policy again.
    Unpin {
        name: String,
        #[arg(long)]
        plan: String,
    },
    /// Plan the moves that empty drained clusters and even out the others' tenant counts
    /// (`--dry-run`), or run them one after another (`--apply`).
    Rebalance {
        #[arg(long, conflicts_with = "apply", required_unless_present = "apply")]
        dry_run: bool,
        #[arg(long)]
        apply: bool,
        #[arg(long)]
        json: bool,
    },
    /// Forget a cluster no tenant is placed on (its databases are left alone).
    Remove { name: String },
}

pub(super) async fn run(
    command: ClusterCommand,
    control: &ControlPlane,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Add {
            name,
            url_file,
            url_env,
            description,
            json,
        } => {
            let input = NewCluster {
                name,
                description,
                url_env,
                url_file: url_file.map(|path| path.display().to_string()),
            };
            let view = service::add(control, &input).await?;
            if json {
                print_json(out, &view)?;
            } else {
                writeln!(out, "cluster {} added and prepared", view.name)?;
            }
        }
        ClusterCommand::List { json } => {
            let clusters = service::list(control).await?;
            if json {
                print_json(out, &clusters)?;
            } else {
                for cluster in &clusters {
                    writeln!(out, "{}", line(cluster))?;
                }
            }
        }
        ClusterCommand::Drain { name } => {
            service::set_drained(control, &name, true).await?;
            writeln!(out, "cluster {name} drained: no new tenants go there")?;
        }
        ClusterCommand::Undrain { name } => {
            service::set_drained(control, &name, false).await?;
            writeln!(out, "cluster {name} takes new tenants again")?;
        }
        ClusterCommand::SetDefault { name } => {
            service::set_default(control, &name).await?;
            writeln!(out, "cluster {name} is the default")?;
        }
        ClusterCommand::Rebalance { apply, json, .. } => {
            let progress = |line: &str| eprintln!("{line}");
            let plan = crate::clusters::rebalance::rebalance(control, apply, &progress).await?;
            if json {
                print_json(out, &plan)?;
            } else {
                for planned in &plan.moves {
                    writeln!(
                        out,
                        "{} {}: {} -> {} ({} KiB)",
                        if apply { "moved" } else { "would move" },
                        planned.tenant,
                        planned.from,
                        planned.to,
                        planned.bytes / 1024
                    )?;
                }
                let counts = |counts: &std::collections::BTreeMap<String, i64>| {
                    counts
                        .iter()
                        .map(|(name, count)| format!("{name} {count}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                writeln!(out, "tenants before: {}", counts(&plan.before))?;
                writeln!(out, "tenants after:  {}", counts(&plan.after))?;
                for name in &plan.unreachable {
                    writeln!(out, "cluster {name} did not answer and was left out")?;
                }
            }
        }
        ClusterCommand::Pin { name, plan } => {
            service::pin_plan(control, &name, &plan).await?;
            writeln!(out, "new tenants of plan {plan} go to cluster {name}")?;
        }
        ClusterCommand::Unpin { name, plan } => {
            service::unpin_plan(control, &name, &plan).await?;
            writeln!(out, "plan {plan} is no longer pinned to cluster {name}")?;
        }
        ClusterCommand::Remove { name } => {
            service::remove(control, &name).await?;
            writeln!(out, "cluster {name} removed")?;
        }
    }
    Ok(())
}

/// One cluster on one line: name, flags, tenants, size, connections.
fn line(cluster: &ClusterView) -> String {
    let flags: Vec<&str> = [
        (cluster.default, "default"),
        (cluster.drained, "drained"),
        (!cluster.reachable, "unreachable"),
    ]
    .into_iter()
    .filter_map(|(set, flag)| set.then_some(flag))
    .collect();
    let size = cluster.database_bytes.map_or_else(
        || "-".to_owned(),
        |bytes| format!("{} MiB", bytes / (1 << 20)),
    );
    let connections = cluster
        .connections
        .map_or_else(|| "-".to_owned(), |count| count.to_string());
    format!(
        "{}\t{}\ttenants {}\tsize {size}\tconnections {connections}\t{}",
        cluster.name,
        if flags.is_empty() {
            "-".to_owned()
        } else {
            flags.join(",")
        },
        cluster.tenants,
        cluster.url,
    )
}
