//! The operator REST API server. `build` is what `control-plane serve` and the tests run.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::context::ControlPlane;

pub fn build(control: ControlPlane, listener: TcpListener) -> std::io::Result<Server> {
    let hsts = shared::http::Hsts::for_scheme(&control.config.public_scheme);
    let metrics = web::Data::new({
        let control = control.clone();
        let separately = control.config.metrics_listen.is_some();
        shared::metrics::MetricsSource::new(move || control.render_metrics(), separately)
    });
    let console_cookies =
        shared::console::cookies::CookiePolicy::for_scheme(&control.config.public_scheme);
    let control = web::Data::new(control);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(control.clone())
            .app_data(metrics.clone())
            .app_data(hsts)
            .app_data(console_cookies)
            .app_data(shared::console::ErrorPages(crate::console::error_page))
            .configure(shared::http::configure_extractors)
            // Outermost last: oversized headers are refused (431) inside the request id, so
            // the refusal is the JSON envelope; request ids are set before the security
            // headers are added, so error bodies rebuilt with the request id keep the headers.
            .wrap(from_fn(enforce_deadline))
            .wrap(from_fn(shared::console::layer::pages))
            .wrap(from_fn(shared::http::limit_headers))
            .wrap(from_fn(shared::http::request_id))
            .wrap(from_fn(shared::http::security_headers))
            .configure(crate::route_table::configure)
            .default_service(web::to(shared::http::route_not_found))
    })
    .listen(listener)?
    .workers(2)
    .run();
    Ok(server)
}

/// Every operator request is answered within `control_request_deadline_ms`: past it the
/// handler is dropped and the answer is 503 `request_timeout`. The ceiling over a Postgres
/// that stops answering after the pool handed out its connection (the pool's own wait bounds
/// only getting one). A provisioning cut short this way is finished by the next
/// `POST /v1/tenants/{slug}/provision`, like any other interrupted one.
async fn enforce_deadline(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<ControlPlane>>()
        .map_or(std::time::Duration::MAX, |control| {
            control.config.request_deadline
        });
    shared::http::within_deadline(limit, req, next, |path, request_id| {
        tracing::warn!(
            path,
            request_id,
            "request did not finish within its deadline"
        );
    })
    .await
}
