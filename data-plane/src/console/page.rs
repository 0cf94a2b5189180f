//! What every console page shares: the [`Frame`] around it (the tenant's name, the CSRF
//! token its forms carry, who is signed in), rendering a template into an answer, and the
//! error page.
//!
//! Templates live in `data-plane/templates/console/` (askama: checked at compile time,
//! every value HTML-escaped unless a template says otherwise, which none does).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse};
use askama::Template;
use shared::error::ApiError;

use super::layer::Csrf;
use crate::authz;
use crate::identity::service::Me;
use crate::state::DataPlane;
use crate::tenancy::{Principal, RequestContext};

/// The frame of a page.
pub struct Frame {
    pub tenant_name: String,
    pub csrf: String,
    /// The signed-in user's email address, when someone is signed in.
    pub user: Option<String>,
    /// The admin pages the signed-in user's permissions open.
    pub nav: Nav,
}

/// Which admin pages the navigation links to: those whose route the user's permissions
/// admit (the guard decides again on each page; this only hides links that would be 403).
#[derive(Default)]
pub struct Nav {
    pub users: bool,
    pub api_keys: bool,
    pub audit: bool,
    pub sso: bool,
    pub usage: bool,
    pub roles: bool,
    pub settings: bool,
}

impl Nav {
    fn for_patterns(held: &[String]) -> Self {
        let has = |required: &str| held.iter().any(|granted| authz::grants(granted, required));
        Self {
            users: has(crate::users::READ),
            api_keys: has(crate::api_keys::MANAGE),
            audit: has(crate::audit::READ),
            sso: has(crate::sso::READ),
            usage: has(crate::usage::READ),
            roles: has(crate::roles::READ),
            settings: has(crate::settings::MANAGE),
        }
    }
}

impl Frame {
    /// The frame of a page for someone not signed in.
    pub fn new(context: &RequestContext, csrf: &Csrf, user: Option<String>) -> Self {
        Self {
            tenant_name: context.tenant.tenant.name.clone(),
            csrf: csrf.0.clone(),
            user,
            nav: Nav::default(),
        }
    }

    /// The frame of a page for the signed-in `principal`, and who they are.
    pub async fn signed_in(
        state: &DataPlane,
        context: &RequestContext,
        csrf: &Csrf,
        principal: &Principal,
    ) -> Result<(Self, Me), ApiError> {
        let me = crate::identity::service::me(state, context, principal).await?;
        let held = if principal.restrictions.is_empty() {
            authz::in_force(state, context, principal).await?
        } else {
            Vec::new()
        };
        let frame = Self {
            tenant_name: context.tenant.tenant.name.clone(),
            csrf: csrf.0.clone(),
            user: Some(me.email.as_str().to_owned()),
            nav: Nav::for_patterns(&held),
        };
        Ok((frame, me))
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

/// `template` as an HTML answer with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Result<HttpResponse, ApiError> {
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
            if shared::routes::is_console_path(next.split('?').next().unwrap_or_default())
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.starts_with("/console/sign-in") =>
        {
            next.to_owned()
        }
        _ => shared::routes::CONSOLE_PREFIX.to_owned(),
    }
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

/// The answer to an error on a console request: "sign in first" redirects to the sign-in
/// page (coming back to this page afterwards), anything else is a page with the status.
pub fn error_answer(
    request: &HttpRequest,
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<HeaderValue>,
) -> HttpResponse {
    if status == StatusCode::UNAUTHORIZED {
        let next = if request.method() == actix_web::http::Method::GET {
            request.uri().path_and_query().map(|path| path.as_str())
        } else {
            None
        };
        let location = match next.map(|next| safe_next(Some(next))) {
            Some(next) if next != shared::routes::CONSOLE_PREFIX => format!(
                "/console/sign-in?next={}",
                percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC)
            ),
            _ => "/console/sign-in".to_owned(),
        };
        return super::layer::see_other(&location);
    }
    let heading = match status {
        StatusCode::FORBIDDEN if code == "tenant_suspended" => "This account is suspended",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        status if status.is_server_error() => "Temporarily unavailable",
        _ => "Something is wrong with this request",
    };
    let tenant_name = request
        .extensions()
        .get::<RequestContext>()
        .map(|context| context.tenant.tenant.name.clone())
        .unwrap_or_else(|| "Tenantry".to_owned());
    let page = ErrorPage {
        frame: Frame {
            tenant_name,
            csrf: String::new(),
            user: None,
            nav: Nav::default(),
        },
        heading,
        code,
        message,
        retry_after: retry_after.and_then(|value| value.to_str().ok().map(str::to_owned)),
    };
    let mut answer = match render(status, &page) {
        Ok(answer) => answer,
        Err(_) => HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(message.to_owned()),
    };
    if let Some(value) = page.retry_after.as_deref() {
        if let Ok(value) = HeaderValue::from_str(value) {
            answer.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    answer
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
            "/console\\..\\x",
            "/console/sign-in?next=/console",
        ] {
            assert_eq!(safe_next(Some(elsewhere)), "/console", "{elsewhere}");
        }
        assert_eq!(safe_next(None), "/console");
    }
}

/// A page that says one thing and offers one link on (`notice.html`).
#[derive(Template)]
#[template(path = "console/notice.html")]
pub struct MessagePage {
    pub frame: Frame,
    pub heading: String,
    pub message: String,
    pub link_href: String,
    pub link_text: String,
}
