//! The data plane's HTTP server. `build` is what `data-plane serve` and the tests run.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};

use crate::state::DataPlane;

/// Serves with `state.config.workers` HTTP workers.
pub fn build(state: DataPlane, listener: TcpListener) -> std::io::Result<Server> {
    let hsts = shared::http::Hsts::for_scheme(&state.config.public_scheme);
    let workers = state.config.workers;
    let started_workers = Arc::new(AtomicUsize::new(0));
    let server = HttpServer::new(move || {
        // Runs on each worker's thread: the worker takes the next pool, so it drives the
        // connections it uses (see `TenantDb`).
        let worker = started_workers.fetch_add(1, Ordering::Relaxed);
        App::new()
            .app_data(web::Data::new(state.for_worker(worker)))
            .app_data(hsts)
            .configure(shared::http::configure_extractors)
            // Outermost last. Bodies are bounded, then rate limits refuse before any handler
            // runs; CORS marks every answer, 429s included; request ids are set before the
            // security headers are added, so error bodies rebuilt with the request id keep
            // the headers. The audit log sees rate-limit refusals and refuses changes it could
            // not record, inside CORS so those answers are readable by browsers.
            .wrap(from_fn(crate::hygiene::limit_body))
            .wrap(from_fn(crate::rate_limit::middleware::enforce))
            .wrap(from_fn(crate::audit::middleware::record))
            .wrap(from_fn(crate::cors::middleware::apply))
            .wrap(from_fn(shared::http::request_id))
            .wrap(from_fn(shared::http::security_headers))
            .wrap(from_fn(record_metrics))
            .configure(crate::health::routes::configure)
            .configure(crate::tenant_info::routes::configure)
            .configure(crate::identity::routes::configure)
            .configure(crate::accounts::routes::configure)
            .configure(crate::sessions::routes::configure)
            .configure(crate::tokens::routes::configure)
            .configure(crate::users::routes::configure)
            .configure(crate::roles::routes::configure)
            .configure(crate::privacy::routes::configure)
            .configure(crate::settings::routes::configure)
            .configure(crate::cors::routes::configure)
            .configure(crate::mfa::routes::configure)
            .configure(crate::sso::routes::configure)
            .configure(crate::api_keys::routes::configure)
            .configure(crate::usage::routes::configure)
            .configure(crate::records::routes::configure)
            .configure(crate::audit::routes::configure)
            .configure(crate::ingest::routes::configure)
            .default_service(web::to(shared::http::route_not_found))
    })
    .listen(listener)?
    .workers(workers)
    .run();
    Ok(server)
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
