//! The `control-plane` command line. `main` parses it and calls [`run`]; tests call
//! [`execute`] with the same parsed commands and read what it printed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use shared::email::Email;
use shared::tenant::{TenantSlug, TenantStatus};

use crate::context::ControlPlane;
use crate::provisioning::ProvisionOptions;
use crate::templates::{self, Progress, RolloutOptions};
use crate::tenants::service::{self, CreateTenant, DomainName, QuotaPatch, TenantName};

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
    /// Create or upgrade the catalog (schema `control`) and the data plane's role.
    Migrate,
    /// Run the operator REST API.
    Serve,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
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

#[derive(Debug, Subcommand)]
pub enum SsoCommand {
    /// Add a provider from a JSON file (`-` for stdin): the body of `POST /v1/admin/sso`,
    /// e.g. {"name": "okta", "provider": {"kind": "oidc", "issuer": …, "client_id": …},
    /// "client_secret": …, "domains": [{"domain": "example.com", "require_sso": true}]}.
    Add {
        slug: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List the tenant's providers (never their secrets).
    List {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a provider (its domain bindings and identity links go with it).
    Remove { slug: String, name: String },
}

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

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Apply the template's newest version to every tenant behind it.
    Migrate {
        /// Tenants migrated at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Migrate this many tenants first; stop the roll if any of them fails.
        #[arg(long)]
        canary: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an operator token; its secret is printed once and stored only hashed.
    Create {
        name: String,
        /// Print only the token.
        #[arg(long)]
        raw: bool,
    },
}

fn slug(raw: &str) -> anyhow::Result<TenantSlug> {
    TenantSlug::parse(raw).with_context(|| format!("'{raw}' is not a valid tenant slug"))
}

fn print_json(out: &mut dyn Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
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
        }
        Command::Serve => anyhow::bail!("`serve` is run by main"),
        Command::Tenant(command) => tenant(command, control, out).await?,
        Command::Templates(TemplatesCommand::Migrate {
            concurrency,
            canary,
            json,
        }) => {
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
                            "[{done}/{behind}] {} v{} -> v{}",
                            outcome.slug,
                            outcome.from_version,
                            outcome.to_version.unwrap_or_default()
                        ),
                        Some(error) => {
                            eprintln!("[{done}/{behind}] {} FAILED: {error}", outcome.slug)
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
        }
        Command::Sso(command) => sso(command, control, out).await?,
        Command::Audit(command) => audit(command, control, out).await?,
        Command::Operator(OperatorCommand::Token(TokenCommand::Create { name, raw })) => {
            let token = crate::operators::create_token(control, &name).await?;
            if raw {
                writeln!(out, "{}", token.as_str())?;
            } else {
                writeln!(
                    out,
                    "operator token '{name}' (shown once, store it now):\n{}",
                    token.as_str()
                )?;
            }
        }
    }
    Ok(())
}

async fn audit(
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
            let run =
                crate::audit::apply_retention(control, time::OffsetDateTime::now_utc()).await?;
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

async fn tenant(
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
                admin_email: admin_email.clone(),
            };
            let tenant = service::create(control, request, ProvisionOptions::default()).await?;
            let activation_token = match &admin_email {
                Some(email) => {
                    Some(service::issue_activation_token(control, &tenant, email).await?)
                }
                None => None,
            };
            let details = service::details(control, &tenant.slug).await?;
            if json {
                let mut value = serde_json::to_value(&details)?;
                if let (Some(token), Some(object)) = (&activation_token, value.as_object_mut()) {
                    object.insert("activation_token".to_owned(), token.as_str().into());
                }
                print_json(out, &value)?;
            } else {
                writeln!(
                    out,
                    "tenant {} is {} (schema {}, role {}, host {})",
                    tenant.slug, tenant.status, tenant.schema, tenant.role, details.host
                )?;
                if let Some(token) = &activation_token {
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
                    let mut write_export = |value: &serde_json::Value| -> std::io::Result<()> {
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

async fn sso(
    command: SsoCommand,
    control: &ControlPlane,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        SsoCommand::Add {
            slug: raw,
            file,
            json,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            // The same rule as the API's body (no key named twice): one document, one reading.
            let input: shared::sso::settings::ProviderInput =
                shared::json_body::parse(text.as_bytes()).context("the provider JSON")?;
            let view = crate::sso::service::add(control, &slug(&raw)?, &input).await?;
            if json {
                print_json(out, &view)?;
            } else {
                writeln!(
                    out,
                    "provider {} ({}) added to tenant {raw}",
                    view.name, view.kind
                )?;
            }
        }
        SsoCommand::List { slug: raw, json } => {
            let providers = crate::sso::service::list(control, &slug(&raw)?).await?;
            if json {
                print_json(out, &providers)?;
            } else {
                for provider in providers {
                    let domains: Vec<String> = provider
                        .domains
                        .iter()
                        .map(|binding| {
                            if binding.require_sso {
                                format!("{} (required)", binding.domain)
                            } else {
                                binding.domain.clone()
                            }
                        })
                        .collect();
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}",
                        provider.name,
                        provider.kind,
                        if provider.enabled {
                            "enabled"
                        } else {
                            "disabled"
                        },
                        domains.join(", ")
                    )?;
                }
            }
        }
        SsoCommand::Remove { slug: raw, name } => {
            crate::sso::service::remove(control, &slug(&raw)?, &name).await?;
            writeln!(out, "provider {name} removed from tenant {raw}")?;
        }
    }
    Ok(())
}
