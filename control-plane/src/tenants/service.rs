//! The rules of the tenant lifecycle. Input arrives here already parsed into validated types;
//! every change a data plane must see is published with `NOTIFY` in its own transaction.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use shared::account_mail::{self, TenantSite};
use shared::catalog::{self, Quotas};
use shared::email::Email;
use shared::mail_outbox;
use shared::secret_token::{SecretToken, USER_TOKEN_PREFIX};
use shared::tenant::{tenant_schema, Tenant, TenantSlug, TenantStatus};
use shared::tenant_context::tenant_settings;
use tokio_postgres::types::Type;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::store;
use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::provisioning::{self, JobState, ProvisionOptions, TenantLock};

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

pub struct CreateTenant {
    pub slug: TenantSlug,
    pub name: Option<TenantName>,
    pub plan: Option<String>,
    /// The tenant's first admin (role `owner`), invited by provisioning; see
    /// [`issue_activation_token`].
    pub admin_email: Option<Email>,
}

/// Creates the catalog row (`provisioning`) and provisions the tenant to `active`.
/// A second create of a live slug, also a concurrent one, is `SlugTaken`.
pub async fn create(
    control: &ControlPlane,
    request: CreateTenant,
    options: ProvisionOptions,
) -> Result<Tenant, ControlError> {
    let plan = request
        .plan
        .unwrap_or_else(|| control.config.default_plan.clone());
    let name = request
        .name
        .map_or_else(|| request.slug.to_string(), |name| name.0);
    let schema = tenant_schema(&request.slug);
    let role = control.config.role_prefix.tenant_role(&request.slug);

    let client = control.pool.get().await?;
    let inserted = store::insert_tenant(
        &client,
        &store::NewTenant {
            id: Uuid::now_v7(),
            slug: request.slug.as_str(),
            name: &name,
            plan: &plan,
            schema: &schema,
            role: &role,
            admin_email: request.admin_email.as_ref().map(Email::as_str),
        },
    )
    .await;
    let tenant = match inserted {
        Ok(tenant) => tenant,
        Err(ControlError::Db(error)) if shared::db::is_unique_violation(&error) => {
            return Err(ControlError::SlugTaken(request.slug.to_string()));
        }
        Err(ControlError::Db(error)) if shared::db::is_foreign_key_violation(&error) => {
            return Err(ControlError::UnknownPlan(plan));
        }
        Err(error) => return Err(error),
    };
    drop(client);
    // `tenant.create` is recorded by the run that activates the tenant (see `provisioning`).
    Ok(provisioning::run(control, &tenant, options).await?.tenant)
}

/// How long a first admin's activation token is good for.
const ACTIVATION_VALID_HOURS: u32 = 7 * 24;

/// A one-time token with which the tenant's first admin (`email`, seeded by provisioning and
/// not yet active) sets a password at `POST /v1/auth/activate`. Valid for 7 days; issuing
/// another one leaves earlier ones valid until they expire or one is used.
///
/// The token is also mailed to the admin: the mail enters the tenant's outbox in the same
/// transaction that stores the token's digest (the token row and the outbox row as the
/// tenant role in its schema, the pending-mail mark as the control plane's own role), so
/// the mail exists exactly when the token does.
pub async fn issue_activation_token(
    control: &ControlPlane,
    tenant: &Tenant,
    email: &Email,
) -> Result<Zeroizing<String>, ControlError> {
    let token = SecretToken::generate(&control.rng, USER_TOKEN_PREFIX)?;
    let site = TenantSite {
        scheme: &control.config.public_scheme,
        slug: tenant.slug.as_str(),
        base_domain: &control.config.base_domain,
        tenant_name: &tenant.name,
    };
    let mail = account_mail::activation(&site, token.as_str(), ACTIVATION_VALID_HOURS);
    let valid_hours = i32::try_from(ACTIVATION_VALID_HOURS).unwrap_or(i32::MAX);

    let mut client = control.pool.get().await?;
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(&tenant_settings(&tenant.schema, &tenant.role))
        .await?;
    let issued = transaction
        .query_typed(
            "INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at)
             SELECT $1, id, 'activation', now() + make_interval(hours => $3)
             FROM users WHERE email = $2 AND status = 'invited'
             RETURNING user_id",
            &[
                (&token.digest(), Type::BYTEA),
                (&email.as_str(), Type::TEXT),
                (&valid_hours, Type::INT4),
            ],
        )
        .await?;
    if issued.is_empty() {
        // Dropping the transaction rolls it back.
        return Err(ControlError::InvalidInput {
            field: "admin_email",
            message: format!("{email} is not an invited user of this tenant"),
        });
    }
    transaction
        .query_typed(
            mail_outbox::INSERT_OUTBOX,
            &[
                (&Uuid::now_v7(), Type::UUID),
                (&email.as_str(), Type::TEXT),
                (&mail.subject, Type::TEXT),
                (&mail.body_text, Type::TEXT),
            ],
        )
        .await?;
    // Back to the control plane's own role (for this transaction only) for the catalog mark.
    transaction
        .batch_execute("SELECT set_config('role', 'none', true)")
        .await?;
    transaction
        .query_typed(
            mail_outbox::MARK_PENDING,
            &[
                (&tenant.id, Type::UUID),
                (&shared::notify::MAIL_PENDING, Type::TEXT),
            ],
        )
        .await?;
    transaction.commit().await?;
    Ok(token.into_text())
}

