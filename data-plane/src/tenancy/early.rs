//! The tenant a request names, resolved before routing for the middleware that must act
//! before any handler (rate limits, CORS).
//!
//! Resolution goes through the cached registry (no database access on a warm cache) and is
//! done at most once per request: the result is kept in the request's extensions. Only an
//! `active` tenant is returned; for anything else (no tenant named, unknown, suspended,
//! catalog unavailable) the middleware steps aside and the handler's `RequestContext`
//! extractor answers with the proper error.

use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use actix_web::HttpMessage;
use shared::tenant::TenantStatus;

use super::registry::ServedTenant;
use super::resolve::{tenant_key, TENANT_HEADER};
use crate::state::DataPlane;

#[derive(Clone)]
struct Resolved(Option<Arc<ServedTenant>>);

/// The active tenant `req` names, if any.
pub async fn active_tenant(req: &ServiceRequest, state: &DataPlane) -> Option<Arc<ServedTenant>> {
    if let Some(resolved) = req.extensions().get::<Resolved>() {
        return resolved.0.clone();
    }
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let key = tenant_key(
        header(actix_web::http::header::HOST.as_str()),
        header(TENANT_HEADER),
        &state.config.base_domain,
    )
    .ok();
    let tenant = match key {
        Some(key) => state
            .registry
            .lookup(&key)
            .await
            .ok()
            .flatten()
            .filter(|served| served.tenant.status == TenantStatus::Active),
        None => None,
    };
    if let Some(served) = &tenant {
        shared::http::record_tenant(served.tenant.slug.as_str());
    }
    req.extensions_mut().insert(Resolved(tenant.clone()));
    tenant
}

/// The tenant [`active_tenant`] resolved for this request earlier, if it did and found one.
pub fn resolved_tenant(request: &actix_web::HttpRequest) -> Option<Arc<ServedTenant>> {
    request
        .extensions()
        .get::<Resolved>()
        .and_then(|resolved| resolved.0.clone())
}
