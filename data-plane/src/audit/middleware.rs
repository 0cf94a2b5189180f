//! The audit middleware. It sits inside the request-id middleware (so every event has the
//! request id) and outside the rate limits (so refusals are seen).
//!
//! For a request naming an active tenant:
//! - state-changing requests (any method but GET, HEAD, OPTIONS, and the SSO callback GET
//!   that signs a user in, see [`actions::changes_state`]) are audited: before the handler
//!   runs, the node checks that its writer has room and that the tenant's chain key is at hand;
//!   if not, the request is refused with 503 `audit_unavailable` and nothing is done;
//! - a GET refused with 429 is audited too (rate-limit refusals);
//! - the event is enqueued after the response is built; the request never waits on ClickHouse.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use shared::error::ApiError;
use shared::events::chain::ChainKey;
use shared::events::rows::{new_event_id, AuditRow};

use super::{actions, AuditActor, AuditNote};
use crate::state::DataPlane;
use crate::tenancy::early::active_tenant;
use crate::tenancy::registry::ServedTenant;

fn unavailable() -> ApiError {
    ApiError::unavailable(
        "audit_unavailable",
        "this node cannot record the audit event for this change right now; try again shortly",
    )
}

/// The tenant's current chain key (from its data key, cached on the node).
pub async fn chain_key(state: &DataPlane, tenant: &ServedTenant) -> Option<ChainKey> {
    match state.data_keys.for_tenant(tenant.tenant.id).await {
        Ok(keys) => match keys.current() {
            Ok((version, key)) => Some(ChainKey::derive(key, version)),
            Err(error) => {
                tracing::error!(%error, "tenant has no data key for its audit chain");
                None
            }
        },
        Err(error) => {
            tracing::error!(%error, "cannot load the tenant's data key for its audit chain");
            None
        }
    }
}

pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<DataPlane>>()
        .cloned()
        .filter(|state| state.config.audit_enabled && actions::audited_path(req.path()));
    let tenant = match &state {
        Some(state) => active_tenant(&req, state).await,
        None => None,
    };
    let (Some(state), Some(tenant)) = (state, tenant) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let changes = actions::changes_state(req.method(), req.path());
    let mut key = None;
    if changes {
        if !state.events.has_room() {
            return Ok(req.error_response(unavailable()));
        }
        key = chain_key(&state, &tenant).await;
        if key.is_none() {
            return Ok(req.error_response(unavailable()));
        }
    }
    let started = Instant::now();
    let now = state.clock.now();
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status().as_u16();
    if !changes && status != 429 {
        return Ok(response);
    }
    let key = match key {
        Some(key) => key,
        None => match chain_key(&state, &tenant).await {
            Some(key) => key,
            None => return Ok(response),
        },
    };
    let row = event_of(&response, &tenant, now, started);
    if let Err(error) = state.events.record_audit(&key, row) {
        // Room was checked before the handler; only a burst filling the queue since lands
        // here. Logged and counted, never silent.
        tracing::error!(%error, "audit event dropped after the change was made");
        state.metrics.audit_dropped();
    }
    Ok(response)
}

fn event_of(
    response: &ServiceResponse<BoxBody>,
    tenant: &ServedTenant,
    now: time::OffsetDateTime,
    started: Instant,
) -> AuditRow {
    let request = response.request();
    let action = actions::of(request.method(), request.match_pattern().as_deref());
    let extensions = request.extensions();
    let note = extensions.get::<Arc<AuditNote>>().cloned();
    let actor = note
        .as_ref()
        .and_then(|note| note.actor.clone())
        .or_else(|| extensions.get::<AuditActor>().cloned())
        .unwrap_or(AuditActor {
            actor_type: "anonymous",
            actor_id: String::new(),
        });
    let resource_id = note
        .as_ref()
        .and_then(|note| note.resource_id.clone())
        .or_else(|| {
            action
                .id_param
                .and_then(|param| request.match_info().get(param))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let mut metadata = note.map(|note| note.metadata.clone()).unwrap_or_default();
    if let Some(error) = response.response().error() {
        if let Some(api_error) = error.as_error::<ApiError>() {
            metadata.insert("error".to_owned(), api_error.code().into());
        }
    }
    if let Some(collection) = request.match_info().get("collection") {
        metadata.insert("collection".to_owned(), collection.into());
    }
    let millis = (now.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    AuditRow {
        tenant_id: tenant.tenant.id.to_string(),
        occurred_at: (millis / 1000) as u32,
        occurred_at_ms: millis,
        event_id: new_event_id(),
        request_id: shared::http::request_id_of(request),
        actor_type: actor.actor_type.to_owned(),
        actor_id: actor.actor_id,
        action: action.name,
        resource_type: action.resource_type,
        resource_id,
        result: actions::result_of(response.status().as_u16()).to_owned(),
        ip: request
            .peer_addr()
            .map(|address| address.ip().to_string())
            .unwrap_or_default(),
        user_agent: request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(512).collect())
            .unwrap_or_default(),
        http_method: request.method().as_str().to_owned(),
        http_path: request.path().chars().take(1024).collect(),
        http_status: response.status().as_u16(),
        duration_ms: started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32,
        metadata: serde_json::Value::Object(metadata).to_string(),
        chain_stream: String::new(),
        chain_seq: 0,
        key_version: 0,
        prev_mac: String::new(),
        mac: String::new(),
    }
}
