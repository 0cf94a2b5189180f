//! What both planes' consoles share (docs/console.md): the cookies and CSRF tokens
//! ([`cookies`]), the layer every console request passes ([`layer`]: CSRF check, content
//! security policy, errors as pages), the stylesheet, and the small helpers pages are made
//! of. Each plane keeps its own pages, templates and frame.

pub mod cookies;
pub mod layer;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use crate::error::ApiError;
use crate::routes::{route, routes, Route};

pub use layer::{page_for_browser, see_other, Csrf, ErrorPages, ErrorView};

/// The console's one stylesheet, served by both planes.
pub fn routes() -> Vec<Route> {
    routes![stylesheet]
}

#[route(get, "/console/assets/console.css", access = Public, audit = Never, rate = Unlimited)]
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../assets/console.css"))
}

/// The answer to a sign-in: on to `location` with the new session's cookie and a new CSRF
/// cookie (a browser's token before sign-in is not its token after).
pub fn signed_in(
    policy: &cookies::CookiePolicy,
    location: &str,
    session: &str,
) -> Result<HttpResponse, ApiError> {
    let mut answer = with_new_csrf(policy, location)?;
    answer.headers_mut().append(
        actix_web::http::header::SET_COOKIE,
        policy.set(cookies::SESSION_COOKIE, session, None),
    );
    Ok(answer)
}

/// The answer to a sign-out: on to `location`, the session cookie cleared and a new CSRF
/// cookie.
pub fn signed_out(
    policy: &cookies::CookiePolicy,
    location: &str,
) -> Result<HttpResponse, ApiError> {
    let mut answer = with_new_csrf(policy, location)?;
    answer.headers_mut().append(
        actix_web::http::header::SET_COOKIE,
        policy.clear(cookies::SESSION_COOKIE),
    );
    Ok(answer)
}

fn with_new_csrf(policy: &cookies::CookiePolicy, location: &str) -> Result<HttpResponse, ApiError> {
    let csrf = cookies::new_csrf_secret(&ring::rand::SystemRandom::new())
        .map_err(|error| ApiError::internal(&error))?;
    let mut answer = see_other(location);
    answer.headers_mut().append(
        actix_web::http::header::SET_COOKIE,
        policy.set(cookies::CSRF_COOKIE, &csrf, None),
    );
    Ok(answer)
}

/// `template` as an HTML answer with `status`.
pub fn render(
    status: StatusCode,
    template: &impl askama::Template,
) -> Result<HttpResponse, ApiError> {
    let html = template
        .render()
        .map_err(|error| ApiError::internal(&error))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// A refused form's answer: the error a service gave for what was typed, to show beside the
/// form with the error's status. `None` for errors that are not about the input (a database
/// outage, a busy node): those become the error page.
pub fn form_error(error: &ApiError) -> Option<(StatusCode, String)> {
    (!error.status().is_server_error()).then(|| (error.status(), error.message().to_owned()))
}

/// A service's refusal of what a form sent: its status and message, to show beside the form,
/// or, for errors that are not about the input, the error itself to answer as a page.
pub fn refused(error: impl Into<ApiError>) -> Result<(StatusCode, String), ApiError> {
    let error = error.into();
    form_error(&error).ok_or(error)
}

/// The rules a refused password broke (`password_policy`'s details), one per line.
pub fn failed_rules(error: &ApiError) -> Vec<String> {
    error
        .details()
        .and_then(|details| details.get("failed_rules"))
        .and_then(|rules| rules.as_array())
        .map(|rules| {
            rules
                .iter()
                .filter_map(|rule| rule.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A `next` target after sign-in: a console path of ours, never another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if crate::routes::is_console_path(next.split('?').next().unwrap_or_default())
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.starts_with("/console/sign-in") =>
        {
            next.to_owned()
        }
        _ => crate::routes::CONSOLE_PREFIX.to_owned(),
    }
}

/// A posted form's fields, repeated names kept (checkbox lists).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// Fields with these values (a form's defaults).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }

    /// Fields with these owned values.
    pub fn from_owned(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The first value of `name`, or "".
    pub fn one(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(field, _)| field == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(field, value)| field == name && !value.trim().is_empty())
            .map(|(_, value)| value.trim().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/console/sessions")), "/console/sessions");
        assert_eq!(safe_next(Some("/console/x?y=1")), "/console/x?y=1");
        for elsewhere in [
            "https://evil.example/console",
            "//evil.example/console",
            "/consolex",
            "/v1/me",
            "/console\\\\..\\\\x",
            "/console/sign-in?next=/console",
        ] {
            assert_eq!(safe_next(Some(elsewhere)), "/console", "{elsewhere}");
        }
        assert_eq!(safe_next(None), "/console");
    }
}
