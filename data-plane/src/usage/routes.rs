//! HTTP for `GET /v1/usage`.

use actix_web::{web, HttpResponse};
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::{service, READ};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![get_usage,]
}

#[route(
    get, "/v1/usage",
    summary = "Usage against quotas",
    access = UserOrKey(READ),
    rate = Read,
    tag = "usage",
    responses((status = 200, description = "The tenant's usage against its quotas", body = crate::usage::service::Usage)))]
async fn get_usage(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let usage = service::usage(&state, &context).await?;
    Ok(HttpResponse::Ok().json(usage))
}
