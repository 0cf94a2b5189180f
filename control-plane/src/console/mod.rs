//! The operator console at `/console` on the control plane (docs/console.md): operators
//! sign in with an operator account (`control-plane operator account add`), find tenants by
//! slug or name a page at a time (usable at 10,000 tenants), create one with its first admin
//! invited, suspend and resume it, change its quotas, see its SSO providers, verify its audit
//! chain, and delete it after typing its slug; and roll the tenant template's newest version
//! over the fleet, watching its progress.
//! Pages are declared routes like the REST API's (`access = Operator`, the same services);
//! `shared::console` gives the cookies, the CSRF check, the CSP and the stylesheet.

pub mod routes;
pub mod templates_routes;

use actix_web::HttpRequest;
use askama::Template;
use shared::console::ErrorView;
use shared::error::ApiError;

/// The frame of an operator page.
pub struct Frame {
    pub csrf: String,
    /// The signed-in operator (`account <email>`), when someone is signed in.
    pub operator: Option<String>,
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    frame: Frame,
    heading: &'a str,
    code: &'a str,
    message: &'a str,
    retry_after: Option<&'a str>,
}

/// The operator console's error page ([`shared::console::ErrorPages`]).
pub fn error_page(_request: &HttpRequest, error: &ErrorView<'_>) -> Result<String, ApiError> {
    let page = ErrorPage {
        frame: Frame {
            csrf: String::new(),
            operator: None,
        },
        heading: error.heading,
        code: error.code,
        message: error.message,
        retry_after: error.retry_after.as_deref(),
    };
    page.render().map_err(|error| ApiError::internal(&error))
}
