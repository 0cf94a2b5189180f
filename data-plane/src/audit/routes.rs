//! HTTP for `GET /v1/admin/audit` (`audit:read`, users only) and `GET /v1/admin/usage`
//! (`usage:read`).

use actix_web::{web, HttpResponse};
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::service::{self, AuditQuery};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![list_audit_events, get_daily_usage,]
}

#[route(
    get, "/v1/admin/audit",
    summary = "Search the audit log",
    access = Permission(super::READ),
    rate = Read,
    tag = "audit",
    params(AuditQuery),
    responses((status = 200, description = "A page of the tenant's audit events", body = crate::audit::service::Page), (status = 503, description = "`audit_store_unavailable`: the audit store did not answer in time")))]
async fn list_audit_events(
    context: RequestContext,
    state: web::Data<DataPlane>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = service::filter(query.into_inner(), state.clock.now())?;
    let page = service::page(
        &state.clickhouse,
        &context.tenant.tenant.id.to_string(),
        &filter,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UsageQuery {
    days: Option<String>,
}

#[route(
    get, "/v1/admin/usage",
    summary = "Daily telemetry usage",
    access = UserOrKey("usage:read"),
    rate = Read,
    tag = "audit",
    params(UsageQuery),
    responses((status = 200, description = "Daily telemetry usage", body = crate::usage::daily::DailyUsage), (status = 503, description = "`audit_store_unavailable`: the audit store did not answer in time")))]
async fn get_daily_usage(
    context: RequestContext,
    state: web::Data<DataPlane>,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let days = match query.days.as_deref() {
        None => 30,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|days| (1..=366).contains(days))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_days",
                    "`days` must be a whole number from 1 to 366",
                )
            })?,
    };
    let usage = crate::usage::daily::usage(&state, &context, days).await?;
    Ok(HttpResponse::Ok().json(usage))
}
