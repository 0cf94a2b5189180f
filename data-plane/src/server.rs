//! The data plane's HTTP server. `build` is what the tests run; [`serve`] is `data-plane
//! serve`: `build` plus the shutdown sequence.
//!
//! Shutdown (SIGTERM or SIGINT): `/readyz` turns not ready (503, check `shutdown`) at once so
//! the load balancer stops sending, the node keeps serving for `shutdown_drain_ms` (answering
//! with `Connection: close`, so clients do not reuse connections it will close), then stops
//! accepting, answers every request it had accepted (up to 30 s), and writes its event queue
//! out (to ClickHouse, else to the spool). Listening sockets are bound with `SO_REUSEADDR`
//! (Rust's default on Unix), so a restarted node binds the port at once, even after a kill.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};

use crate::state::DataPlane;

/// Serves with `state.config.workers` HTTP workers.
pub fn build(state: DataPlane, listener: TcpListener) -> std::io::Result<Server> {
    let hsts = shared::http::Hsts::for_scheme(&state.config.public_scheme);
    let workers = state.config.workers;
    let keep_alive = state.config.keep_alive;
    let console_cookies =
        shared::console::cookies::CookiePolicy::for_scheme(&state.config.public_scheme);
    let started_workers = Arc::new(AtomicUsize::new(0));
    // One source for every worker: `/metrics` reads the whole node's state.
    let metrics = web::Data::new({
        let separately = state.config.metrics_listen.is_some();
        let state = state.clone();
        shared::metrics::MetricsSource::new(move || state.render_metrics(), separately)
    });
    let server = HttpServer::new(move || {
        // Runs on each worker's thread: the worker takes the next pool, so it drives the
        // connections it uses (see `TenantDb`).
        let worker = started_workers.fetch_add(1, Ordering::Relaxed);
        App::new()
            .app_data(web::Data::new(state.for_worker(worker)))
            .app_data(metrics.clone())
            .app_data(hsts)
            .app_data(console_cookies)
            .app_data(shared::console::ErrorPages(
                crate::console::page::error_page,
            ))
            .configure(shared::http::configure_extractors)
            // Outermost last. Oversized headers are refused (431) before anything reads them,
            // inside the request id so the refusal is the JSON envelope. Bodies are bounded;
            // each route's own layers (its refusals' hold, rate limit, audit admission and
            // access, `route_table`) run inside all of these. CORS marks every answer, 429s included;
            // request ids are set before the security headers are added, so error bodies
            // rebuilt with the request id keep the headers. The audit recorder sees rate-limit
            // refusals, inside CORS so its 503s are readable by browsers.
            .wrap(from_fn(enforce_deadline))
            .wrap(from_fn(crate::hygiene::limit_body))
            .wrap(from_fn(crate::audit::middleware::record))
            .wrap(from_fn(crate::cors::middleware::apply))
            .wrap(from_fn(observe_outcomes))
            .wrap(from_fn(shared::console::layer::pages))
            .wrap(from_fn(shared::http::limit_headers))
            .wrap(from_fn(shared::http::request_id))
            .wrap(from_fn(crate::scim::response::reshape))
            .wrap(from_fn(shared::http::security_headers))
            .wrap(from_fn(record_metrics))
            .wrap(from_fn(close_when_draining))
            .configure(crate::route_table::configure)
            .default_service(web::to(shared::http::route_not_found))
    })
    .listen(listener)?
    .workers(workers)
    .keep_alive(keep_alive)
    // Signals are handled by `serve`, which drains before it stops the server.
    .disable_signals()
    .run();
    Ok(server)
}

/// What `data-plane serve` does before it serves: refuses to start on a TLS failure to
/// Postgres or ClickHouse (a configuration error), then waits up to 10 s for the tenant-change listener
/// (Postgres may be down: the node serves anyway and `/readyz` tells).
pub async fn prepare(state: &DataPlane) -> anyhow::Result<()> {
    shared::db::tls::check_at_start(&state.config.database)
        .await
        .map_err(anyhow::Error::msg)?;
    shared::events::tls::check_at_start(&state.config.events)
        .await
        .map_err(anyhow::Error::msg)?;
    if tokio::time::timeout(
        std::time::Duration::from_secs(10),
        state.wait_until_listening(),
    )
    .await
    .is_err()
    {
        tracing::warn!("tenant-change listener not connected yet; starting anyway");
    }
    Ok(())
}

