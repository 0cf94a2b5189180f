//! The rules of the tenant lifecycle, one module per concept: creating a tenant (and its
//! first admin's activation), its lifecycle (update, suspend, resume, retry, delete), its export,
//! its quotas and its custom domains. Input arrives here already parsed into validated types;
//! every change a data plane must see is published with `NOTIFY` in its own transaction. The
//! SQL is in `tenants::store`.

mod create;
mod domains;
mod export;
mod lifecycle;
mod quotas;

use serde::Serialize;
use shared::catalog::{self, Quotas};
use shared::tenant::{Tenant, TenantSlug};

use super::store;
use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::provisioning::{self, JobState};

pub use super::store::QuotaOverrides;
pub use create::{create, create_and_invite, issue_activation_token, CreateTenant, CreatedTenant};
pub use domains::{add_domain, remove_domain, DomainName};
pub use export::{export, ExportSink, TenantExport};
pub use lifecycle::{
    delete, resume, retry_provisioning, suspend, update, RetryReport, TenantPatch,
};
pub use quotas::{quotas, set_quotas, QuotaPatch, QuotaView};

/// A tenant's display name: 1-200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(input: &str) -> Result<Self, ControlError> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 200 {
            return Err(ControlError::InvalidInput {
                field: "name",
                message: "must be 1 to 200 characters".to_owned(),
            });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ControlError::InvalidInput {
                field: "name",
                message: "must not contain control characters".to_owned(),
            });
        }
        Ok(Self(trimmed.to_owned()))
    }
}

pub async fn get(control: &ControlPlane, slug: &TenantSlug) -> Result<Tenant, ControlError> {
    let client = control.pool.get().await?;
    catalog::tenant_by_slug(&client, slug)
        .await?
        .ok_or_else(|| ControlError::TenantNotFound(slug.to_string()))
}

/// A page of tenants in slug order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantPage {
    pub tenants: Vec<Tenant>,
    /// The slug to pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Most tenants a page may hold.
pub const MAX_PAGE: i64 = 1000;

/// One page of the tenants matching `query` (a slug prefix or part of a name,
/// case-insensitive), in slug order after slug `after`, at most `limit`.
pub async fn search(
    control: &ControlPlane,
    query: &str,
    after: &str,
    limit: i64,
) -> Result<TenantPage, ControlError> {
    let query = query.trim().to_lowercase();
    if query.chars().count() > 100 || after.len() > 100 {
        return Err(ControlError::InvalidInput {
            field: "q",
            message: "a search or `after` is at most 100 characters".to_owned(),
        });
    }
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ControlError::InvalidInput {
            field: "limit",
            message: format!("a page holds 1 to {MAX_PAGE} tenants"),
        });
    }
    let client = control.pool.get().await?;
    let mut tenants = store::search(&client, &query, after, limit + 1).await?;
    let more = tenants.len() as i64 > limit;
    tenants.truncate(usize::try_from(limit).unwrap_or(0));
    let next_after = more
        .then(|| tenants.last().map(|tenant| tenant.slug.to_string()))
        .flatten();
    Ok(TenantPage {
        tenants,
        next_after,
    })
}

pub async fn list(control: &ControlPlane) -> Result<Vec<Tenant>, ControlError> {
    let client = control.pool.get().await?;
    store::list(&client).await
}

/// Everything an operator wants to see about one tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantDetails {
    #[serde(flatten)]
    pub tenant: Tenant,
    pub host: String,
    pub quotas: Option<Quotas>,
    pub domains: Vec<String>,
    pub provisioning: Option<JobState>,
}

pub async fn details(
    control: &ControlPlane,
    slug: &TenantSlug,
) -> Result<TenantDetails, ControlError> {
    let tenant = get(control, slug).await?;
    let client = control.pool.get().await?;
    Ok(TenantDetails {
        host: format!("{}.{}", tenant.slug, control.config.base_domain),
        quotas: catalog::effective_quotas(&client, tenant.id).await?,
        domains: store::domains(&client, tenant.id).await?,
        provisioning: provisioning::job_state(&client, tenant.id).await?,
        tenant,
    })
}
