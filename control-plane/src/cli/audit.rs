//! `control-plane audit`: the tamper check of a tenant's audit log and retention.

use std::io::Write;

use clap::Subcommand;

use super::{print_json, slug};
use crate::context::ControlPlane;
use crate::tenants::service;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check a tenant's audit log: every chain complete, linked and MAC'd with the tenant's
    /// key, every anchored head present. Fails (exit 1) when anything was altered, removed or
    /// forged.
    Verify {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete audit events and telemetry older than each tenant's retention, and drop month
    /// partitions older than every tenant's.
    Retention {
        #[arg(long)]
        json: bool,
    },
    /// Set a tenant's retention in days (default 365 for audit, 30 for telemetry).
    SetRetention {
        slug: String,
        #[arg(long)]
        audit_days: Option<i32>,
        #[arg(long)]
        telemetry_days: Option<i32>,
    },
}

pub(super) async fn run(
    command: AuditCommand,
    control: &ControlPlane,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { slug: raw, json } => {
            let tenant = service::get(control, &slug(&raw)?).await?;
            let report = crate::audit::verify(control, &tenant).await?;
            if json {
                print_json(out, &report)?;
            } else if report.ok() {
                writeln!(
                    out,
                    "audit log of '{raw}' verifies: {} events in {} streams",
                    report.events, report.streams
                )?;
            } else {
                for problem in &report.problems {
                    writeln!(out, "  {problem}")?;
                }
            }
            if !report.ok() {
                anyhow::bail!(
                    "the audit log of '{raw}' does not verify ({} problem(s))",
                    report.problems.len()
                );
            }
        }
        AuditCommand::Retention { json } => {
            let run = crate::audit::apply_retention(control, control.clock.now()).await?;
            if json {
                print_json(out, &run)?;
            } else {
                writeln!(
                    out,
                    "retention applied to {} tenant(s); partitions dropped: {}",
                    run.tenants,
                    run.partitions_dropped.len()
                )?;
            }
        }
        AuditCommand::SetRetention {
            slug: raw,
            audit_days,
            telemetry_days,
        } => {
            let tenant = service::get(control, &slug(&raw)?).await?;
            let (audit, telemetry) =
                crate::audit::set_retention(control, &tenant, audit_days, telemetry_days).await?;
            writeln!(
                out,
                "'{raw}' keeps audit events {audit} days, telemetry {telemetry} days"
            )?;
        }
    }
    Ok(())
}
