//! The request's context: which tenant, which request, from where. Built once per request by
//! an extractor and passed explicitly to everything that touches tenant data, so no query can
//! run without a tenant.
//!
//! Only `active` tenants get a context. Suspended tenants get 403 `tenant_suspended`; tenants
//! still provisioning, failed or being deleted are not served at all (404, as if absent).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use shared::error::ApiError;
use shared::http::request_id_of;
use shared::tenant::TenantStatus;

use super::registry::ServedTenant;
use super::resolve::{tenant_key, TENANT_HEADER};
use crate::state::DataPlane;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub tenant: Arc<ServedTenant>,
    pub request_id: String,
    pub source_ip: Option<IpAddr>,
}

impl FromRequest for RequestContext {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<DataPlane>>().cloned();
        let host = req
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let header = req
            .headers()
            .get(TENANT_HEADER)
            .map(|value| value.to_str().map(str::to_owned));
        let request_id = request_id_of(req);
        let source_ip = req.peer_addr().map(|address| address.ip());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(&"data plane state missing"))?;
            let header = header
                .transpose()
                .map_err(|_| ApiError::bad_request("invalid_header", "X-Tenant must be ASCII"))?;
            let key = tenant_key(
                host.as_deref(),
                header.as_deref(),
                &state.config.base_domain,
            )?;
            let tenant = state.registry.lookup(&key).await?;
            match tenant {
                Some(tenant) if tenant.tenant.status == TenantStatus::Active => {
                    Ok(RequestContext {
                        tenant,
                        request_id,
                        source_ip,
                    })
                }
                Some(tenant) if tenant.tenant.status == TenantStatus::Suspended => {
                    Err(ApiError::forbidden(
                        "tenant_suspended",
                        format!("tenant '{}' is suspended", tenant.tenant.slug),
                    ))
                }
                _ => Err(ApiError::not_found("tenant_not_found", "no such tenant")),
            }
        })
    }
}
