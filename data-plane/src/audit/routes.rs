//! HTTP for `GET /v1/admin/audit` (`audit:read`, users only) and `GET /v1/admin/usage`
//! (`usage:read`).

use actix_web::{web, HttpResponse};
use shared::error::ApiError;

use super::service::{self, AuditQuery};
use crate::authz;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/audit", web::get().to(list_audit_events))
        .route("/v1/admin/usage", web::get().to(get_daily_usage));
}

async fn list_audit_events(
    context: RequestContext,
    state: web::Data<DataPlane>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, "audit:read").await?;
    let filter = service::filter(query.into_inner(), state.clock.now())?;
    let page = service::page(
        &state.clickhouse,
        &context.tenant.tenant.id.to_string(),
        &filter,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    days: Option<String>,
}

async fn get_daily_usage(
    context: RequestContext,
    state: web::Data<DataPlane>,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    authz::require_caller(&state, &context, "usage:read").await?;
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
