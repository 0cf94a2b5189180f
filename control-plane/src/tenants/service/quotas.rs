//! A tenant's quotas: overrides of its plan's limits, and the limits in effect.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use shared::catalog::{self, Quotas};
use shared::tenant::TenantSlug;

use super::{get, store, QuotaOverrides};
use crate::context::ControlPlane;
use crate::error::ControlError;
use shared::notify::{notify, Change};

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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuotaView {
    pub plan: String,
    /// The limits in force: each override, or the plan's default.
    pub effective: Option<Quotas>,
    /// The tenant's own limits; `null` fields take the plan's default.
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
    notify(
        &transaction,
        &Change::Tenant {
            slug: slug.as_str().to_owned(),
        },
    )
    .await?;
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
