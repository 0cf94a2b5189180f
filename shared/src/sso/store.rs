//! SQL of a tenant's SSO providers and domain bindings, run in the tenant's transaction (so
//! only ever in the tenant's own schema), by the data plane for tenant admins and by the
//! control plane for the operator.

use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::settings::{DomainBinding, StoredSettings};
use super::SsoConfigError as SsoError;
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
    let settings: serde_json::Value = row.try_get("settings")?;
    let settings: StoredSettings = serde_json::from_value(settings).map_err(|error| {
        SsoError::Invalid(format!("stored provider settings do not parse: {error}"))
    })?;
    let secret: Option<Vec<u8>> = row.try_get("client_secret")?;
    let version: Option<i32> = row.try_get("secret_key_version")?;
    Ok(ProviderRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        settings,
        client_secret: secret.zip(version),
        enabled: row.try_get("enabled")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
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
    rows.iter()
        .map(|row| {
            Ok(DomainBinding {
                domain: row.try_get("domain")?,
                require_sso: row.try_get("require_sso")?,
            })
        })
        .collect()
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
    rows.iter().map(|row| Ok(row.try_get("name")?)).collect()
}
