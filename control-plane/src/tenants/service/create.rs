//! Creating a tenant: the catalog row, then provisioning to `active`; and the one-time
//! activation token with which its first admin sets a password. [`create_and_invite`] is the
//! whole of an operator's create, the one flow behind `tenant create` and `POST /v1/tenants`.

use std::fmt;

use serde::{Serialize, Serializer};

use shared::account_mail::{self, TenantSite};
use shared::email::Email;
use shared::secret_token::{SecretToken, USER_TOKEN_PREFIX};
use shared::tenant::{tenant_schema, Tenant, TenantSlug};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{details, store, TenantDetails, TenantName};
use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::provisioning::{self, ProvisionOptions};

pub struct CreateTenant {
    pub slug: TenantSlug,
    pub name: Option<TenantName>,
    pub plan: Option<String>,
    /// The tenant's first admin (role `owner`), invited by provisioning; see
    /// [`issue_activation_token`].
    pub admin_email: Option<Email>,
    /// The cluster to place it on (registered, not drained); the placement policy's choice
    /// when absent (docs/scale-out.md).
    pub cluster: Option<String>,
}

/// What an operator's create answers: the tenant's details and, when a first admin was named,
/// their one-time activation token (shown this once: only its digest is stored).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(examples(json!({
    "id": "0193a5b2-7c4e-7d1a-9f3e-2b8c4d5e6f70",
    "slug": "acme",
    "name": "Acme Corporation",
    "status": "active",
    "plan": "standard",
    "schema": "tenant_acme",
    "role": "tenantry_t_acme",
    "cluster": "primary",
    "template": "default",
    "template_version": 3,
    "created_at": "2026-12-06T09:30:00Z",
    "updated_at": "2026-12-06T09:30:02Z",
    "host": "acme.tenantry.example",
    "quotas": {
        "max_users": 100,
        "max_storage_bytes": 10737418240_i64,
        "max_api_keys": 20,
        "requests_per_second": 100,
        "burst": 200,
        "events_per_day": 10000000
    },
    "domains": [],
    "provisioning": { "last_step": "activate", "state": "done", "attempts": 1, "last_error": null },
    "activation_token": "tnut_gMXbu1AnmrKReTIeqxyUGe7PgP4WEGfU4jrrOGOnJOM"
})))]
pub struct CreatedTenant {
    #[serde(flatten)]
    pub details: TenantDetails,
    /// The first admin's activation token (`POST /v1/auth/activate` on the data plane), when
    /// an admin email was given; shown this once.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_token"
    )]
    #[schema(value_type = Option<String>)]
    pub activation_token: Option<Zeroizing<String>>,
}

/// Serialising is how the token is handed over (once, in the answer); no log sees it.
fn serialize_token<S: Serializer>(
    token: &Option<Zeroizing<String>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    token
        .as_ref()
        .map(|token| token.as_str())
        .serialize(serializer)
}

/// Without the token: a `{:?}` in a log or a failed assertion must not show it.
impl fmt::Debug for CreatedTenant {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CreatedTenant")
            .field("details", &self.details)
            .field(
                "activation_token",
                &self.activation_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// An operator's create, from parsed input to the answer: the tenant is created and provisioned
/// to `active` ([`create`]), then its first admin, when named, gets an activation token
/// ([`issue_activation_token`], which also mails it). The CLI and the REST API only translate
/// their input into a [`CreateTenant`] and the answer into their output.
pub async fn create_and_invite(
    control: &ControlPlane,
    request: CreateTenant,
) -> Result<CreatedTenant, ControlError> {
    let admin_email = request.admin_email.clone();
    let tenant = create(control, request, ProvisionOptions::default()).await?;
    let activation_token = match &admin_email {
        Some(email) => Some(issue_activation_token(control, &tenant, email).await?),
        None => None,
    };
    Ok(CreatedTenant {
        details: details(control, &tenant.slug).await?,
        activation_token,
    })
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

    let cluster =
        crate::clusters::service::placement(control, request.cluster.as_deref(), Some(&plan))
            .await?;
    let client = control.pool.get().await?;
    let inserted = store::insert_tenant(
        &client,
        &store::NewTenant {
            id: Uuid::now_v7(),
            cluster: &cluster,
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
/// transaction that stores the token's digest, so the mail exists exactly when the token does
/// (`store::insert_activation_token`).
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
    let expires_at = control.clock.now() + time::Duration::hours(i64::from(ACTIVATION_VALID_HOURS));

    // In the tenant's schema, with its mail, on the tenant's cluster.
    let mut client = control.clusters.client_of(control, tenant).await?;
    let issued = store::insert_activation_token(
        &mut client,
        tenant,
        &store::NewActivationToken {
            token_digest: token.digest(),
            email: email.as_str(),
            expires_at,
            mail_subject: &mail.subject,
            mail_body: &mail.body_text,
        },
    )
    .await?;
    if !issued {
        return Err(ControlError::InvalidInput {
            field: "admin_email",
            message: format!("{email} is not an invited user of this tenant"),
        });
    }
    Ok(token.into_text())
}
