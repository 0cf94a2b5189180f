//! The rules of API keys: authenticating a presented key, and creating, listing, rotating and
//! revoking keys. Admin callers have passed the guard (`api_keys:manage`) already.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::cache::StoredKey;
use super::input::{GracePeriod, IpAllowList, KeyName, Scopes};
use super::key::{self, PresentedKey};
use super::store::{self, KeyView, NewKeyRow};
use super::{ApiKeyError, KeyRefused};
use crate::authz;
use crate::state::DataPlane;
use crate::tenancy::registry::ServedTenant;
use crate::tenancy::{ApiKeyPrincipal, Principal, RequestContext};

/// Draws of a fresh prefix before giving up (60 random bits: a second draw is already rare).
const PREFIX_DRAWS: usize = 3;

fn secret_matches(
    state: &DataPlane,
    tenant_id: Uuid,
    presented: PresentedKey<'_>,
    stored: &StoredKey,
    now: OffsetDateTime,
) -> bool {
    let digest_key = &state.api_keys.digest_key;
    // Both digests are checked, so the time taken says nothing about which one matched.
    let current = key::matches(digest_key, tenant_id, presented, &stored.secret_hash);
    let previous = stored
        .previous_secret
        .as_ref()
        .is_some_and(|(hash, until)| {
            key::matches(digest_key, tenant_id, presented, hash) && *until > now
        });
    current || previous
}

/// The key `text` presented to `tenant` from `source_ip`, if it is one of the tenant's live
/// keys and the address is allowed; counts the use.
pub async fn authenticate(
    state: &DataPlane,
    tenant: &ServedTenant,
    text: &str,
    source_ip: Option<IpAddr>,
) -> Result<Arc<ApiKeyPrincipal>, KeyRefused> {
    let presented = PresentedKey::parse(text).ok_or(KeyRefused::Invalid)?;
    let tenant_id = tenant.tenant.id;
    let cache = &state.api_keys.cache;
    let load = || store::find_by_prefix(&state.tenant_db, &tenant.scope, presented.prefix);
    let now = state.clock.now();
    let mut stored = cache
        .get_or_load(tenant_id, presented.prefix, load())
        .await?
        .ok_or(KeyRefused::Invalid)?;
    if !secret_matches(state, tenant_id, presented, &stored, now) {
        // The key may have been rotated on another node a moment ago, before its NOTIFY
        // reached us: read it once more before refusing.
        cache.forget(tenant_id, presented.prefix).await;
        stored = cache
            .get_or_load(tenant_id, presented.prefix, load())
            .await?
            .ok_or(KeyRefused::Invalid)?;
        if !secret_matches(state, tenant_id, presented, &stored, now) {
            return Err(KeyRefused::Invalid);
        }
    }
    if stored.revoked
        || stored
            .expires_at
            .is_some_and(|expires_at| expires_at <= now)
    {
        return Err(KeyRefused::Invalid);
    }
    if let Some(allowed) = &stored.allowed_ips {
        if !allowed.allows(source_ip) {
            return Err(KeyRefused::IpNotAllowed);
        }
    }
    state
        .api_keys
        .usage
        .record(&tenant.scope, stored.principal.key_id, now);
    Ok(stored.principal.clone())
}

/// A key as an admin asks for it.
pub struct NewKey {
    pub name: KeyName,
    pub scopes: Scopes,
    pub expires_at: Option<OffsetDateTime>,
    pub allowed_ips: Option<IpAllowList>,
}

/// A key with its full text: the one response that shows the secret.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(examples(json!({
    "id": "0193a5c0-1f2e-7b3c-8d4e-5f6a7b8c9d0e",
    "name": "billing-export",
    "prefix": "k7qp2xvmd4ha",
    "scopes": ["records.invoices:read", "telemetry:write"],
    "expires_at": "2027-06-30T00:00:00Z",
    "allowed_ips": ["203.0.113.0/24"],
    "created_by": "0193a5b9-4c2d-7e1f-a3b4-c5d6e7f8a9b0",
    "created_at": "2026-12-06T10:15:00Z",
    "rotated_at": null,
    "previous_secret_expires_at": null,
    "last_used_at": null,
    "use_count": 0,
    "revoked_at": null,
    "status": "active",
    "key": "tnt_k7qp2xvmd4ha_wJx9LOY36giYwZpU08c9kZOY_XlbcbDePRn9RjmpTps"
})))]
pub struct IssuedKey {
    #[serde(flatten)]
    pub view: KeyView,
    /// `tnt_<prefix>_<secret>`; shown this once, never again.
    pub key: String,
}

/// Refuses unless `caller` holds every pattern of `scopes` themself, in force for this request
/// (role-assignment conditions included).
async fn check_caller_holds(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    scopes: &[String],
) -> Result<(), ApiKeyError> {
    let held = authz::in_force(state, context, caller).await?;
    let held: Vec<&str> = held.iter().map(String::as_str).collect();
    let missing: Vec<String> = authz::covered(&held, scopes)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiKeyError::ScopeNotHeld(missing))
    }
}

