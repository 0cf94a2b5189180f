//! A tenant's providers and domain bindings: the one way both planes create, replace, list
//! and delete them (their SQL is in [`super::store`]).

use ring::rand::SystemRandom;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::settings::{self, DomainBinding, ProviderInput, StoredSettings};
use super::{secret_context, SsoConfigError as SsoError};
use crate::envelope::DataKey;
use crate::tenant_context::TenantTransaction;

use super::store::{
    delete_provider, domains_of, existing_roles, insert_provider, provider_by_id, provider_by_name,
    providers, set_domains, update_provider, NewProvider, ProviderRow,
};

/// A provider as admins and operators see it (never its secret).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    pub id: Uuid,
    pub name: String,
    /// `oidc`, `oauth2` or `saml` (as `provider.kind`).
    pub kind: &'static str,
    pub display_name: String,
    pub provider: settings::ProviderKind,
    pub users: settings::UserSettings,
    pub domains: Vec<DomainBinding>,
    pub has_client_secret: bool,
    /// With `private_key_jwt`: where the public key the IdP checks our token requests with is
    /// published (a JWKS; public, so the IdP can fetch it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_jwks_path: Option<String>,
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

/// A tenant's providers, as `GET /v1/admin/sso` (data plane) and
/// `GET /v1/tenants/{slug}/sso` (control plane) answer them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ProviderView>,
}

pub async fn view(
    transaction: &mut TenantTransaction,
    provider: ProviderRow,
) -> Result<ProviderView, SsoError> {
    let domains = domains_of(transaction, provider.id).await?;
    let kind = provider.settings.provider.name();
    let client_key = provider.settings.provider.uses_client_key();
    Ok(ProviderView {
        client_jwks_path: client_key.then(|| format!("/v1/auth/sso/{}/jwks", provider.name)),
        has_client_secret: provider.client_secret.is_some()
            && provider.settings.provider.own_key().is_none(),
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
    // A key of ours (private_key_jwt, signed AuthnRequests) is sealed where a secret would be:
    // kept across a replace that keeps needing it, made anew otherwise.
    let own_key = input.provider.own_key();
    let had_own_key = existing
        .as_ref()
        .and_then(|existing| existing.settings.provider.own_key());
    if had_own_key == Some(settings::OwnKey::ClientAssertion)
        && own_key.is_none()
        && needs_secret
        && input.client_secret.is_none()
    {
        return Err(SsoError::Invalid(
            "leaving private_key_jwt needs the client_secret the IdP now expects".to_owned(),
        ));
    }
    let keep_key = own_key.is_some() && had_own_key == own_key;
    let credential = match (&input.client_secret, own_key) {
        (_, Some(_)) if keep_key => None,
        (_, Some(kind)) => Some(zeroize::Zeroizing::new(new_own_key(kind, &input.name)?)),
        (Some(secret), None) if needs_secret => Some(zeroize::Zeroizing::new(secret.clone())),
        _ => None,
    };
    let sealed = match credential {
        Some(credential) => Some(sealing.data_key.seal(
            sealing.rng,
            &secret_context(sealing.tenant_id, provider_id),
            credential.as_bytes(),
        )?),
        None => None,
    };
    // A replace without a new secret keeps the stored one (or key); a SAML provider without a
    // key of ours keeps nothing.
    let keep_secret = sealed.is_none() && (keep_key || (needs_secret && own_key.is_none()));
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

/// A new RSA-2048 private key (PKCS#8 PEM) for provider `name`; for SAML followed by its
/// self-signed certificate (PEM, ten years: IdPs pin it from our metadata, they do not check
/// a chain).
fn new_own_key(kind: settings::OwnKey, name: &str) -> Result<String, SsoError> {
    let failed =
        |error: openssl::error::ErrorStack| SsoError::Invalid(format!("making a key: {error}"));
    let rsa = openssl::rsa::Rsa::generate(2048).map_err(failed)?;
    let key = openssl::pkey::PKey::from_rsa(rsa).map_err(failed)?;
    let mut pem = key.private_key_to_pem_pkcs8().map_err(failed)?;
    if kind == settings::OwnKey::SamlKey {
        pem.extend(self_signed_certificate(&key, name).map_err(failed)?);
    }
    String::from_utf8(pem).map_err(|_| SsoError::Invalid("the key is not PEM".to_owned()))
}

fn self_signed_certificate(
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    name: &str,
) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    use openssl::asn1::Asn1Time;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let mut subject = X509NameBuilder::new()?;
    subject.append_entry_by_text("CN", &format!("tenantry SAML SP {name}"))?;
    let subject = subject.build();
    let mut serial = openssl::bn::BigNum::new()?;
    serial.rand(128, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&subject)?;
    builder.set_issuer_name(&subject)?;
    builder.set_pubkey(key)?;
    builder.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    builder.set_not_after(&*Asn1Time::days_from_now(3650)?)?;
    builder.sign(key, openssl::hash::MessageDigest::sha256())?;
    builder.build().to_pem()
}
