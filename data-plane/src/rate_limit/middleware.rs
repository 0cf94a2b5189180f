//! Where the limits are enforced: a layer around every declared route, and the API-key check
//! that `RequestContext` calls once it has authenticated a key.
//!
//! A refused request is answered here with 429 and never reaches its handler or the
//! database. Every response of an active tenant (admitted or not, success or error) carries
//! `X-RateLimit-Limit` (the burst), `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds
//! until the bucket is full again) of the limiter with the least room left.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use shared::catalog::Quotas;
use shared::error::ApiError;
use uuid::Uuid;

use super::{Decision, RateClass};
use crate::state::DataPlane;
use crate::tenancy::early::active_tenant;

pub const LIMIT_HEADER: &str = "x-ratelimit-limit";
pub const REMAINING_HEADER: &str = "x-ratelimit-remaining";
pub const RESET_HEADER: &str = "x-ratelimit-reset";

/// The API-key limiter's decision for this request, left by `RequestContext` for the headers.
#[derive(Debug, Clone, Copy)]
struct KeyDecision(Decision);

/// Route middleware (`crate::route_table`): admits the request by its route's declared
/// rate class or answers 429, and adds the rate-limit headers.
pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let class = shared::routes::served_by(req.request())
        .map_or(RateClass::Unlimited, |route| route.policy.rate);
    let state = req.app_data::<web::Data<DataPlane>>().cloned();
    let tenant = match &state {
        Some(state) if class != RateClass::Unlimited => active_tenant(&req, state).await,
        _ => None,
    };
    let (Some(state), Some(tenant)) = (state, tenant) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let client = crate::hygiene::client_address(req.request());
    let Some(decision) = state
        .rate_limits
        .admit(tenant.tenant.id, &tenant.quotas, class, client)
        .await
    else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    if !decision.outcome.admitted {
        state
            .metrics
            .rate_limited
            .with_label_values(&[decision.class.as_str()])
            .inc();
        tracing::debug!(
            tenant = %tenant.tenant.slug,
            class = decision.class.as_str(),
            "request refused by rate limit"
        );
        let mut response = req.error_response(decision.refusal());
        set_headers(response.headers_mut(), &decision);
        return Ok(response);
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    let key_decision = response
        .request()
        .extensions()
        .get::<KeyDecision>()
        .copied();
    let decision = key_decision.map_or(decision, |key| decision.tighter(key.0));
    set_headers(response.headers_mut(), &decision);
    Ok(response)
}

fn set_headers(headers: &mut HeaderMap, decision: &Decision) {
    let outcome = &decision.outcome;
    let reset_seconds = outcome.reset_ns.div_ceil(1_000_000_000);
    for (name, value) in [
        (LIMIT_HEADER, HeaderValue::from(outcome.limit)),
        (REMAINING_HEADER, HeaderValue::from(outcome.remaining)),
        (RESET_HEADER, HeaderValue::from(reset_seconds)),
    ] {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// Admits or refuses a request made with the API key `key_id` (per-key limit), and leaves the
/// decision for the headers. Called by `RequestContext` right after the key is authenticated,
/// so a refused request never reaches its handler.
pub async fn admit_api_key(
    state: &DataPlane,
    request: &HttpRequest,
    quotas: &Quotas,
    key_id: Uuid,
) -> Result<(), ApiError> {
    let decision = state.rate_limits.admit_api_key(key_id, quotas).await;
    request.extensions_mut().insert(KeyDecision(decision));
    if decision.outcome.admitted {
        Ok(())
    } else {
        Err(decision.refusal())
    }
}
