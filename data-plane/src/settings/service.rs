//! The rules of the tenant's settings: a policy is stored only when it is whole and valid; a
//! key rotation is announced to every node in the transaction that makes it.

use serde::Serialize;

use super::{store, SettingsError};
use crate::identity::policy::AuthPolicy;
use crate::identity::store as identity_store;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub async fn auth_policy(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<AuthPolicy, SettingsError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let policy = identity_store::policy(&mut transaction).await?;
    transaction.commit().await?;
    Ok(policy)
}

/// Replaces the auth policy with `submitted` (JSON as sent): unknown fields, wrong types and
/// values `AuthPolicy::validate` refuses are a 400 with the reason, and nothing changes.
/// Fields left out take their defaults.
pub async fn replace_auth_policy(
    state: &DataPlane,
    context: &RequestContext,
    submitted: serde_json::Value,
) -> Result<AuthPolicy, SettingsError> {
    let policy: AuthPolicy = serde_json::from_value(submitted)
        .map_err(|error| SettingsError::InvalidPolicy(error.to_string()))?;
    policy.validate().map_err(SettingsError::InvalidPolicy)?;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::save_policy(&mut transaction, &policy).await?;
    transaction.commit().await?;
    Ok(policy)
}

/// A rotated signing key.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RotatedSigningKey)]
pub struct Rotated {
    /// The key that signs new tokens from now on.
    pub kid: String,
    /// Every key published in the JWKS now (the new one and those still trusted).
    pub published: Vec<String>,
}

/// Retires the signing key and makes a new one; every node reloads the tenant's keys on
/// commit. Tokens signed by the retired key stay valid until they expire.
pub async fn rotate_signing_key(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<Rotated, SettingsError> {
    let tenant_id = context.tenant.tenant.id;
    let data_keys = state.data_keys.for_tenant(tenant_id).await?;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let kid = state
        .signing_keys
        .rotate(&mut transaction, tenant_id, &data_keys)
        .await?;
    store::announce_keys_rotated(&mut transaction, tenant_id).await?;
    transaction.commit().await?;
    // This node's own notification arrives shortly; do not serve the old key until then.
    state.signing_keys.invalidate(tenant_id).await;
    let keys = state
        .signing_keys
        .for_tenant(&state.tenant_db, &state.data_keys, &context.scope)
        .await?;
    Ok(Rotated {
        kid,
        published: keys.published.iter().map(|key| key.kid.clone()).collect(),
    })
}
