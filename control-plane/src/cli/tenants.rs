//! `control-plane tenant`: create, list, show, suspend, resume, retry, delete; activation
//! tokens, quotas and custom domains.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use shared::email::Email;
use shared::tenant::TenantStatus;

use super::{print_json, slug};
use crate::context::ControlPlane;
use crate::tenants::service::{self, CreateTenant, DomainName, QuotaPatch, TenantName};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and provision it to `active`.
    Create {
        slug: String,
        /// Display name (defaults to the slug).
        #[arg(long)]
        name: Option<String>,
        /// Plan (free, standard, enterprise; defaults to the configured default plan).
        #[arg(long)]
        plan: Option<String>,
        /// Invite this address as the tenant's first admin (owner); prints a one-time
        /// activation token for `POST /v1/auth/activate` and mails its link to the address.
        #[arg(long)]
        admin_email: Option<String>,
        /// Place it on this cluster (`cluster list`); the default cluster otherwise.
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List live tenants.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant: status, schema, role, quotas, domains, provisioning state.
    Show {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Suspend a tenant: the data plane answers 403 `tenant_suspended`; data is kept.
    Suspend { slug: String },
    /// Resume a suspended tenant.
    Resume { slug: String },
    /// Move a tenant to another cluster while it is served (docs/scale-out.md): its writes are
    /// refused for the copy's time, its reads are served. Run it again to finish a move cut
    /// short; `--cancel` puts back a move that has not switched.
    Move {
        slug: String,
        /// The cluster to move it to (`cluster list`).
        #[arg(long, required_unless_present = "cancel")]
        to: Option<String>,
        /// How long the source schema is kept after the switch, in seconds.
        #[arg(long, default_value_t = 60)]
        grace_seconds: u64,
        /// Cancel a move that has not switched: the tenant stays and takes writes again.
        #[arg(long, conflicts_with = "to")]
        cancel: bool,
        #[arg(long)]
        json: bool,
    },
    /// Finish an interrupted or failed provisioning. On an active tenant it does nothing and
    /// succeeds (so recovery scripts may retry blindly); it tells which happened.
    Retry {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new one-time activation token for an invited user who has not set a password
    /// yet (e.g. a first admin whose mail was lost), and mail its link to them.
    ActivationToken {
        slug: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a tenant: drop its schema and role and destroy its data key.
    Delete {
        slug: String,
        /// Write a JSON export of the tenant's data to this file first.
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Show or change a tenant's quotas (overrides of its plan's defaults).
    Quota(QuotaArgs),
    /// Register or remove a custom domain the data plane serves the tenant on.
    #[command(subcommand)]
    Domain(DomainCommand),
}

#[derive(Debug, Args)]
pub struct QuotaArgs {
    pub slug: String,
    #[arg(long)]
    pub max_users: Option<i64>,
    #[arg(long)]
    pub max_storage_bytes: Option<i64>,
    #[arg(long)]
    pub max_api_keys: Option<i64>,
    #[arg(long)]
    pub requests_per_second: Option<i32>,
    #[arg(long)]
    pub burst: Option<i32>,
    #[arg(long)]
    pub events_per_day: Option<i64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    Add { slug: String, domain: String },
    Remove { slug: String, domain: String },
}

pub(super) async fn run(
    command: TenantCommand,
    control: &ControlPlane,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create {
            slug: raw,
            name,
            plan,
            admin_email,
            cluster,
            json,
        } => {
            let admin_email = admin_email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .context("--admin-email is not a valid email address")?;
            let request = CreateTenant {
                slug: slug(&raw)?,
                name: name.as_deref().map(TenantName::parse).transpose()?,
                plan,
                admin_email,
                cluster,
            };
            let created = service::create_and_invite(control, request).await?;
            if json {
                print_json(out, &created)?;
            } else {
                let details = &created.details;
                let tenant = &details.tenant;
                writeln!(
                    out,
                    "tenant {} is {} (schema {}, role {}, host {})",
                    tenant.slug, tenant.status, tenant.schema, tenant.role, details.host
                )?;
                if let Some(token) = &created.activation_token {
                    writeln!(
                        out,
                        "first admin invited; activation token (shown once): {}",
                        token.as_str()
                    )?;
                }
            }
        }
        TenantCommand::List { json } => {
            let tenants = service::list(control).await?;
            if json {
                print_json(out, &tenants)?;
            } else {
                writeln!(
                    out,
                    "{:<40} {:<13} {:<11} {:>7}  NAME",
                    "SLUG", "STATUS", "PLAN", "VERSION"
                )?;
                for tenant in tenants {
                    writeln!(
                        out,
                        "{:<40} {:<13} {:<11} {:>7}  {}",
                        tenant.slug,
                        tenant.status,
                        tenant.plan,
                        tenant.template_version,
                        tenant.name
                    )?;
                }
            }
        }
        TenantCommand::Show { slug: raw, json } => {
            let details = service::details(control, &slug(&raw)?).await?;
            if json {
                print_json(out, &details)?;
            } else {
                let tenant = &details.tenant;
                writeln!(out, "slug:      {}\nid:        {}\nname:      {}\nstatus:    {}\nplan:      {}\nschema:    {}\nrole:      {}\nhost:      {}\ntemplate:  {} v{}", tenant.slug, tenant.id, tenant.name, tenant.status, tenant.plan, tenant.schema, tenant.role, details.host, tenant.template, tenant.template_version)?;
                if !details.domains.is_empty() {
                    writeln!(out, "domains:   {}", details.domains.join(", "))?;
                }
                if let Some(job) = &details.provisioning {
                    writeln!(
                        out,
                        "provisioning: {} after step {} (attempts {}){}",
                        job.state,
                        job.last_step,
                        job.attempts,
                        job.last_error
                            .as_deref()
                            .map(|error| format!(": {error}"))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
        TenantCommand::Suspend { slug: raw } => {
            let tenant = service::suspend(control, &slug(&raw)?).await?;
            writeln!(out, "tenant {} is {}", tenant.slug, tenant.status)?;
        }
        TenantCommand::Resume { slug: raw } => {
            let tenant = service::resume(control, &slug(&raw)?).await?;
            writeln!(out, "tenant {} is {}", tenant.slug, tenant.status)?;
        }
        TenantCommand::Move {
            slug: raw,
            to,
            grace_seconds,
            cancel,
            json,
        } => {
            let slug = slug(&raw)?;
            let report = match (cancel, to) {
                (true, _) => crate::moves::service::cancel(control, &slug).await?,
                (false, Some(to)) => {
                    let options = crate::moves::service::MoveOptions {
                        grace: std::time::Duration::from_secs(grace_seconds),
                        interrupt_after: None,
                    };
                    // Progress goes to stderr, the report to `out`.
                    let progress = |line: &str| eprintln!("{line}");
                    crate::moves::service::move_tenant(control, &slug, &to, &options, &progress)
                        .await?
                }
                (false, None) => anyhow::bail!("give --to <cluster> or --cancel"),
            };
            if json {
                print_json(out, &report)?;
            } else {
                writeln!(
                    out,
                    "tenant {}: {} ({} -> {}), {} rows in {} tables copied, {} caught up, {} ms{}",
                    report.tenant,
                    report.step,
                    report.source,
                    report.target,
                    report.rows,
                    report.tables,
                    report.caught_up,
                    report.total_ms,
                    report
                        .freeze_ms
                        .map(|ms| format!(", writes refused for {ms} ms"))
                        .unwrap_or_default()
                )?;
            }
        }
        TenantCommand::Retry { slug: raw, json } => {
            let report = service::retry_provisioning(control, &slug(&raw)?).await?;
            if json {
                print_json(out, &report)?;
            } else {
                writeln!(out, "{}", report.message)?;
            }
        }
        TenantCommand::ActivationToken {
            slug: raw,
            email,
            json,
        } => {
            let email = Email::parse(&email).context("--email is not a valid email address")?;
            let tenant = service::get(control, &slug(&raw)?).await?;
            anyhow::ensure!(
                tenant.status == TenantStatus::Active,
                "tenant {} is {}; activation tokens are issued for active tenants",
                tenant.slug,
                tenant.status
            );
            let token = service::issue_activation_token(control, &tenant, &email).await?;
            if json {
                print_json(
                    out,
                    &serde_json::json!({ "activation_token": token.as_str() }),
                )?;
            } else {
                writeln!(out, "activation token (shown once): {}", token.as_str())?;
            }
        }
        TenantCommand::Delete { slug: raw, export } => {
            let slug = slug(&raw)?;
            match export {
                Some(path) => {
                    let mut write_export = |value: &service::TenantExport| -> std::io::Result<()> {
                        let mut file = std::fs::File::create(&path)?;
                        serde_json::to_writer_pretty(&mut file, value)?;
                        file.sync_all()
                    };
                    service::delete(control, &slug, Some(&mut write_export)).await?;
                    writeln!(
                        out,
                        "tenant {slug} deleted; export written to {}",
                        path.display()
                    )?;
                }
                None => {
                    service::delete(control, &slug, None).await?;
                    writeln!(out, "tenant {slug} deleted")?;
                }
            }
        }
        TenantCommand::Quota(args) => {
            let slug = slug(&args.slug)?;
            let patch = QuotaPatch {
                max_users: args.max_users.map(Some),
                max_storage_bytes: args.max_storage_bytes.map(Some),
                max_api_keys: args.max_api_keys.map(Some),
                requests_per_second: args.requests_per_second.map(Some),
                burst: args.burst.map(Some),
                events_per_day: args.events_per_day.map(Some),
            };
            let changes = [
                args.max_users,
                args.max_storage_bytes,
                args.max_api_keys,
                args.events_per_day,
            ]
            .iter()
            .any(Option::is_some)
                || args.requests_per_second.is_some()
                || args.burst.is_some();
            let view = if changes {
                service::set_quotas(control, &slug, &patch).await?
            } else {
                service::quotas(control, &slug).await?
            };
            if args.json {
                print_json(out, &view)?;
            } else if let Some(quotas) = &view.effective {
                writeln!(out, "plan {}\nmax_users {}\nmax_storage_bytes {}\nmax_api_keys {}\nrequests_per_second {}\nburst {}\nevents_per_day {}", view.plan, quotas.max_users, quotas.max_storage_bytes, quotas.max_api_keys, quotas.requests_per_second, quotas.burst, quotas.events_per_day)?;
            }
        }
        TenantCommand::Domain(DomainCommand::Add { slug: raw, domain }) => {
            let domain = DomainName::parse(&domain, &control.config.base_domain)?;
            service::add_domain(control, &slug(&raw)?, &domain).await?;
            writeln!(out, "domain {} now serves tenant {raw}", domain.as_str())?;
        }
        TenantCommand::Domain(DomainCommand::Remove { slug: raw, domain }) => {
            let domain = DomainName::parse(&domain, &control.config.base_domain)?;
            service::remove_domain(control, &slug(&raw)?, &domain).await?;
            writeln!(out, "domain {} removed from tenant {raw}", domain.as_str())?;
        }
    }
    Ok(())
}