/// Serves on `listener` until SIGTERM or SIGINT, then shuts down as the module says.
pub async fn serve(state: DataPlane, listener: TcpListener) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let events = state.events.clone();
    let draining = state.draining.clone();
    let drain = state.config.shutdown_drain;
    if let Some(address) = state.config.metrics_listen {
        let metrics = state.clone();
        let listener = TcpListener::bind(address)?;
        tokio::spawn(shared::metrics::serve(listener, move || {
            metrics.render_metrics()
        })?);
        tracing::info!(%address, "metrics listening");
    }
    let server = build(state, listener)?;
    let handle = server.handle();
    let served = tokio::spawn(server);
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!(
        drain_ms = drain.as_millis() as u64,
        "shutting down: draining"
    );
    draining.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(drain).await;
    tracing::info!("shutting down: no new connections; finishing accepted requests");
    handle.stop(true).await;
    let served = served.await;
    // Only now: requests answered until the server stopped have their events in the queue.
    events.stop().await;
    tracing::info!("shut down");
    served??;
    Ok(())
}

/// The audit actions of the routes that sign users in, whose outcomes `/metrics` counts.
const SIGN_IN_ACTIONS: [&str; 3] = ["auth.login", "auth.mfa_verify", "auth.sso_login"];

/// Counts the answer of a sign-in route: `success`, or its error code.
fn count_sign_in<B>(state: &DataPlane, response: &ServiceResponse<B>) {
    let Some(route) = shared::routes::served_by(response.request()) else {
        return;
    };
    let Some(action) = route.policy.audit.event().map(|event| event.action) else {
        return;
    };
    if !SIGN_IN_ACTIONS.contains(&action) {
        return;
    }
    let outcome = match response.response().error() {
        _ if response.status().is_success() => "success",
        Some(error) => error
            .as_error::<shared::error::ApiError>()
            .map_or("error", shared::error::ApiError::code),
        None => "error",
    };
    state.metrics.sign_in(action, outcome);
}

/// Every request is answered within `request_deadline_ms`: past it the handler is dropped
/// (an open tenant transaction rolls back, see `TenantTransaction`) and the answer is 503
/// `request_timeout` (`shared::http::within_deadline`). The ceiling over every dependency
/// call, including those without a deadline of their own (catalog lookups on a cache miss).
/// Counted and logged there, as the outer middleware do not see it.
async fn enforce_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<DataPlane>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    shared::http::within_deadline(
        state.config.request_deadline,
        &state.metrics.node,
        req,
        next,
    )
    .await
}

/// Makes outcomes visible to operators. Every answer of a sign-in route is counted by outcome
/// (`tenantry_sign_ins_total`). Every 429 and 503 is counted by error code
/// (`tenantry_http_refusals_total`) and logged with its tenant and request id, at most once a
/// second per code (`shared::metrics::NodeMetrics::observe_refusal`). A flood of refusals then
/// shows in the log and the metrics without flooding either. Inside the request-id layer,
/// which rebuilds error bodies: here the handler's own error is still on the response.
async fn observe_outcomes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    if let Some(state) = response.request().app_data::<web::Data<DataPlane>>() {
        count_sign_in(state, &response);
        state.metrics.node.observe_refusal(&response, |request| {
            let header = |name| {
                request
                    .headers()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(|value| value.chars().take(64).collect::<String>())
            };
            header(crate::tenancy::resolve::TENANT_HEADER)
                .or_else(|| header(actix_web::http::header::HOST.as_str()))
                .unwrap_or_default()
        });
    }
    Ok(response)
}

/// While the node drains, every answer closes its connection (`Connection: close`), so a
/// client opens its next request elsewhere instead of reusing a connection the node is about
/// to close (a request sent on a keep-alive connection as the server closes it is lost).
async fn close_when_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let draining = req
        .app_data::<web::Data<DataPlane>>()
        .is_some_and(|state| state.draining.load(Ordering::Relaxed));
    let mut response = next.call(req).await?;
    if draining {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(response)
}

async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<DataPlane>>().cloned();
    let started = Instant::now();
    let response = next.call(req).await?;
    if let Some(state) = state {
        state
            .metrics
            .record_request(response.status().as_u16(), started.elapsed().as_secs_f64());
    }
    Ok(response)
}
