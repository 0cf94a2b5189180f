//! The audit layers: [`admit`] around each declared route, inside its rate limit; [`record`]
//! around the whole app, inside the request-id middleware (so every event has the request id)
//! and outside every route (so refusals are seen).
//!
//! What a request records is its route's declaration (`audit = …` in its `#[route]`). For a
//! request naming an active tenant:
//! - requests of routes declared with an event (those that change state, and sign-ins) are
//!   audited: before the handler runs, the node checks that its writer has room and that the
//!   tenant's chain key is at hand; if not, the request is refused with 503
//!   `audit_unavailable` and nothing is done;
//! - a request of another route refused with 429 is audited too (rate-limit refusals), but
//!   for telemetry ingestion (`Never`: counted as usage instead);
//! - the event is enqueued after the response is built; the request never waits on ClickHouse;
//! - a state-changing request also gets an [`AuditIntent`] in its extensions: the first of its
//!   transactions that commits a change writes the event to the audit outbox in the same commit
//!   (`shared::events::outbox`), so the event of a committed change survives the node dying
//!   before the writer has it on disk. Such an event is handed to the writer as outboxed, and
//!   the writer deletes its outbox row once the event is in ClickHouse or the spool.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use shared::error::ApiError;
use shared::events::chain::ChainKey;
use shared::events::outbox::AuditIntent;
use shared::events::rows::{new_event_id, AuditRow};
use shared::routes::Audit;

use super::{actions, AuditActor, AuditNote};
use crate::state::DataPlane;
use crate::tenancy::early::{active_tenant, resolved_tenant};
use crate::tenancy::registry::ServedTenant;

fn unavailable() -> ApiError {
    ApiError::unavailable(
        "audit_unavailable",
        "this node cannot record the audit event for this change right now; try again shortly",
    )
}

/// The tenant's current chain key (from its data key, cached on the node).
pub async fn chain_key(state: &DataPlane, tenant: &ServedTenant) -> Option<ChainKey> {
    chain_key_of(state, tenant.tenant.id).await
}