/// Creates a key for `caller`, within the tenant's `max_api_keys` quota.
pub async fn create(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    new_key: NewKey,
) -> Result<IssuedKey, ApiKeyError> {
    let now = state.clock.now();
    if new_key
        .expires_at
        .is_some_and(|expires_at| expires_at <= now)
    {
        return Err(ApiKeyError::Invalid {
            code: "invalid_expiry",
            message: "expires_at must be in the future".to_owned(),
        });
    }
    check_caller_holds(state, context, caller, new_key.scopes.as_slice()).await?;
    let tenant_id = context.tenant.tenant.id;
    let secret = key::generate_secret(&state.rng)?;
    let id = Uuid::now_v7();
    let limit = context.tenant.quotas.max_api_keys;

    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::lock_for_creation(&mut transaction).await?;
    if store::count_live(&mut transaction, now).await? >= limit {
        return Err(ApiKeyError::QuotaExceeded { limit });
    }
    let mut issued = None;
    for _ in 0..PREFIX_DRAWS {
        let prefix = key::generate_prefix(&state.rng)?;
        let secret_hash = key::digest(&state.api_keys.digest_key, tenant_id, &prefix, &secret);
        let row = NewKeyRow {
            id,
            name: new_key.name.as_str(),
            prefix: &prefix,
            secret_hash: &secret_hash,
            scopes: new_key.scopes.as_slice(),
            allowed_ips: new_key.allowed_ips.as_ref().map(IpAllowList::to_strings),
            expires_at: new_key.expires_at,
            created_by: caller.user_id,
            created_at: now,
        };
        if store::insert(&mut transaction, &row).await? {
            issued = Some(prefix);
            break;
        }
    }
    let prefix = issued.ok_or(ApiKeyError::PrefixExhausted)?;
    let view = store::get(&mut transaction, id, now)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    transaction.commit().await?;
    Ok(IssuedKey {
        view,
        key: key::key_text(&prefix, &secret).to_string(),
    })
}

pub async fn list(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<Vec<KeyView>, ApiKeyError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let keys = store::list(&mut transaction, state.clock.now()).await?;
    transaction.commit().await?;
    Ok(keys)
}

pub async fn get(
    state: &DataPlane,
    context: &RequestContext,
    key_id: Uuid,
) -> Result<KeyView, ApiKeyError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let key = store::get(&mut transaction, key_id, state.clock.now()).await?;
    transaction.commit().await?;
    key.ok_or(ApiKeyError::NotFound)
}

/// Gives the key a new secret; the old one keeps working for `grace`. The caller must hold
/// every scope of the key: whoever holds the new secret acts with it.
pub async fn rotate(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    key_id: Uuid,
    grace: GracePeriod,
) -> Result<IssuedKey, ApiKeyError> {
    let now = state.clock.now();
    let tenant_id = context.tenant.tenant.id;
    let secret = key::generate_secret(&state.rng)?;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let locked = store::lock_key(&mut transaction, key_id)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    if locked.revoked {
        return Err(ApiKeyError::Revoked);
    }
    if locked
        .expires_at
        .is_some_and(|expires_at| expires_at <= now)
    {
        return Err(ApiKeyError::Expired);
    }
    check_caller_holds(state, context, caller, &locked.scopes).await?;
    let secret_hash = key::digest(
        &state.api_keys.digest_key,
        tenant_id,
        &locked.prefix,
        &secret,
    );
    let grace = grace.duration();
    let previous_valid_until = (grace > time::Duration::ZERO).then(|| now + grace);
    store::rotate(
        &mut transaction,
        key_id,
        &secret_hash,
        previous_valid_until,
        now,
    )
    .await?;
    store::notify_changed(&mut transaction, tenant_id, &locked.prefix).await?;
    let view = store::get(&mut transaction, key_id, now)
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    transaction.commit().await?;
    state
        .api_keys
        .cache
        .invalidate(tenant_id, &locked.prefix)
        .await;
    Ok(IssuedKey {
        view,
        key: key::key_text(&locked.prefix, &secret).to_string(),
    })
}

/// Revokes the key at once, on every node (revoking a revoked key changes nothing).
pub async fn revoke(
    state: &DataPlane,
    context: &RequestContext,
    key_id: Uuid,
) -> Result<(), ApiKeyError> {
    let tenant_id = context.tenant.tenant.id;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let prefix = store::revoke(&mut transaction, key_id, state.clock.now())
        .await?
        .ok_or(ApiKeyError::NotFound)?;
    store::notify_changed(&mut transaction, tenant_id, &prefix).await?;
    transaction.commit().await?;
    state.api_keys.cache.invalidate(tenant_id, &prefix).await;
    Ok(())
}
