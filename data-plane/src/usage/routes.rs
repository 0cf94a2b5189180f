//! HTTP for `GET /v1/usage`.

use actix_web::{web, HttpResponse};
use shared::error::ApiError;

use super::{service, READ};
use crate::authz;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/usage", web::get().to(get_usage));
}

async fn get_usage(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    authz::require_caller(&state, &context, READ).await?;
    let usage = service::usage(&state, &context)
        .await
        .map_err(|error| match error {
            shared::tenant_context::TenantDbError::Pool(_)
            | shared::tenant_context::TenantDbError::Timeout(_) => ApiError::unavailable(
                "database_unavailable",
                "the database is busy or unavailable; retry shortly",
            ),
            other => ApiError::internal(&other),
        })?;
    Ok(HttpResponse::Ok().json(usage))
}
