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

use shared::console::Csrf;
pub use shared::console::{failed_rules, form_error, refused, render, safe_next, Fields};

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

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    frame: Frame,
    heading: &'a str,
    code: &'a str,
    message: &'a str,
    retry_after: Option<String>,
}

/// The tenant console's error page ([`shared::console::ErrorPages`]): the status, what went
/// wrong, and when to try again.
pub fn error_answer(
    request: &HttpRequest,
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<HeaderValue>,
) -> HttpResponse {
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
