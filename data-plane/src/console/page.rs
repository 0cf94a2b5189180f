//! What every console page shares: the [`Frame`] around it (the tenant's name, the CSRF
//! token its forms carry, who is signed in), rendering a template into an answer, and the
//! error page.
//!
//! Templates live in `data-plane/templates/console/` (askama: checked at compile time,
//! every value HTML-escaped unless a template says otherwise, which none does).

use actix_web::{HttpMessage as _, HttpRequest};
use askama::Template;
use shared::error::ApiError;

pub use shared::console::{failed_rules, form_error, refused, render, safe_next, Fields};
use shared::console::{Csrf, ErrorView};

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
    pub directory: bool,
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
            directory: has(crate::scim::MANAGE),
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
    retry_after: Option<&'a str>,
}

/// The names of the tenant's roles (built-in and custom), for a form's role choices.
pub async fn role_names(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<Vec<String>, ApiError> {
    Ok(crate::roles::service::list(state, context)
        .await?
        .into_iter()
        .map(|role| role.name)
        .collect())
}

/// The tenant console's error page ([`shared::console::ErrorPages`]), in the frame of the
/// tenant the request named, when it got that far.
pub fn error_page(request: &HttpRequest, error: &ErrorView<'_>) -> Result<String, ApiError> {
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
        heading: error.heading,
        code: error.code,
        message: error.message,
        retry_after: error.retry_after.as_deref(),
    };
    page.render().map_err(|error| ApiError::internal(&error))
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
