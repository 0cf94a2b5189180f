//! `/healthz` (the process answers), `/readyz` (Postgres, ClickHouse and the change listener
//! are reachable) and `/metrics` (Prometheus text).

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
    // The server, not our database: the audit/telemetry schema (and its check) arrives with
    // the ClickHouse writer.
    let clickhouse = state
        .clickhouse
        .clone()
        .with_database("system")
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
        .map_err(|error| error.to_string())
        .map(|_| ());
    let listener = if *state.listening.borrow() {
        Ok(())
    } else {
        Err("not connected".to_owned())
    };
    let checks = [
        ("postgres", postgres),
        ("clickhouse", clickhouse),
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
