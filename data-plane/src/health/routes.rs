//! `/healthz` (the process answers), `/readyz` (Postgres and the change listener are
//! reachable, the event writer has room — ClickHouse may be down while the spool has room —
//! and the node is not shutting down); `/metrics` is `shared::metrics`'.
//!
//! `/readyz` also reports each other cluster the node serves tenants on, without counting it:
//! a cluster that is down makes only its own tenants' requests fail (503
//! `tenant_unavailable`), so the node stays ready for everyone else's.
//!
//! `/readyz` answers within [`CHECK_DEADLINE`] whatever its dependencies do: each check runs
//! concurrently under that deadline, and a store that accepts connections but never answers
//! (a frozen process) counts as unreachable.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use shared::routes::meta::Liveness;
use shared::routes::{route, routes, Route};

use crate::state::DataPlane;

pub fn routes() -> Vec<Route> {
    routes![healthz, readyz]
}

#[route(
    get, "/healthz",
    summary = "Liveness",
    access = Public,
    audit = Never,
    rate = Unlimited,
    tag = "health",
    responses((status = 200, description = "The process is up", body = Liveness)))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Liveness::UP)
}

/// What `GET /readyz` answers, ready (200) or not (503).
#[derive(Serialize, utoipa::ToSchema)]
struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    checks: ReadinessChecks,
}

/// Each check: `ok`, or `unavailable` (the node is not ready).
#[derive(Serialize, utoipa::ToSchema)]
struct ReadinessChecks {
    postgres: &'static str,
    /// Room in the event queue and spool.
    events: &'static str,
    /// The tenant-change listener.
    notifications: &'static str,
    /// `unavailable` while the node shuts down.
    shutdown: &'static str,
    /// `ok`, or `spooling` while ClickHouse is down (events wait on disk; the node stays
    /// ready).
    clickhouse: &'static str,
    /// Bytes of events waiting in the spool.
    spooled_bytes: u64,
    /// Each other cluster this node serves tenants on, by name. Reported, not counted: a
    /// cluster that is down affects only its own tenants.
    clusters: std::collections::BTreeMap<String, ClusterCheck>,
}

/// One tenant cluster other than the catalog's, as this node reaches it.
#[derive(Serialize, utoipa::ToSchema)]
struct ClusterCheck {
    /// `ok`, or `unavailable` (its tenants get 503 `tenant_unavailable`).
    postgres: &'static str,
    /// Its change listener: `ok`, or `unavailable` (reconnecting).
    notifications: &'static str,
}

fn check(outcome: &Result<(), String>) -> &'static str {
    if outcome.is_ok() {
        "ok"
    } else {
        "unavailable"
    }
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
    responses((status = 200, description = "Ready: Postgres, the tenant-change listener and the audit path work", body = Readiness), (status = 503, description = "Not ready; `checks` says which check failed", body = Readiness)))]
async fn readyz(state: web::Data<DataPlane>) -> HttpResponse {
    let postgres = super::store::postgres_answers(state.tenant_db.pool());
    // ClickHouse being down does not make the node unready while the event spool has room:
    // events wait on disk and are replayed. Only a node that would have to refuse audited
    // changes (queue or spool full) reports not ready, so the balancer sends work elsewhere.
    let clickhouse = shared::events::store::answers(&state.clickhouse);
    let (postgres, clickhouse, clusters) = tokio::join!(
        tokio::time::timeout(CHECK_DEADLINE, postgres),
        tokio::time::timeout(CHECK_DEADLINE, clickhouse),
        other_clusters(&state),
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
        ("postgres", &postgres),
        ("events", &events),
        ("notifications", &listener),
        ("shutdown", &draining),
    ];
    let ready = checks.iter().all(|(_, outcome)| outcome.is_ok());
    for (name, outcome) in checks {
        if let Err(error) = outcome {
            tracing::warn!(check = name, %error, "readiness check failed");
        }
    }
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        checks: ReadinessChecks {
            postgres: check(&postgres),
            events: check(&events),
            notifications: check(&listener),
            shutdown: check(&draining),
            clickhouse: if clickhouse_up { "ok" } else { "spooling" },
            spooled_bytes: state.events.spooled_bytes(),
            clusters,
        },
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Each other cluster the node serves, checked concurrently under [`CHECK_DEADLINE`].
async fn other_clusters(state: &DataPlane) -> std::collections::BTreeMap<String, ClusterCheck> {
    let Some(fleet) = state.tenant_db.fleet() else {
        return Default::default();
    };
    let checks = state
        .clusters
        .listening()
        .into_iter()
        .map(|(name, listening)| async move {
            let answers = async {
                let pools = fleet
                    .cluster(&name)
                    .await
                    .map_err(|error| error.to_string())?;
                super::store::postgres_answers(pools.shared()).await
            };
            let answers = tokio::time::timeout(CHECK_DEADLINE, answers).await;
            let postgres = if matches!(answers, Ok(Ok(()))) {
                "ok"
            } else {
                tracing::warn!(cluster = name, "a tenant cluster does not answer");
                "unavailable"
            };
            let notifications = if listening { "ok" } else { "unavailable" };
            (
                name,
                ClusterCheck {
                    postgres,
                    notifications,
                },
            )
        });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .collect()
}
