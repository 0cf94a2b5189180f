//! `GET /v1/admin/usage`: the tenant's use per day, from ClickHouse (audited requests, active
//! users, telemetry events ingested), and its storage now (from its schema).

use serde::Serialize;
use shared::error::ApiError;
use time::{Date, Duration, OffsetDateTime};

use crate::audit::store::{self, DayCount};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// One day's usage (UTC).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[schema(as = UsageDay)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Requests that left an audit event (every state-changing request, and refusals).
    pub requests: u64,
    pub active_users: u64,
    pub events_ingested: u64,
}

/// Usage by day, oldest first, with the storage used and the daily ingestion limit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DailyUsage {
    pub days: Vec<Day>,
    pub storage_bytes: i64,
    pub events_per_day_limit: i64,
}

pub async fn usage(
    state: &DataPlane,
    context: &RequestContext,
    days: u32,
) -> Result<DailyUsage, ApiError> {
    let today = state.clock.now().date();
    let first = today - Duration::days(i64::from(days) - 1);
    let from_seconds = u32::try_from(first.midnight().assume_utc().unix_timestamp()).unwrap_or(0);
    let tenant = context.tenant.tenant.id.to_string();
    let unavailable = |error: store::StoreError| {
        tracing::warn!(%error, "usage query failed");
        ApiError::unavailable(
            "usage_store_unavailable",
            "usage figures are unavailable; retry shortly",
        )
    };
    let client = &state.clickhouse;
    // Concurrently: each has its deadline, so the answer comes within one deadline.
    let (requests, users, ingested) = tokio::join!(
        store::audited_requests_per_day(client, &tenant, from_seconds),
        store::active_users_per_day(client, &tenant, from_seconds),
        store::telemetry_events_per_day(client, &tenant, from_seconds),
    );
    let (requests, users, ingested) = (
        requests.map_err(unavailable)?,
        users.map_err(unavailable)?,
        ingested.map_err(unavailable)?,
    );
    let storage_bytes = super::service::usage(state, context)
        .await
        .map(|usage| usage.storage_bytes.used)?;
    let epoch = OffsetDateTime::UNIX_EPOCH.date();
    let count = |list: &[DayCount], date: Date| {
        let epoch_day = (date - epoch).whole_days();
        list.iter()
            .find(|day| i64::from(day.day) == epoch_day)
            .map_or(0, |day| day.count)
    };
    let out = (0..i64::from(days))
        .map(|offset| {
            let date = first + Duration::days(offset);
            Day {
                date: date.to_string(),
                requests: count(&requests, date),
                active_users: count(&users, date),
                events_ingested: count(&ingested, date),
            }
        })
        .collect();
    Ok(DailyUsage {
        days: out,
        storage_bytes,
        events_per_day_limit: context.tenant.quotas.events_per_day,
    })
}
