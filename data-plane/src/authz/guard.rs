//! The route guard: the layer around every declared route's handler that applies the route's
//! declared [`Access`](shared::routes::Access) before the handler runs. A route that is not
//! public gets its [`RequestContext`] built here (tenant, credential), [`decide`]d, and kept
//! in the request's extensions for the handler's extractor, so the work is done once.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use shared::error::ApiError;

use super::{decide, Decision};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// Route middleware (`crate::route_table`): admits the request to its handler or answers
/// 401/403 with the denial.
pub async fn authorize(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(route) = shared::routes::served_by(req.request()) else {
        return Ok(req.error_response(ApiError::internal(&"route guard outside a declared route")));
    };
    if route.policy.access.is_public() {
        return next.call(req).await;
    }
    let Some(state) = req.app_data::<web::Data<DataPlane>>().cloned() else {
        return Ok(req.error_response(ApiError::internal(&"data plane state missing")));
    };
    let context = match req.extract::<RequestContext>().await {
        Ok(context) => context,
        Err(error) => return Ok(req.error_response(error)),
    };
    let parameter = |name: &str| req.match_info().get(name).map(str::to_owned);
    match decide(&state, &context, route.policy.access, parameter).await {
        Ok(Decision::Admit) => {
            req.extensions_mut().insert(context);
            next.call(req).await
        }
        Ok(Decision::Refuse(denial)) => Ok(req.error_response(ApiError::from(denial))),
        Err(error) => Ok(req.error_response(error)),
    }
}
