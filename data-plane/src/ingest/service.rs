//! Accepting parsed telemetry: the events/day quota, then the writer's queue.

use actix_web::http::StatusCode;
use shared::error::ApiError;
use shared::events::Event;

use super::quota::Admission;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// Queues `events` for the caller's tenant, or says why not (429 quota, 503 no room).
pub async fn accept(
    state: &DataPlane,
    context: &RequestContext,
    events: Vec<Event>,
) -> Result<usize, ApiError> {
    let count = events.len();
    if count == 0 {
        return Ok(0);
    }
    let tenant = context.tenant.tenant.id;
    let now = state.clock.now().unix_timestamp();
    let day = now.div_euclid(86_400);
    let limit = u64::try_from(context.tenant.quotas.events_per_day).unwrap_or(0);
    let client = state.clickhouse.clone();
    let tenant_text = tenant.to_string();
    let admission = state
        .events_per_day
        .admit(tenant, day, count as u64, limit, || async move {
            let start = u32::try_from(day * 86_400).unwrap_or(0);
            crate::audit::store::telemetry_events_since(&client, &tenant_text, start)
                .await
                .map_err(|error| tracing::warn!(%error, "cannot read today's telemetry count"))
                .ok()
        })
        .await;
    if let Admission::Exceeded { used, limit } = admission {
        let retry_after = (86_400 - now.rem_euclid(86_400)).max(1) as u64;
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "events_quota_exceeded",
            "the tenant's telemetry events for today are used up",
        )
        .with_details(serde_json::json!({
            "quota": "events_per_day",
            "limit": limit,
            "used": used,
            "batch": count,
        }))
        .with_retry_after(retry_after));
    }
    if state.events.send(events).is_err() {
        state.events_per_day.release(tenant, count as u64).await;
        return Err(ApiError::unavailable(
            "ingest_unavailable",
            "this node cannot take telemetry right now; retry shortly",
        ));
    }
    Ok(count)
}
