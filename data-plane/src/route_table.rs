//! The data plane's route table: every capability's declared routes (`routes()` in each
//! `routes.rs`), registered with the layers that apply their policy, and the OpenAPI document
//! made from the same declarations.
//!
//! Around each route's handler, outermost first: the route's declaration is put in the
//! request's extensions (by `shared::routes::configure`); its rate class is enforced
//! (`rate_limit::middleware::enforce`); a route with an audit event checks the event can be
//! recorded and leaves the request's audit intent (`audit::middleware::admit`); its access is
//! decided (`authz::guard::authorize`). The app-wide layers (request id, CORS, the audit
//! recorder, body limits, the deadline) wrap all of it, see `server::build`.

use std::sync::OnceLock;

use actix_web::middleware::from_fn;
use actix_web::web;
use shared::routes::meta::ApiDocuments;
use shared::routes::openapi::{self, Plane};
use shared::routes::Route;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Every route of the data plane.
pub fn table() -> Vec<Route> {
    [
        crate::health::routes::routes(),
        shared::routes::meta::routes(),
        shared::metrics::routes(),
        crate::tenant_info::routes::routes(),
        crate::identity::routes::routes(),
        crate::accounts::routes::routes(),
        crate::sessions::routes::routes(),
        crate::tokens::routes::routes(),
        crate::users::routes::routes(),
        crate::roles::routes::routes(),
        crate::privacy::routes::routes(),
        crate::settings::routes::routes(),
        crate::cors::routes::routes(),
        crate::mfa::routes::routes(),
        crate::sso::routes::routes(),
        crate::api_keys::routes::routes(),
        crate::usage::routes::routes(),
        crate::records::routes::routes(),
        crate::audit::routes::routes(),
        crate::ingest::routes::routes(),
        crate::console::routes::routes(),
        crate::scim::routes::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Registers the table, each route in its policy layers.
pub fn configure(config: &mut web::ServiceConfig) {
    shared::routes::configure(config, table(), documents(), wrap);
}

fn wrap(route: actix_web::Route) -> actix_web::Route {
    route
        .wrap(from_fn(crate::authz::guard::authorize))
        .wrap(from_fn(crate::audit::middleware::admit))
        .wrap(from_fn(crate::rate_limit::middleware::enforce))
        .wrap(from_fn(crate::rate_limit::hold::hold_refusals))
}

/// The data plane's OpenAPI document and reference page (built once).
pub fn documents() -> &'static ApiDocuments {
    static DOCUMENTS: OnceLock<ApiDocuments> = OnceLock::new();
    DOCUMENTS.get_or_init(|| ApiDocuments::build(&plane(), &table()))
}

/// The data plane's OpenAPI document.
pub fn document() -> &'static serde_json::Value {
    &documents().openapi
}

fn plane() -> Plane {
    Plane {
        title: "Tenantry data plane",
        description: "The tenant-routed API: sign-in, users, roles, API keys, records, \
                      settings, SSO, audit and telemetry. Every request names its tenant by \
                      its host (`<slug>.<base domain>` or a registered custom domain) or by the \
                      `X-Tenant` header.",
        security_schemes: vec![
            (
                openapi::ACCESS_TOKEN,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "An access token from `POST /v1/auth/login` (or SSO), sent as \
                             `Authorization: Bearer <token>`.",
                        ))
                        .build(),
                ),
            ),
            (
                openapi::API_KEY,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    "X-API-Key",
                    "An API key (`tnt_…`); `Authorization: Bearer tnt_…` works too.",
                ))),
            ),
        ],
        common_errors: vec![
            (404, "`tenant_not_found`: no active tenant by that name"),
            (
                503,
                "`database_unavailable`, `audit_unavailable`, `request_timeout`: retry shortly",
            ),
        ],
    }
}
