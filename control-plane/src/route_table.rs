//! The control plane's route table: the operator API's declared routes, registered behind the
//! route guard (`operators::auth::authorize`), and the OpenAPI document made from them.

use std::sync::OnceLock;

use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use shared::routes::meta::ApiDocuments;
use shared::routes::openapi::{self, Plane};
use shared::routes::{route, routes, Route};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Every route of the control plane.
pub fn table() -> Vec<Route> {
    [
        routes![healthz],
        shared::routes::meta::routes(),
        shared::metrics::routes(),
        crate::tenants::routes::routes(),
        crate::clusters::routes::routes(),
        crate::moves::routes::routes(),
        crate::sso::routes::routes(),
        crate::console::routes::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Registers the table, each route behind the guard.
pub fn configure(config: &mut web::ServiceConfig) {
    shared::routes::configure(config, table(), documents(), wrap);
}

fn wrap(route: actix_web::Route) -> actix_web::Route {
    route.wrap(from_fn(crate::operators::auth::authorize))
}

/// The control plane's OpenAPI document and reference page (built once).
pub fn documents() -> &'static ApiDocuments {
    static DOCUMENTS: OnceLock<ApiDocuments> = OnceLock::new();
    DOCUMENTS.get_or_init(|| ApiDocuments::build(&plane(), &table()))
}

/// The control plane's OpenAPI document.
pub fn document() -> &'static serde_json::Value {
    &documents().openapi
}

fn plane() -> Plane {
    Plane {
        title: "Tenantry control plane",
        description: "The operator API: tenants, their quotas, domains and SSO providers, and the Postgres clusters they are placed on.",
        security_schemes: vec![(
            openapi::OPERATOR_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An operator token from `control-plane operator create`, sent as \
                         `Authorization: Bearer <token>`.",
                    ))
                    .build(),
            ),
        )],
        common_errors: vec![(
            503,
            "`database_unavailable`: the catalog did not answer; retry shortly",
        )],
    }
}

/// Liveness: the process answers.
#[route(get, "/healthz",
    access = Public,
    audit = Never,
    rate = Unlimited,
    tag = "health",
    responses((status = 200, description = "The process is up", body = shared::routes::meta::Liveness)))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(shared::routes::meta::Liveness::UP)
}
