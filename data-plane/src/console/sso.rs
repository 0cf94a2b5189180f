//! Single sign-on from the console: the sign-in page's provider buttons and email discovery
//! start a sign-in that lands back in the console, signed in, instead of ending on a page of
//! tokens. The start gives the browser a secret (cookie `tenantry_sso`) whose digest the
//! login transaction keeps; the callback (`sso::routes`) finishes only in a browser that shows
//! it again, so nobody can complete their own sign-in in someone else's browser.

use actix_web::http::header::{self, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};
use shared::secret_token::{token_digest, SecretToken};

use super::page::{render, safe_next, Fields, Frame};
use crate::identity::service::TokenResponse;
use crate::sso::departure::Departure;
use crate::sso::settings::ProviderKind;
use crate::sso::store::ProviderRow;
use crate::sso::{oauth, saml, Destination, Landing};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use shared::console::cookies::{self, CookiePolicy, SSO_COOKIE, SSO_PREFIX};
use shared::console::Csrf;

pub fn routes() -> Vec<Route> {
    routes![start, discover_page, discover]
}

/// The digest of the request's SSO cookie, if it has one (for the callback's check).
pub fn browser_digest(request: &HttpRequest) -> Option<Vec<u8>> {
    cookies::read(request, SSO_COOKIE, SSO_PREFIX).map(|secret| token_digest(&secret))
}

/// The answer to a finished sign-in the console started: its session bound to a new cookie,
/// and on to where it started.
pub async fn land(
    state: &DataPlane,
    context: &RequestContext,
    tokens: &TokenResponse,
    landing: &Landing,
) -> Result<HttpResponse, ApiError> {
    let secret = super::service::bind(state, context, tokens).await?;
    let policy = CookiePolicy::for_scheme(&state.config.public_scheme);
    let next = safe_next(Some(&landing.return_to));
    let mut answer = shared::console::signed_in(&policy, &next, &secret)?;
    let headers = answer.headers_mut();
    headers.append(SET_COOKIE, policy.clear_sso());
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(answer)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StartQuery {
    next: Option<String>,
    login_hint: Option<String>,
}

/// Sends the browser to the provider, for a sign-in that comes back to the console.
#[route(get, "/console/sso/{name}", access = Public, rate = Read)]
async fn start(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    let provider: ProviderRow = oauth::enabled_provider(&state, &context, &path).await?;
    let login_hint = query
        .login_hint
        .as_deref()
        .filter(|hint| hint.len() <= 254 && !hint.chars().any(char::is_control));
    let return_to = safe_next(query.next.as_deref());
    to_provider(&state, &context, &provider, return_to, login_hint, false).await
}

/// Sends this browser to `provider` for a sign-in (or, `test`, an admin's test of it) that
/// comes back to `return_to` in the console, giving the browser the secret the callback
/// will ask to see again.
pub async fn to_provider(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    return_to: String,
    login_hint: Option<&str>,
    test: bool,
) -> Result<HttpResponse, ApiError> {
    let secret = SecretToken::generate(&state.rng, SSO_PREFIX)
        .map_err(|error| ApiError::internal(&error))?;
    let destination = Destination::Console(Landing {
        return_to,
        browser_digest: secret.digest().to_vec(),
        test,
    });
    let departure = match &provider.settings.provider {
        ProviderKind::Saml(_) => saml::start(state, context, provider, &destination).await?,
        _ => Departure::Redirect(
            oauth::start(state, context, provider, login_hint, &destination).await?,
        ),
    };
    let policy = CookiePolicy::for_scheme(&state.config.public_scheme);
    Ok(departure.response(&[(SET_COOKIE, policy.set_sso(secret.as_str()))]))
}

#[derive(Template)]
#[template(path = "console/sso.html")]
struct DiscoverPage {
    frame: Frame,
    email: String,
    /// The provider found for the address: its name and display name.
    found: Option<(String, String)>,
    error: Option<String>,
    next: String,
}

#[route(get, "/console/sso", access = Public, rate = Read)]
async fn discover_page(context: RequestContext, csrf: Csrf) -> Result<HttpResponse, ApiError> {
    let page = DiscoverPage {
        frame: Frame::new(&context, &csrf, None),
        email: String::new(),
        found: None,
        error: None,
        next: shared::routes::CONSOLE_PREFIX.to_owned(),
    };
    render(StatusCode::OK, &page)
}

/// Finds the provider for an address. Answers with a page that links to the provider rather
/// than a redirect: the page's policy lets forms lead only to this site.
#[route(post, "/console/sso",
    access = Public,
    audit = event("auth.sso_discover", "sso_provider"),
    rate = Write)]
async fn discover(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let typed = fields.one("email").trim().to_owned();
    let mut page = DiscoverPage {
        frame: Frame::new(&context, &csrf, None),
        email: typed.clone(),
        found: None,
        error: None,
        next: safe_next(Some(fields.one("next"))),
    };
    let Ok(email) = Email::parse(&typed) else {
        page.error = Some("enter a valid email address".to_owned());
        return render(StatusCode::BAD_REQUEST, &page);
    };
    let found = crate::sso::discovery::discover(&state, &context, &email).await?;
    match (found.provider, found.display_name) {
        (Some(name), display_name) => {
            let shown = display_name
                .filter(|shown| !shown.is_empty())
                .unwrap_or(name.clone());
            page.found = Some((name, shown));
            render(StatusCode::OK, &page)
        }
        _ => {
            page.error = Some(
                "addresses of this domain have no single sign-on here; sign in with your password"
                    .to_owned(),
            );
            render(StatusCode::NOT_FOUND, &page)
        }
    }
}
