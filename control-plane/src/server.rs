//! The operator REST API server. `build` is what `control-plane serve` and the tests run.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::context::ControlPlane;

pub fn build(control: ControlPlane, listener: TcpListener) -> std::io::Result<Server> {
    let hsts = shared::http::Hsts::for_scheme(&control.config.public_scheme);
    let control = web::Data::new(control);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(control.clone())
            .app_data(hsts)
            .configure(shared::http::configure_extractors)
            // Outermost last: oversized headers are refused (431) inside the request id, so
            // the refusal is the JSON envelope; request ids are set before the security
            // headers are added, so error bodies rebuilt with the request id keep the headers.
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
