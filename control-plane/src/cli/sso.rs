//! `control-plane sso`: a tenant's single sign-on providers.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use super::{print_json, slug};
use crate::context::ControlPlane;

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

pub(super) async fn run(
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
