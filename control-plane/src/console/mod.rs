//! The operator console at `/console` on the control plane (docs/console.md): operators
//! sign in with an operator account (`control-plane operator account add`), find tenants by
//! slug or name a page at a time (usable at 10,000 tenants), create one with its first admin
//! invited, suspend and resume it, change its quotas, and delete it after typing its slug.
//! Pages are declared routes like the REST API's (`access = Operator`, the same services);
//! `shared::console` gives the cookies, the CSRF check, the CSP and the stylesheet.

pub mod routes;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

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
    retry_after: Option<String>,
}

/// The operator console's error page ([`shared::console::ErrorPages`]).
pub fn error_answer(
    _request: &HttpRequest,
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<HeaderValue>,
) -> HttpResponse {
    let heading = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        status if status.is_server_error() => "Temporarily unavailable",
        _ => "Something is wrong with this request",
    };
    let page = ErrorPage {
        frame: Frame {
            csrf: String::new(),
            operator: None,
        },
        heading,
        code,
        message,
        retry_after: retry_after.and_then(|value| value.to_str().ok().map(str::to_owned)),
    };
    let mut answer = shared::console::render(status, &page).unwrap_or_else(|_| {
        HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(message.to_owned())
    });
    if let Some(value) = page
        .retry_after
        .as_deref()
        .and_then(|value| HeaderValue::from_str(value).ok())
    {
        answer.headers_mut().insert(header::RETRY_AFTER, value);
    }
    answer
}
