//! A tenant's providers and domain bindings: their SQL (run in the tenant's transaction, by
//! the data plane for tenant admins and by the control plane for the operator) and the one
//! way both planes create, replace, list and delete them.

use ring::rand::SystemRandom;
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::settings::{self, DomainBinding, ProviderInput, StoredSettings};
use super::{secret_context, SsoConfigError as SsoError};
use crate::envelope::DataKey;
use crate::tenant_context::{TenantDbError, TenantTransaction};

/// A stored provider.
pub struct ProviderRow {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub settings: StoredSettings,
    /// The sealed client secret and the data-key version it was sealed with.
    pub client_secret: Option<(Vec<u8>, i32)>,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const PROVIDER_COLUMNS: &str = "id, name, display_name, settings, client_secret,
     secret_key_version, enabled, created_at, updated_at";

fn provider_from_row(row: &tokio_postgres::Row) -> Result<ProviderRow, SsoError> {
    let settings: serde_json::Value = row.get(3);
    let settings: StoredSettings = serde_json::from_value(settings).map_err(|error| {
        SsoError::Invalid(format!("stored provider settings do not parse: {error}"))
    })?;
    let secret: Option<Vec<u8>> = row.get(4);
    let version: Option<i32> = row.get(5);
    Ok(ProviderRow {
        id: row.get(0),
        name: row.get(1),
        display_name: row.get(2),
        settings,
        client_secret: secret.zip(version),
        enabled: row.get(6),
        created_at: row.get(7),
        updated_at: row.get(8),
    })
}

pub async fn providers(transaction: &mut TenantTransaction) -> Result<Vec<ProviderRow>, SsoError> {
    let rows = transaction
        .query_typed(
            &format!("SELECT {PROVIDER_COLUMNS} FROM sso_providers ORDER BY name"),
            &[],
        )
        .await?;
    rows.iter().map(provider_from_row).collect()
}

pub async fn provider_by_name(
    transaction: &mut TenantTransaction,
    name: &str,
) -> Result<Option<ProviderRow>, SsoError> {
    let rows = transaction
        .query_typed(
            &format!("SELECT {PROVIDER_COLUMNS} FROM sso_providers WHERE name = $1"),
            &[(&name, Type::TEXT)],
        )
        .await?;
    rows.first().map(provider_from_row).transpose()
}

pub async fn provider_by_id(
    transaction: &mut TenantTransaction,
    id: Uuid,
) -> Result<Option<ProviderRow>, SsoError> {
    let rows = transaction
        .query_typed(
            &format!("SELECT {PROVIDER_COLUMNS} FROM sso_providers WHERE id = $1"),
            &[(&id, Type::UUID)],
        )
        .await?;
    rows.first().map(provider_from_row).transpose()
}

/// A provider row to write.
pub struct NewProvider<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub kind: &'a str,
    pub display_name: &'a str,
    pub settings: &'a serde_json::Value,
    pub client_secret: Option<(&'a [u8], i32)>,
    pub enabled: bool,
    pub now: OffsetDateTime,
}

/// Inserts a provider; false when the name is taken.
pub async fn insert_provider(
    transaction: &mut TenantTransaction,
    provider: &NewProvider<'_>,
) -> Result<bool, TenantDbError> {
    let (secret, version) = provider.client_secret.unzip();
    let rows = transaction
        .query_typed(
            "INSERT INTO sso_providers (id, name, kind, display_name, settings, client_secret,
                 secret_key_version, enabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (name) DO NOTHING RETURNING id",
            &[
                (&provider.id, Type::UUID),
                (&provider.name, Type::TEXT),
                (&provider.kind, Type::TEXT),
                (&provider.display_name, Type::TEXT),
                (provider.settings, Type::JSONB),
                (&secret, Type::BYTEA),
                (&version, Type::INT4),
                (&provider.enabled, Type::BOOL),
                (&provider.now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Replaces a provider's settings (and its secret when one is given; `keep_secret` keeps the
/// stored one). The kind may change; the id stays, so linked identities stay linked.
pub async fn update_provider(
    transaction: &mut TenantTransaction,
    provider: &NewProvider<'_>,
    keep_secret: bool,
) -> Result<(), TenantDbError> {
    let (secret, version) = provider.client_secret.unzip();
    transaction
        .query_typed(
            "UPDATE sso_providers SET kind = $2, display_name = $3, settings = $4,
                 client_secret = CASE WHEN $7 THEN client_secret ELSE $5 END,
                 secret_key_version = CASE WHEN $7 THEN secret_key_version ELSE $6 END,
                 enabled = $8, updated_at = $9
             WHERE id = $1",
            &[
                (&provider.id, Type::UUID),
                (&provider.kind, Type::TEXT),
                (&provider.display_name, Type::TEXT),
                (provider.settings, Type::JSONB),
                (&secret, Type::BYTEA),
                (&version, Type::INT4),
                (&keep_secret, Type::BOOL),
                (&provider.enabled, Type::BOOL),
                (&provider.now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// Deletes a provider (its domains, transactions and identity links cascade); false when
/// there is none of that name.
pub async fn delete_provider(
    transaction: &mut TenantTransaction,
    name: &str,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "DELETE FROM sso_providers WHERE name = $1 RETURNING id",
            &[(&name, Type::TEXT)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Makes `domains` the provider's bindings. A domain bound to another provider is refused.
pub async fn set_domains(
    transaction: &mut TenantTransaction,
    provider_id: Uuid,
    domains: &[DomainBinding],
) -> Result<(), SsoError> {
    transaction
        .query_typed(
            "DELETE FROM sso_domains WHERE provider_id = $1",
            &[(&provider_id, Type::UUID)],
        )
        .await?;
    for binding in domains {
        let rows = transaction
            .query_typed(
                "INSERT INTO sso_domains (domain, provider_id, require_sso) VALUES ($1, $2, $3)
                 ON CONFLICT (domain) DO NOTHING RETURNING domain",
                &[
                    (&binding.domain, Type::TEXT),
                    (&provider_id, Type::UUID),
                    (&binding.require_sso, Type::BOOL),
                ],
            )
            .await?;
        if rows.is_empty() {
            return Err(SsoError::DomainTaken(binding.domain.clone()));
        }
    }
    Ok(())
}

pub async fn domains_of(
    transaction: &mut TenantTransaction,
    provider_id: Uuid,
) -> Result<Vec<DomainBinding>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT domain, require_sso FROM sso_domains WHERE provider_id = $1 ORDER BY domain",
            &[(&provider_id, Type::UUID)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| DomainBinding {
            domain: row.get(0),
            require_sso: row.get(1),
        })
        .collect())
}

/// Role names that exist in the tenant, of those given.
pub async fn existing_roles(
    transaction: &mut TenantTransaction,
    roles: &[String],
) -> Result<Vec<String>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT name FROM roles WHERE name = ANY($1)",
            &[(&roles, Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// A provider as admins and operators see it (never its secret).
#[derive(Serialize)]
pub struct ProviderView {
    pub id: Uuid,
    pub name: String,
    pub kind: &'static str,
    pub display_name: String,
    pub provider: settings::ProviderKind,
    pub users: settings::UserSettings,
    pub domains: Vec<DomainBinding>,
    pub has_client_secret: bool,
    pub enabled: bool,
    /// Where users start a sign-in; for SAML also the SP metadata.
    pub start_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saml_metadata_path: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

pub async fn view(
    transaction: &mut TenantTransaction,
    provider: ProviderRow,
) -> Result<ProviderView, SsoError> {
    let domains = domains_of(transaction, provider.id).await?;
    let kind = provider.settings.provider.name();
    Ok(ProviderView {
        id: provider.id,
        start_path: format!("/v1/auth/sso/{}/start", provider.name),
        saml_metadata_path: (kind == "saml")
            .then(|| format!("/v1/auth/saml/{}/metadata", provider.name)),
        name: provider.name,
        kind,
        display_name: provider.display_name,
        provider: provider.settings.provider,
        users: provider.settings.users,
        domains,
        has_client_secret: provider.client_secret.is_some(),
        enabled: provider.enabled,
        created_at: provider.created_at,
        updated_at: provider.updated_at,
    })
}

pub async fn list(transaction: &mut TenantTransaction) -> Result<Vec<ProviderView>, SsoError> {
    let rows = providers(transaction).await?;
    let mut views = Vec::with_capacity(rows.len());
    for provider in rows {
        views.push(view(transaction, provider).await?);
    }
    Ok(views)
}

pub async fn get(
    transaction: &mut TenantTransaction,
    name: &str,
) -> Result<ProviderView, SsoError> {
    let provider = provider_by_name(transaction, name)
        .await?
        .ok_or(SsoError::NotFound)?;
    view(transaction, provider).await
}

pub async fn delete(transaction: &mut TenantTransaction, name: &str) -> Result<(), SsoError> {
    if delete_provider(transaction, name).await? {
        Ok(())
    } else {
        Err(SsoError::NotFound)
    }
}

/// Refuses role names that do not exist and `owner` (SSO never makes owners: an IdP
/// compromise must not hand out the tenant).
pub async fn check_roles(
    transaction: &mut TenantTransaction,
    input: &ProviderInput,
) -> Result<(), SsoError> {
    let roles = input.roles();
    if roles.iter().any(|role| role == "owner") {
        return Err(SsoError::Invalid(
            "SSO cannot grant the owner role".to_owned(),
        ));
    }
    let existing = existing_roles(transaction, &roles).await?;
    let unknown: Vec<String> = roles
        .iter()
        .filter(|role| !existing.contains(role))
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(SsoError::UnknownRoles(unknown))
    }
}

/// What sealing a client secret needs: the tenant, its current data key, randomness, time.
pub struct Sealing<'a> {
    pub tenant_id: Uuid,
    pub key_version: i32,
    pub data_key: &'a DataKey,
    pub rng: &'a SystemRandom,
    pub now: OffsetDateTime,
}

/// Creates a provider (`replace` false) or replaces the one named `input.name`, in
/// `transaction` (not committed). The input is validated, its roles checked, the secret
/// sealed with the tenant's data key; an OIDC/OAuth2 provider must end with a secret.
pub async fn save(
    transaction: &mut TenantTransaction,
    input: &ProviderInput,
    replace: bool,
    sealing: Sealing<'_>,
) -> Result<ProviderView, SsoError> {
    input.validate()?;
    let domains = settings::normalise_domains(&input.domains)?;
    let stored = StoredSettings {
        provider: input.provider.clone(),
        users: input.users.clone(),
    };
    let settings_json =
        serde_json::to_value(&stored).map_err(|error| SsoError::Invalid(error.to_string()))?;
    check_roles(transaction, input).await?;
    let existing = provider_by_name(transaction, &input.name).await?;
    let provider_id = match (&existing, replace) {
        (Some(_), false) => return Err(SsoError::Exists),
        (None, true) => return Err(SsoError::NotFound),
        (Some(existing), true) => existing.id,
        (None, false) => Uuid::now_v7(),
    };
    let needs_secret = !matches!(input.provider, settings::ProviderKind::Saml(_));
    let sealed = match (&input.client_secret, needs_secret) {
        (Some(secret), true) => Some(sealing.data_key.seal(
            sealing.rng,
            &secret_context(sealing.tenant_id, provider_id),
            secret.as_bytes(),
        )?),
        _ => None,
    };
    // A SAML provider keeps no secret; a replace without a secret keeps the stored one.
    let keep_secret = needs_secret && sealed.is_none();
    let row = NewProvider {
        id: provider_id,
        name: &input.name,
        kind: input.provider.name(),
        display_name: &input.display_name,
        settings: &settings_json,
        client_secret: sealed
            .as_ref()
            .map(|sealed| (sealed.as_slice(), sealing.key_version)),
        enabled: input.enabled,
        now: sealing.now,
    };
    if replace {
        update_provider(transaction, &row, keep_secret).await?;
    } else if !insert_provider(transaction, &row).await? {
        return Err(SsoError::Exists);
    }
    set_domains(transaction, provider_id, &domains).await?;
    let saved = provider_by_id(transaction, provider_id)
        .await?
        .ok_or(SsoError::NotFound)?;
    if needs_secret && saved.client_secret.is_none() {
        return Err(SsoError::Invalid(format!(
            "a {} provider needs a client_secret",
            input.provider.name()
        )));
    }
    view(transaction, saved).await
}