pub async fn get(control: &ControlPlane, slug: &TenantSlug) -> Result<Tenant, ControlError> {
    let client = control.pool.get().await?;
    catalog::tenant_by_slug(&client, slug)
        .await?
        .ok_or_else(|| ControlError::TenantNotFound(slug.to_string()))
}

pub async fn list(control: &ControlPlane) -> Result<Vec<Tenant>, ControlError> {
    let client = control.pool.get().await?;
    store::list(&client).await
}

/// Everything an operator wants to see about one tenant.
#[derive(Debug, Serialize)]
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

/// Changes to name, plan or status (only `active` <-> `suspended`).
#[derive(Debug, Default)]
pub struct TenantPatch {
    pub name: Option<TenantName>,
    pub plan: Option<String>,
    pub status: Option<TenantStatus>,
}

pub async fn update(
    control: &ControlPlane,
    slug: &TenantSlug,
    patch: TenantPatch,
) -> Result<Tenant, ControlError> {
    let tenant = get(control, slug).await?;
    if let Some(status) = patch.status {
        let allowed = match status {
            TenantStatus::Suspended => tenant.status == TenantStatus::Active,
            TenantStatus::Active => tenant.status == TenantStatus::Suspended,
            _ => false,
        };
        if !allowed && status != tenant.status {
            return Err(ControlError::InvalidTransition {
                from: tenant.status,
                to: status,
            });
        }
    }
    let mut client = control.pool.get().await?;
    if let Some(plan) = &patch.plan {
        if !store::plan_exists(&client, plan).await? {
            return Err(ControlError::UnknownPlan(plan.clone()));
        }
    }
    let transaction = client.transaction().await?;
    store::update_name_and_plan(
        &transaction,
        tenant.id,
        patch.name.as_ref().map(|name| name.0.as_str()),
        patch.plan.as_deref(),
    )
    .await?;
    if let Some(status) = patch.status.filter(|status| *status != tenant.status) {
        let from = [tenant.status];
        if store::set_status(&transaction, tenant.id, &from, status)
            .await?
            .is_none()
        {
            // Changed under us since we read it.
            return Err(ControlError::InvalidTransition {
                from: tenant.status,
                to: status,
            });
        }
    }
    shared::notify::tenant_changed(&transaction, slug.as_str()).await?;
    transaction.commit().await?;
    drop(client);
    let updated = get(control, slug).await?;
    let action = match patch.status.filter(|status| *status != tenant.status) {
        Some(TenantStatus::Suspended) => "tenant.suspend",
        Some(TenantStatus::Active) => "tenant.resume",
        _ => "tenant.update",
    };
    crate::audit::lifecycle(
        control,
        &updated,
        action,
        json!({"plan": patch.plan, "name_changed": patch.name.is_some()}),
    )
    .await;
    Ok(updated)
}

pub async fn suspend(control: &ControlPlane, slug: &TenantSlug) -> Result<Tenant, ControlError> {
    update(
        control,
        slug,
        TenantPatch {
            status: Some(TenantStatus::Suspended),
            ..Default::default()
        },
    )
    .await
}

pub async fn resume(control: &ControlPlane, slug: &TenantSlug) -> Result<Tenant, ControlError> {
    update(
        control,
        slug,
        TenantPatch {
            status: Some(TenantStatus::Active),
            ..Default::default()
        },
    )
    .await
}

/// The answer to a retry (`tenant retry`, `POST /v1/tenants/{slug}/provision`): what it did,
/// and the tenant's details.
#[derive(Debug, Serialize)]
pub struct RetryReport {
    /// `provisioned` (this retry finished the provisioning) or `already_active` (nothing to
    /// do).
    pub outcome: &'static str,
    pub message: String,
    #[serde(flatten)]
    pub details: TenantDetails,
}

