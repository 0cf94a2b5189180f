//! The operator REST API server. `build` is what `control-plane serve` and the tests run.

use std::net::TcpListener;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
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
            .wrap(from_fn(observe_refusals))
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
/// `POST /v1/tenants/{slug}/provision`, like any other interrupted one. Counted and logged
/// there (at most a line a second), as the outer layers do not see it.
async fn enforce_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(control) = req.app_data::<web::Data<ControlPlane>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    shared::http::within_deadline(control.config.request_deadline, &control.metrics, req, next)
        .await
}

/// Every 429 and 503 (a catalog pool with no connection to give, most often) is counted by
/// error code (`tenantry_http_refusals_total`) and logged with its request id and the tenant
/// its path names, at most once a second per code, as on the data plane.
async fn observe_refusals(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    if let Some(control) = response.request().app_data::<web::Data<ControlPlane>>() {
        control.metrics.observe_refusal(&response, |request| {
            request
                .match_info()
                .get("slug")
                .unwrap_or_default()
                .to_owned()
        });
    }
    Ok(response)
}
