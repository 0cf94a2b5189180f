//! Custom domains a tenant is served on, beside `<slug>.<base domain>`.

use serde_json::json;
use shared::tenant::TenantSlug;

use super::{get, store};
use crate::context::ControlPlane;
use crate::error::ControlError;
use shared::notify::{notify, Change};

/// A custom domain a tenant is served on, e.g. `app.example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(input: &str, base_domain: &str) -> Result<Self, ControlError> {
        let domain = input.trim().trim_end_matches('.').to_ascii_lowercase();
        let invalid = |message: &str| ControlError::InvalidInput {
            field: "domain",
            message: message.to_owned(),
        };
        if domain.len() > 253 || !domain.contains('.') {
            return Err(invalid(
                "must be a fully qualified host name of at most 253 characters",
            ));
        }
        let labels_ok = domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
        if !labels_ok {
            return Err(invalid(
                "labels must be 1-63 letters, digits or inner hyphens",
            ));
        }
        let base = base_domain.to_ascii_lowercase();
        if domain == base || domain.ends_with(&format!(".{base}")) {
            return Err(invalid(
                "subdomains of the base domain are routed by slug already",
            ));
        }
        Ok(Self(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub async fn add_domain(
    control: &ControlPlane,
    slug: &TenantSlug,
    domain: &DomainName,
) -> Result<(), ControlError> {
    change_domain(control, slug, domain, DomainChange::Add).await
}

pub async fn remove_domain(
    control: &ControlPlane,
    slug: &TenantSlug,
    domain: &DomainName,
) -> Result<(), ControlError> {
    change_domain(control, slug, domain, DomainChange::Remove).await
}

/// Whether a domain is being registered or removed.
#[derive(Clone, Copy)]
enum DomainChange {
    Add,
    Remove,
}

/// Registers or removes `domain` for tenant `slug`: the catalog row and the nodes' cache
/// notification in one transaction, then the lifecycle event.
async fn change_domain(
    control: &ControlPlane,
    slug: &TenantSlug,
    domain: &DomainName,
    change: DomainChange,
) -> Result<(), ControlError> {
    let tenant = get(control, slug).await?;
    let mut client = control.pool.get().await?;
    let transaction = client.transaction().await?;
    let (changed, action) = match change {
        DomainChange::Add => (
            store::insert_domain(&transaction, tenant.id, domain.as_str()).await?,
            "tenant.domain_add",
        ),
        DomainChange::Remove => (
            store::delete_domain(&transaction, tenant.id, domain.as_str()).await?,
            "tenant.domain_remove",
        ),
    };
    if !changed {
        let domain = domain.as_str().to_owned();
        return Err(match change {
            DomainChange::Add => ControlError::DomainTaken(domain),
            DomainChange::Remove => ControlError::DomainNotFound(domain),
        });
    }
    notify(
        &transaction,
        &Change::Tenant {
            slug: slug.as_str().to_owned(),
        },
    )
    .await?;
    transaction.commit().await?;
    crate::audit::lifecycle(control, &tenant, action, json!({"domain": domain.as_str()})).await;
    Ok(())
}