/// Finishes an interrupted or failed provisioning; on an active tenant, succeeds doing
/// nothing, so recovery scripts can retry blindly.
pub async fn retry_provisioning(
    control: &ControlPlane,
    slug: &TenantSlug,
) -> Result<RetryReport, ControlError> {
    let tenant = get(control, slug).await?;
    let provisioned = provisioning::retry(control, &tenant).await?;
    let (outcome, message) =
        if !provisioned.activated && provisioned.tenant.status == TenantStatus::Active {
            (
                "already_active",
                format!("tenant {slug} is already active; nothing to do"),
            )
        } else {
            (
                "provisioned",
                format!(
                    "tenant {slug} is {}: provisioning finished",
                    provisioned.tenant.status
                ),
            )
        };
    Ok(RetryReport {
        outcome,
        message,
        details: details(control, slug).await?,
    })
}

/// The tenant's data as JSON: catalog facts plus every table of its schema.
pub async fn export(control: &ControlPlane, slug: &TenantSlug) -> Result<Value, ControlError> {
    let details = details(control, slug).await?;
    let client = control.pool.get().await?;
    let tables = store::export_tables(&client, &details.tenant.schema).await?;
    let exported_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(json!({
        "format": "tenantry-export/1",
        "exported_at": exported_at,
        "tenant": details,
        "tables": tables,
    }))
}

/// Where a deletion hands the tenant's export before dropping anything (e.g. writes a file).
pub type ExportSink<'a> = &'a mut (dyn FnMut(&Value) -> std::io::Result<()> + Send);

/// Deletes a tenant: it stops being served at once (`deleting`), its export is handed to
/// `keep_export` when given (a failure there stops the deletion before anything is
/// dropped), then its schema and role are dropped and its data keys destroyed. Re-running a
/// deletion that stopped half-way finishes it.
pub async fn delete(
    control: &ControlPlane,
    slug: &TenantSlug,
    keep_export: Option<ExportSink<'_>>,
) -> Result<(), ControlError> {
    let tenant = get(control, slug).await?;
    let lock = TenantLock::acquire(&control.pool, tenant.id).await?;
    let outcome = delete_locked(control, &tenant, keep_export).await;
    lock.release().await;
    outcome
}

async fn delete_locked(
    control: &ControlPlane,
    tenant: &Tenant,
    keep_export: Option<ExportSink<'_>>,
) -> Result<(), ControlError> {
    let mut client = control.pool.get().await?;
    let transaction = client.transaction().await?;
    let live = [
        TenantStatus::Provisioning,
        TenantStatus::Failed,
        TenantStatus::Active,
        TenantStatus::Suspended,
        TenantStatus::Deleting,
    ];
    store::set_status(&transaction, tenant.id, &live, TenantStatus::Deleting).await?;
    shared::notify::tenant_changed(&transaction, tenant.slug.as_str()).await?;
    transaction.commit().await?;

    if let Some(keep_export) = keep_export {
        let exported = export(control, &tenant.slug).await?;
        keep_export(&exported).map_err(|error| ControlError::InvalidInput {
            field: "export",
            message: format!("could not write the export, nothing was deleted: {error}"),
        })?;
    }

    // Recorded while the data key (the chain key's parent) still exists.
    crate::audit::lifecycle(control, tenant, "tenant.delete", json!({})).await;
    let transaction = client.transaction().await?;
    store::drop_tenant_storage(&transaction, tenant.id, &tenant.schema, &tenant.role).await?;
    store::set_status(
        &transaction,
        tenant.id,
        &[TenantStatus::Deleting],
        TenantStatus::Deleted,
    )
    .await?;
    shared::notify::tenant_changed(&transaction, tenant.slug.as_str()).await?;
    transaction.commit().await?;
    Ok(())
}

/// Per-tenant overrides of the plan's limits; `None` means "the plan's default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QuotaOverrides {
    pub max_users: Option<i64>,
    pub max_storage_bytes: Option<i64>,
    pub max_api_keys: Option<i64>,
    pub requests_per_second: Option<i32>,
    pub burst: Option<i32>,
    pub events_per_day: Option<i64>,
}

/// A change to quota overrides: an absent field is unchanged, `null` resets the field to the
/// plan's default, a number sets it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaPatch {
    #[serde(default, deserialize_with = "present")]
    pub max_users: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub max_storage_bytes: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub max_api_keys: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    pub requests_per_second: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    pub burst: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    pub events_per_day: Option<Option<i64>>,
}

/// Tells a field given as `null` (Some(None)) from an absent one (None).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

