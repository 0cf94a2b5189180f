//! Routes declared once. Every route of both planes is a handler carrying `#[route(…)]`
//! (crate `tenantry-route-macro`, re-exported here): its method and path, who may call it
//! ([`Access`]), the audit event it records ([`AuditEvent`]), its rate class ([`RateClass`])
//! and its OpenAPI operation. Each capability lists its handlers with `routes![…]`; each plane
//! joins the lists into its route table and derives the rest from it:
//! - [`configure`] registers the table with actix, each route wrapped in the plane's guard,
//!   which applies the route's [`Policy`] before the handler runs (a handler never checks a
//!   permission itself, so none can forget to);
//! - the guard puts the route's [`RouteInfo`] in the request's extensions, where the audit
//!   log and the rate limiter read the action and class (no path tables beside the routes);
//! - [`openapi::document`] builds the plane's OpenAPI 3.1 document from the same table;
//! - the tests walk the table: every route is in the document, refuses callers its access
//!   excludes and records its audit action.
//!
//! docs/routes.md shows how to add a route.

pub mod meta;
pub mod openapi;
pub mod policy;
pub mod reference;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::web;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

pub use policy::{Access, Audit, AuditEvent, Policy, RateClass};
pub use tenantry_route_macro::{route, routes};

/// What `#[route]` adds to the struct `utoipa::path` generates for a handler.
pub trait Declared {
    fn policy() -> Policy;
    /// The handler, for the route's method.
    fn handler() -> actix_web::Route;
}

/// A declared route: what the guard, the audit log and the rate limiter need (in each
/// request's extensions while it is served) and what the OpenAPI document says of it.
pub struct RouteInfo {
    pub method: Method,
    /// The path pattern, as actix and OpenAPI write it: `/v1/admin/users/{id}`.
    pub path: String,
    pub policy: Policy,
    pub operation: Operation,
    /// The schemas the operation refers to, for the document's components.
    pub schemas: Vec<(String, RefOr<Schema>)>,
}

/// Where each plane's console pages live: routes under it answer HTML to browsers (cookie
/// sessions, CSRF-checked forms) and are not part of the API's OpenAPI document.
pub const CONSOLE_PREFIX: &str = "/console";

/// Where the data plane's SCIM 2.0 service lives. Its contract is RFC 7644 and its own
/// discovery endpoints (`/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`), checked by an
/// independent SCIM tool; its routes are not part of the OpenAPI document.
pub const SCIM_PREFIX: &str = "/scim/v2";

impl RouteInfo {
    /// Whether this route is a console page rather than an API operation.
    pub fn is_page(&self) -> bool {
        is_console_path(&self.path)
    }

    /// Whether this route is part of the SCIM service rather than the REST API.
    pub fn is_scim(&self) -> bool {
        is_scim_path(&self.path)
    }

    /// Whether the OpenAPI document describes this route: neither a page nor SCIM.
    pub fn in_api_document(&self) -> bool {
        !self.is_page() && !self.is_scim()
    }
}

/// Whether `path` (a route pattern or a request's path) is the SCIM service's.
pub fn is_scim_path(path: &str) -> bool {
    path == SCIM_PREFIX
        || path
            .strip_prefix(SCIM_PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether `path` (a route pattern or a request's path) is the console's.
pub fn is_console_path(path: &str) -> bool {
    path == CONSOLE_PREFIX
        || path
            .strip_prefix(CONSOLE_PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl std::fmt::Debug for RouteInfo {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RouteInfo")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A declared route and its handler, ready to be registered.
pub struct Route {
    pub info: Arc<RouteInfo>,
    handler: actix_web::Route,
}

impl Route {
    /// The route `#[route]` declared on the handler whose `utoipa::path` struct is `T`
    /// (what `routes!` calls).
    pub fn of<T>() -> Self
    where
        T: Declared
            + utoipa::Path
            + utoipa::__dev::SchemaReferences
            + for<'t> utoipa::__dev::Tags<'t>,
    {
        let method = match T::methods().first() {
            Some(method) => actix_method(method),
            None => Method::GET,
        };
        let mut schemas = Vec::new();
        T::schemas(&mut schemas);
        let mut operation = T::operation();
        let tags: Vec<String> = T::tags().into_iter().map(str::to_owned).collect();
        if !tags.is_empty() {
            operation.tags = Some(tags);
        }
        Self {
            info: Arc::new(RouteInfo {
                method,
                path: T::path(),
                policy: T::policy(),
                operation,
                schemas,
            }),
            handler: T::handler(),
        }
    }
}

fn actix_method(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Trace => Method::TRACE,
    }
}

/// The declarations of a route table, without their handlers: what the OpenAPI document and
/// the tests read.
pub fn infos(routes: &[Route]) -> Vec<Arc<RouteInfo>> {
    routes.iter().map(|route| route.info.clone()).collect()
}

/// The API operations of a route table: its declarations without the console's pages and
/// the SCIM service.
pub fn operations(routes: &[Route]) -> Vec<Arc<RouteInfo>> {
    routes
        .iter()
        .filter(|route| route.info.in_api_document())
        .map(|route| route.info.clone())
        .collect()
}

/// Registers `routes` with actix: the routes of one path share a resource, which answers 405
/// `method_not_allowed` (with `Allow`) to the other methods. `guard` wraps each route's
/// handler in the plane's policy layers; outside them, every route is marked with its
/// declaration ([`served_by`] reads it), so no plane can leave a route unmarked. `documents`
/// are what the plane's [`meta`] routes serve.
pub fn configure(
    config: &mut web::ServiceConfig,
    routes: Vec<Route>,
    documents: &'static meta::ApiDocuments,
    guard: impl Fn(actix_web::Route) -> actix_web::Route,
) {
    config.app_data(web::Data::new(documents));
    let mut paths: Vec<(String, Vec<Method>, Vec<actix_web::Route>)> = Vec::new();
    for route in routes {
        let handler =
            guard(route.handler).wrap(actix_web::middleware::from_fn(mark(route.info.clone())));
        let path = route.info.path.clone();
        match paths.iter_mut().find(|(known, _, _)| *known == path) {
            Some((_, methods, handlers)) => {
                methods.push(route.info.method.clone());
                handlers.push(handler);
            }
            None => paths.push((path, vec![route.info.method.clone()], vec![handler])),
        }
    }
    for (path, methods, handlers) in paths {
        let allow = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut resource = web::resource(path.as_str());
        for handler in handlers {
            resource = resource.route(handler);
        }
        config.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move {
                Err::<actix_web::HttpResponse, _>(crate::error::ApiError::method_not_allowed(
                    &allow,
                ))
            }
        })));
    }
}

/// The declared route a request is being served by (set by the plane's guard), if any: an
/// unrouted request (404) has none.
pub fn served_by(request: &actix_web::HttpRequest) -> Option<Arc<RouteInfo>> {
    use actix_web::HttpMessage as _;
    request.extensions().get::<Arc<RouteInfo>>().cloned()
}

/// What a route middleware returns.
type Answer = std::pin::Pin<
    Box<
        dyn std::future::Future<
            Output = Result<
                actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
                actix_web::Error,
            >,
        >,
    >,
>;

/// Route middleware: marks the request with its route's declaration, for the layers inside
/// it ([`served_by`]).
fn mark(
    info: Arc<RouteInfo>,
) -> impl Fn(
    actix_web::dev::ServiceRequest,
    actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Answer
       + Clone
       + 'static {
    move |request, next| {
        use actix_web::HttpMessage as _;
        request.extensions_mut().insert(info.clone());
        Box::pin(next.call(request))
    }
}
