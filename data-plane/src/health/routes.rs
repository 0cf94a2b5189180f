//! `/healthz` (the process answers), `/readyz` (Postgres and the change listener are
//! reachable, the event writer has room — ClickHouse may be down while the spool has room —
//! and the node is not shutting down) and `/metrics` (Prometheus text).
//!
//! `/readyz` answers within [`CHECK_DEADLINE`] whatever its dependencies do: each check runs
//! concurrently under that deadline, and a store that accepts connections but never answers
//! (a frozen process) counts as unreachable.

use actix_web::{web, HttpResponse};
use serde_json::json;
use shared::routes::{route, routes, Route};

use crate::state::DataPlane;

pub fn routes() -> Vec<Route> {
    routes![healthz, readyz, metrics,]
}

#[route(
    get, "/healthz",
    summary = "Liveness",
    access = Public,
    audit = Never,
    rate = Unlimited,
    tag = "health",
    responses((status = 200, description = "The process is up")))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Longest a readiness check waits for a dependency.
const CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_millis(800);

#[route(
    get, "/readyz",
    summary = "Readiness",
    access = Public,
    audit = Never,
    rate = Unlimited,
    tag = "health",
    responses((status = 200, description = "Ready: Postgres, the tenant-change listener and the audit path work"), (status = 503, description = "Not ready; `checks` says which check failed")))]
async fn readyz(state: web::Data<DataPlane>) -> HttpResponse {
    let postgres = super::store::postgres_answers(state.tenant_db.pool());
    // ClickHouse being down does not make the node unready while the event spool has room:
    // events wait on disk and are replayed. Only a node that would have to refuse audited
    // changes (queue or spool full) reports not ready, so the balancer sends work elsewhere.
    let clickhouse = super::store::clickhouse_answers(&state.clickhouse);
    let (postgres, clickhouse) = tokio::join!(
        tokio::time::timeout(CHECK_DEADLINE, postgres),
        tokio::time::timeout(CHECK_DEADLINE, clickhouse),
    );
    let postgres = postgres.unwrap_or_else(|_| Err(format!("no answer within {CHECK_DEADLINE:?}")));
    let clickhouse_up = matches!(clickhouse, Ok(Ok(_)));
    let draining = if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        Err("the node is shutting down".to_owned())
    } else {
        Ok(())
    };
    let events = if state.events.has_room() {
        Ok(())
    } else {
        Err("the event queue or spool is full".to_owned())
    };
    let listener = if *state.listening.borrow() {
        Ok(())
    } else {
        Err("not connected".to_owned())
    };
    let checks = [
        ("postgres", postgres),
        ("events", events),
        ("notifications", listener),
        ("shutdown", draining),
    ];
    let ready = checks.iter().all(|(_, outcome)| outcome.is_ok());
    let body: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|(name, outcome)| {
            if let Err(error) = &outcome {
                tracing::warn!(check = name, %error, "readiness check failed");
            }
            (
                name.to_owned(),
                json!(if outcome.is_ok() { "ok" } else { "unavailable" }),
            )
        })
        .collect();
    let mut body = body;
    body.insert(
        "clickhouse".to_owned(),
        json!(if clickhouse_up { "ok" } else { "spooling" }),
    );
    body.insert(
        "spooled_bytes".to_owned(),
        json!(state.events.spooled_bytes()),
    );
    let body = json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": body });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[route(
    get, "/metrics",
    summary = "Prometheus metrics",
    access = Public,
    audit = Never,
    rate = Unlimited,
    tag = "health",
    responses((status = 200, description = "Prometheus metrics (text exposition format)")))]
async fn metrics(state: web::Data<DataPlane>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