impl QuotaPatch {
    fn validate(&self) -> Result<(), ControlError> {
        let negative = |field: &'static str| ControlError::InvalidInput {
            field,
            message: "must not be negative".to_owned(),
        };
        let checks: [(&'static str, Option<i64>); 6] = [
            ("max_users", self.max_users.flatten()),
            ("max_storage_bytes", self.max_storage_bytes.flatten()),
            ("max_api_keys", self.max_api_keys.flatten()),
            (
                "requests_per_second",
                self.requests_per_second.flatten().map(i64::from),
            ),
            ("burst", self.burst.flatten().map(i64::from)),
            ("events_per_day", self.events_per_day.flatten()),
        ];
        match checks
            .into_iter()
            .find(|(_, value)| value.is_some_and(|value| value < 0))
        {
            Some((field, _)) => Err(negative(field)),
            None => Ok(()),
        }
    }

    fn apply_to(&self, overrides: &mut QuotaOverrides) {
        fn set<T: Copy>(target: &mut Option<T>, change: Option<Option<T>>) {
            if let Some(value) = change {
                *target = value;
            }
        }
        set(&mut overrides.max_users, self.max_users);
        set(&mut overrides.max_storage_bytes, self.max_storage_bytes);
        set(&mut overrides.max_api_keys, self.max_api_keys);
        set(&mut overrides.requests_per_second, self.requests_per_second);
        set(&mut overrides.burst, self.burst);
        set(&mut overrides.events_per_day, self.events_per_day);
    }
}

/// Effective limits and the overrides behind them.
#[derive(Debug, Serialize)]
pub struct QuotaView {
    pub plan: String,
    pub effective: Option<Quotas>,
    pub overrides: QuotaOverrides,
}

pub async fn quotas(control: &ControlPlane, slug: &TenantSlug) -> Result<QuotaView, ControlError> {
    let tenant = get(control, slug).await?;
    let client = control.pool.get().await?;
    Ok(QuotaView {
        effective: catalog::effective_quotas(&client, tenant.id).await?,
        overrides: store::quota_overrides(&client, tenant.id).await?,
        plan: tenant.plan,
    })
}

pub async fn set_quotas(
    control: &ControlPlane,
    slug: &TenantSlug,
    patch: &QuotaPatch,
) -> Result<QuotaView, ControlError> {
    patch.validate()?;
    let tenant = get(control, slug).await?;
    let mut client = control.pool.get().await?;
    let transaction = client.transaction().await?;
    let mut overrides = store::quota_overrides(&transaction, tenant.id).await?;
    patch.apply_to(&mut overrides);
    store::write_quota_overrides(&transaction, tenant.id, &overrides).await?;
    shared::notify::tenant_changed(&transaction, slug.as_str()).await?;
    transaction.commit().await?;
    drop(client);
    let view = quotas(control, slug).await?;
    crate::audit::lifecycle(
        control,
        &tenant,
        "tenant.quota_update",
        serde_json::to_value(&view.overrides).unwrap_or(Value::Null),
    )
    .await;
    Ok(view)
}

pub async fn add_domain(
    control: &ControlPlane,
    slug: &TenantSlug,
    domain: &DomainName,
) -> Result<(), ControlError> {
    let tenant = get(control, slug).await?;
    let mut client = control.pool.get().await?;
    let transaction = client.transaction().await?;
    if !store::insert_domain(&transaction, tenant.id, domain.as_str()).await? {
        return Err(ControlError::DomainTaken(domain.as_str().to_owned()));
    }
    shared::notify::tenant_changed(&transaction, slug.as_str()).await?;
    transaction.commit().await?;
    crate::audit::lifecycle(
        control,
        &tenant,
        "tenant.domain_add",
        json!({"domain": domain.as_str()}),
    )
    .await;
    Ok(())
}

pub async fn remove_domain(
    control: &ControlPlane,
    slug: &TenantSlug,
    domain: &DomainName,
) -> Result<(), ControlError> {
    let tenant = get(control, slug).await?;
    let mut client = control.pool.get().await?;
    let transaction = client.transaction().await?;
    if !store::delete_domain(&transaction, tenant.id, domain.as_str()).await? {
        return Err(ControlError::DomainNotFound(domain.as_str().to_owned()));
    }
    shared::notify::tenant_changed(&transaction, slug.as_str()).await?;
    transaction.commit().await?;
    crate::audit::lifecycle(
        control,
        &tenant,
        "tenant.domain_remove",
        json!({"domain": domain.as_str()}),
    )
    .await;
    Ok(())
}
