//! HTTP for the tenant info endpoint.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::store;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![get_tenant,]
}

/// The tenant's public profile.
#[derive(Serialize, utoipa::ToSchema)]
struct TenantInfo<'a> {
    id: uuid::Uuid,
    slug: &'a str,
    name: &'a str,
    display_name: Option<String>,
    plan: &'a str,
    template_version: i32,
}

#[route(
    get, "/v1/tenant",
    summary = "The tenant's public profile",
    access = Public,
    rate = Read,
    tag = "tenant",
    responses((status = 200, description = "The tenant's public profile", body = TenantInfo)))]
async fn get_tenant(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    // A pool that has no connection in time is 503 `database_unavailable`, not a 500.
    let display_name = store::display_name(&state.tenant_db, &context).await?;
    let tenant = &context.tenant.tenant;
    Ok(HttpResponse::Ok().json(TenantInfo {
        id: tenant.id,
        slug: tenant.slug.as_str(),
        name: &tenant.name,
        display_name,
        plan: &tenant.plan,
        template_version: tenant.template_version,
    }))
}
