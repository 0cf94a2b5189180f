//! The tenant console: server-rendered pages at `/console` on each tenant's host, for end
//! users (sign-in with password and two-factor, sign-up, the links our mails carry, profile,
//! sessions, two-factor enrolment). docs/console.md describes it.
//!
//! - Pages are routes like any other (`#[route]` in `routes.rs` and `account_routes.rs`):
//!   the same guard, rate classes and audit events as the API, and they call the same
//!   services. They are left out of the OpenAPI document (`shared::routes::RouteInfo::is_page`).
//! - A browser is signed in by a cookie that names one of the tenant's sessions (`service`,
//!   `store`); on console paths the request context takes its caller from that cookie and
//!   from nothing else (`tenancy::context`), and API paths never read it.
//! - `shared::console` holds what the operator console shares: the cookies, the layer that
//!   checks every form's CSRF token, sets the content security policy and turns errors into
//!   pages (through [`page::error_answer`]), the stylesheet; `page` has this console's frame
//!   and error page, from `data-plane/templates/console/`.

pub mod account_routes;
pub mod admin_routes;
pub mod directory_routes;
pub mod page;
pub mod roles_routes;
pub mod routes;
pub mod service;
pub mod settings_routes;
pub mod sso;
pub mod sso_setup;
mod store;
pub mod usage_routes;