/// [`chain_key`] by tenant id.
pub async fn chain_key_of(state: &DataPlane, tenant_id: uuid::Uuid) -> Option<ChainKey> {
    match state.data_keys.for_tenant(tenant_id).await {
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

/// Route middleware (`crate::route_table`), for routes declared with an audit event: before
/// the handler runs, checks that the writer has room and the tenant's chain key is at hand
/// (503 `audit_unavailable` otherwise, nothing done), and leaves the request's
/// [`AuditIntent`] for its first committing transaction.
pub async fn admit(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let audited = shared::routes::served_by(req.request())
        .is_some_and(|route| route.policy.audit.event().is_some());
    let state = req
        .app_data::<web::Data<DataPlane>>()
        .cloned()
        .filter(|state| audited && state.config.audit_enabled);
    let tenant = match &state {
        Some(state) => active_tenant(&req, state).await,
        None => None,
    };
    let (Some(state), Some(tenant)) = (state, tenant) else {
        return next.call(req).await;
    };
    if !state.events.has_room() {
        return Ok(req.error_response(unavailable()));
    }
    let Some(key) = chain_key(&state, &tenant).await else {
        return Ok(req.error_response(unavailable()));
    };
    let intent =
        AuditIntent::new(base_row(req.request(), &tenant, state.clock.now())).map(Arc::new);
    if let Some(intent) = intent {
        req.extensions_mut().insert(intent);
    }
    req.extensions_mut().insert(Admitted(Arc::new(key)));
    next.call(req).await
}

/// The chain key [`admit`] found, for [`record`].
#[derive(Clone)]
struct Admitted(Arc<ChainKey>);

/// App middleware: records the event of every request its route's audit declaration covers
/// (every request of a route with an event; a rate-limit refusal of the others, unless
/// `Never`), after the response is built; the request never waits on ClickHouse.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<DataPlane>>()
        .cloned()
        .filter(|state| state.config.audit_enabled);
    let Some(state) = state else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let started = Instant::now();
    let now = state.clock.now();
    let response = next.call(req).await?.map_into_boxed_body();
    let request = response.request();
    let Some(route) = shared::routes::served_by(request) else {
        return Ok(response);
    };
    let status = response.status().as_u16();
    let recorded = match route.policy.audit {
        Audit::Event(_) => true,
        Audit::Refusals => status == 429,
        Audit::Never => false,
    };
    let Some(tenant) = resolved_tenant(request).filter(|_| recorded) else {
        return Ok(response);
    };
    let admitted = request
        .extensions()
        .get::<Admitted>()
        .map(|admitted| admitted.0.clone());
    let key = match admitted {
        Some(key) => key,
        None => match chain_key(&state, &tenant).await {
            Some(key) => Arc::new(key),
            None => return Ok(response),
        },
    };
    let intent = request.extensions().get::<Arc<AuditIntent>>().cloned();
    let mut row = event_of(&response, &tenant, now, started);
    let recorded = match &intent {
        Some(intent) => {
            row.event_id = intent.event_id().to_string();
            if intent.written() {
                let cluster = tenant.scope.cluster().cloned();
                state.events.record_outboxed_audit(&key, row, cluster)
            } else {
                state.events.record_audit(&key, row)
            }
        }
        None => state.events.record_audit(&key, row),
    };
    if let Err(error) = recorded {
        // Room was checked before the handler; only a burst filling the queue since lands
        // here. Logged and counted, never silent.
        tracing::error!(%error, "audit event dropped after the change was made");
        state.metrics.audit_dropped();
    }
    Ok(response)
}

/// What the request's event says whatever the answer: tenant, time, ids, caller (when known
/// yet), action and resource, client and path. Status, result, duration and the error code
/// come from the response ([`event_of`]).
fn base_row(
    request: &actix_web::HttpRequest,
    tenant: &ServedTenant,
    now: time::OffsetDateTime,
) -> AuditRow {
    let (mut row, metadata) = base_parts(request, tenant, now);
    row.metadata = serde_json::Value::Object(metadata).to_string();
    row
}

/// [`base_row`] with its metadata still an object, for [`event_of`] to add to.
fn base_parts(
    request: &actix_web::HttpRequest,
    tenant: &ServedTenant,
    now: time::OffsetDateTime,
) -> (AuditRow, serde_json::Map<String, serde_json::Value>) {
    let action = actions::of(request);
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
        .or_else(|| resource_id_of(request, action.id_param))
        .unwrap_or_default();
    let mut metadata = note.map(|note| note.metadata.clone()).unwrap_or_default();
    if let Some(collection) = request.match_info().get("collection") {
        metadata.insert("collection".to_owned(), collection.into());
    }
    let millis = (now.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let row = AuditRow {
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
        result: String::new(),
        ip: crate::hygiene::client_address(request)
            .map(|address| address.to_string())
            .unwrap_or_default(),
        user_agent: request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(512).collect())
            .unwrap_or_default(),
        http_method: request.method().as_str().to_owned(),
        http_path: request.path().chars().take(1024).collect(),
        http_status: 0,
        duration_ms: 0,
        metadata: String::new(),
        chain_stream: String::new(),
        chain_seq: 0,
        key_version: 0,
        prev_mac: String::new(),
        mac: String::new(),
    };
    (row, metadata)
}

/// The id of the resource a routed request names: its route's id parameter `id_param`.
fn resource_id_of(request: &actix_web::HttpRequest, id_param: Option<&str>) -> Option<String> {
    id_param
        .and_then(|param| request.match_info().get(param))
        .map(str::to_owned)
}

/// Completes the request's audit intent with what the request context learned (the caller,
/// the resource id from the routed path) and returns it, for the context's tenant scope.
pub fn complete_intent(
    request: &actix_web::HttpRequest,
    actor: Option<&AuditActor>,
) -> Option<Arc<AuditIntent>> {
    let intent = request.extensions().get::<Arc<AuditIntent>>().cloned()?;
    let id_param = actions::of(request).id_param;
    let resource_id = resource_id_of(request, id_param);
    let collection = request.match_info().get("collection").map(str::to_owned);
    intent.update(|row| {
        if let Some(actor) = actor {
            row.actor_type = actor.actor_type.to_owned();
            row.actor_id = actor.actor_id.clone();
        }
        if let Some(resource_id) = resource_id {
            row.resource_id = resource_id;
        }
        if let Some(collection) = collection {
            row.metadata = serde_json::json!({ "collection": collection }).to_string();
        }
    });
    Some(intent)
}

fn event_of(
    response: &ServiceResponse<BoxBody>,
    tenant: &ServedTenant,
    now: time::OffsetDateTime,
    started: Instant,
) -> AuditRow {
    let request = response.request();
    let (mut row, mut metadata) = base_parts(request, tenant, now);
    if let Some(error) = response.response().error() {
        if let Some(api_error) = error.as_error::<ApiError>() {
            metadata.insert("error".to_owned(), api_error.code().into());
        }
    }
    row.metadata = serde_json::Value::Object(metadata).to_string();
    row.result = actions::result_of(response.status().as_u16()).to_owned();
    row.http_status = response.status().as_u16();
    row.duration_ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
    row
}
