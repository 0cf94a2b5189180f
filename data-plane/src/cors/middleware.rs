//! CORS on the wire: answers preflights and marks the responses of allowed origins.
//!
//! - Every response carries `Vary: Origin` (what it says depends on the origin).
//! - A request without `Origin`, or for no active tenant, is left alone: no policy lookup.
//! - A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is
//!   answered here with 204, the origin echoed, and the methods and headers the API accepts;
//!   from any other origin with 403 `cors_origin_not_allowed` and no CORS headers.
//! - Any other request from an allowed origin gets `Access-Control-Allow-Origin` (the origin
//!   itself, never `*`) and the response headers scripts may read; from any other origin
//!   nothing, so the browser withholds the response from the page.
//!
//! Browsers send no custom headers on a preflight, so an app served cross-origin names the
//! tenant by host (`<slug>.<base domain>` or a custom domain), not by `X-Tenant`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use shared::error::ApiError;

use crate::state::DataPlane;
use crate::tenancy::early::active_tenant;

const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
const ALLOWED_HEADERS: &str =
    "authorization, content-type, if-match, if-none-match, x-api-key, x-request-id";
const EXPOSED_HEADERS: &str = "x-request-id, x-ratelimit-limit, x-ratelimit-remaining, \
     x-ratelimit-reset, retry-after, etag, location";
/// How long a browser may reuse a preflight's answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";

/// Middleware: per-tenant CORS.
pub async fn apply(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let state = req.app_data::<web::Data<DataPlane>>().cloned();
    let (Some(origin), Some(state)) = (origin, state) else {
        return pass(req, next).await;
    };
    let Some(tenant) = active_tenant(&req, &state).await else {
        return pass(req, next).await;
    };
    let allowed = match state.cors.policy(&state.tenant_db, &tenant.scope).await {
        Ok(policy) => policy.allows(&origin),
        Err(error) => {
            tracing::warn!(%error, tenant = %tenant.tenant.slug, "CORS policy unavailable");
            false
        }
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = if allowed {
            let mut response = req.into_response(HttpResponse::NoContent().finish());
            let headers = response.headers_mut();
            allow_origin(headers, &origin);
            for (name, value) in [
                (header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS),
                (header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS),
                (header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
            response
        } else {
            req.error_response(ApiError::forbidden(
                "cors_origin_not_allowed",
                "this origin may not call this tenant's API",
            ))
        };
        vary(response.headers_mut());
        return Ok(response);
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    if allowed {
        allow_origin(headers, &origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    vary(headers);
    Ok(response)
}

async fn pass(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut response = next.call(req).await?.map_into_boxed_body();
    vary(response.headers_mut());
    Ok(response)
}

fn allow_origin(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
}

fn vary(headers: &mut HeaderMap) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}
