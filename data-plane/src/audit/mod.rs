//! The audit log of the data plane: every state-changing request (and every rate-limit
//! refusal) of a tenant leaves one event, written through the shared event writer, and tenant
//! admins read them back (`GET /v1/admin/audit`).
//!
//! - [`middleware`]: one place that records events, so a new endpoint cannot forget to. It
//!   refuses a state-changing request with 503 `audit_unavailable` *before* its handler runs
//!   when the node could not keep the event (queue and spool full).
//! - [`recovery`]: ships the events dead nodes left in the audit outbox (the event of every
//!   committed change is written there in the change's own transaction).
//! - [`actions`]: the stable action names and resource types of each route.
//! - [`routes`], [`service`], [`store`]: the query API (parameters bound, tenant filter from
//!   the request context, never from the query).
//! - [`schema`]: applies the ClickHouse schema at start, retrying in the background.

/// The permission to read the tenant's audit log.
pub const READ: &str = "audit:read";

pub mod actions;
pub mod middleware;
pub mod recovery;
pub mod routes;
pub mod schema;
pub mod service;
pub mod store;

use std::sync::Arc;

/// Who made a request, left in the request's extensions by `RequestContext` for the audit
/// middleware.
#[derive(Debug, Clone)]
pub struct AuditActor {
    pub actor_type: &'static str,
    pub actor_id: String,
}

/// What a handler adds to its request's audit event (the user a sign-in was for, …); never a
/// secret.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub actor: Option<AuditActor>,
    pub resource_id: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Adds `note` to the request's audit event.
pub fn note(req: &actix_web::HttpRequest, note: AuditNote) {
    use actix_web::HttpMessage;
    req.extensions_mut().insert(Arc::new(note));
}
