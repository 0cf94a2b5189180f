//! `/healthz` (the process answers), `/readyz` (Postgres and the change listener are
//! reachable, and the event writer has room: ClickHouse may be down while the spool has
//! room) and `/metrics` (Prometheus text).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::DataPlane;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<DataPlane>) -> HttpResponse {
    let postgres = match state.tenant_db.pool().get().await {
        Ok(client) => client
            .simple_query("SELECT 1")
            .await
            .map_err(|error| error.to_string())
            .map(|_| ()),
        Err(error) => Err(error.to_string()),
    };
    // ClickHouse being down does not make the node unready while the event spool has room:
    // events wait on disk and are replayed. Only a node that would have to refuse audited
    // changes (queue or spool full) reports not ready, so the balancer sends work elsewhere.
    let clickhouse_up = state
        .clickhouse
        .clone()
        .with_database("system")
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
        .is_ok();
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

async fn metrics(state: web::Data<DataPlane>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
