//! The layer every console request passes (each plane's `server::build` puts it around the
//! app; it acts only on paths under `/console`):
//! - a browser without a CSRF cookie gets one with its first page, and the page's forms the
//!   token of it ([`Csrf`]);
//! - a state-changing request must carry, in its form, the token of the CSRF cookie it sends;
//!   otherwise it is refused (403 page) before any route, guard or service runs;
//! - a `multipart/form-data` form (one with a file field) reaches its route as the same
//!   url-encoded fields, a file's text as its field's value, so every route reads one format;
//! - the answer carries the console's content security policy (no script, no inline style,
//!   no framing, forms post only to us);
//! - an error from any layer inside (the guard's 401/403, a suspended tenant, a rate limit,
//!   a database outage) becomes an HTML page with the same status, and "sign in first"
//!   becomes a redirect to the sign-in page that comes back here afterwards.

use crate::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;

use super::cookies::{self, CookiePolicy, CSRF_COOKIE, CSRF_FIELD, CSRF_PREFIX};

/// An error as a console page tells it.
pub struct ErrorView<'a> {
    pub heading: &'static str,
    /// The error's machine code (`csrf_token_invalid`, `tenant_suspended`, …).
    pub code: &'a str,
    pub message: &'a str,
    /// Seconds to wait, when the error said (`Retry-After`).
    pub retry_after: Option<String>,
}

/// How a plane renders an error page of its console (its pages carry its own frame): app
/// data each plane registers. The layer answers with the error's status, its `Retry-After`
/// and, should the page not render, the message as plain text. 401 never reaches it: that is
/// a redirect to sign-in.
#[derive(Clone, Copy)]
pub struct ErrorPages(pub fn(&HttpRequest, &ErrorView<'_>) -> Result<String, ApiError>);

/// A page's heading for an error of `status` and `code`.
fn heading(status: StatusCode, code: &str) -> &'static str {
    match status {
        StatusCode::FORBIDDEN if code == "tenant_suspended" => "This account is suspended",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        status if status.is_server_error() => "Temporarily unavailable",
        _ => "Something is wrong with this request",
    }
}

/// The error page of `pages` for an error, with its status and `Retry-After`.
fn error_page(
    pages: ErrorPages,
    request: &HttpRequest,
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<HeaderValue>,
) -> HttpResponse {
    let view = ErrorView {
        heading: heading(status, code),
        code,
        message,
        retry_after: retry_after
            .as_ref()
            .and_then(|value| value.to_str().ok().map(str::to_owned)),
    };
    let mut answer = match (pages.0)(request, &view) {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(_) => HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(message.to_owned()),
    };
    if let Some(value) = retry_after {
        answer.headers_mut().insert(header::RETRY_AFTER, value);
    }
    answer
}

/// For a browser-facing route outside `/console` (an SSO callback or ACS, where a person's
/// browser lands): `error` as the console's error page when the request asks for HTML (a
/// browser's `Accept`), with the console's CSP; otherwise `error` itself, for the API's JSON.
pub fn page_for_browser(request: &HttpRequest, error: ApiError) -> Result<HttpResponse, ApiError> {
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let Some(pages) = request.app_data::<ErrorPages>().copied() else {
        return Err(error);
    };
    if !wants_html || error.status() == StatusCode::UNAUTHORIZED && error.code() == "unauthorized" {
        return Err(error);
    }
    let mut answer = error_page(
        pages,
        request,
        error.status(),
        error.code(),
        error.message(),
        None,
    );
    answer.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    Ok(answer)
}

/// The console's content security policy: our stylesheet and images (and the `data:` QR code
/// of MFA enrolment), forms posting only to this origin, nothing else — no script at all.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest console form body: forms are a few fields, the largest an identity provider's
/// metadata file (Entra's, with its signing certificates, is tens of KiB).
const FORM_LIMIT: usize = 256 * 1024;

/// The CSRF token this request's forms carry.
#[derive(Debug, Clone)]
pub struct Csrf(pub String);

impl FromRequest for Csrf {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Csrf>()
                .cloned()
                .ok_or_else(|| ApiError::internal(&"console page outside the console layer")),
        )
    }
}

/// App middleware: see the module documentation.
pub async fn pages(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !crate::routes::is_console_path(req.path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let (Some(policy), Some(pages)) = (
        req.app_data::<CookiePolicy>().copied(),
        req.app_data::<ErrorPages>().copied(),
    ) else {
        return Ok(req.error_response(ApiError::internal(&"console layer without its app data")));
    };
    let rng = ring::rand::SystemRandom::new();
    let secret = cookies::read(req.request(), CSRF_COOKIE, CSRF_PREFIX);
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD);
    let mut new_secret = None;
    match (&secret, changes_state) {
        (Some(secret), true) => {
            let body = match read_form(&mut req).await {
                Ok(body) => body,
                Err(error) => return Ok(finish(req.error_response(error), &policy, pages, None)),
            };
            let body = match url_encoded(&mut req, body).await {
                Ok(body) => body,
                Err(error) => return Ok(finish(req.error_response(error), &policy, pages, None)),
            };
            let presented = url::form_urlencoded::parse(&body)
                .find(|(name, _)| name == CSRF_FIELD)
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            if !cookies::form_token_matches(secret, &presented) {
                return Ok(finish(
                    req.error_response(stale_form()),
                    &policy,
                    pages,
                    None,
                ));
            }
            req.set_payload(payload_of(body));
            req.extensions_mut()
                .insert(Csrf(cookies::form_token(secret)));
        }
        (None, true) => {
            return Ok(finish(
                req.error_response(stale_form()),
                &policy,
                pages,
                None,
            ))
        }
        (Some(secret), false) => {
            req.extensions_mut()
                .insert(Csrf(cookies::form_token(secret)));
        }
        (None, false) => {
            let fresh = match cookies::new_csrf_secret(&rng) {
                Ok(fresh) => fresh,
                Err(error) => {
                    return Ok(finish(
                        req.error_response(ApiError::internal(&error)),
                        &policy,
                        pages,
                        None,
                    ))
                }
            };
            req.extensions_mut()
                .insert(Csrf(cookies::form_token(&fresh)));
            new_secret = Some(fresh);
        }
    }
    let response = next.call(req).await?.map_into_boxed_body();
    Ok(finish(
        response,
        &policy,
        pages,
        new_secret.as_deref().map(String::as_str),
    ))
}

/// A form whose token is missing or not its cookie's: an old page, another site's form, or a
/// browser that lost its cookies.
fn stale_form() -> ApiError {
    ApiError::forbidden(
        "csrf_token_invalid",
        "this form has expired or did not come from this site; reload the page and try again",
    )
}

async fn read_form(req: &mut ServiceRequest) -> Result<web::Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::bad_request("invalid_body", "the form did not arrive"))?;
        if body.len() + chunk.len() > FORM_LIMIT {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the form is too large",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// `body` as url-encoded fields: a `multipart/form-data` body is decoded (each part's text
/// under its name; a file must be UTF-8 text) and the request's content type changed to match.
async fn url_encoded(req: &mut ServiceRequest, body: web::Bytes) -> Result<web::Bytes, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Ok(body);
    }
    let invalid = || ApiError::bad_request("invalid_body", "the form did not arrive whole");
    let boundary = multer::parse_boundary(content_type).map_err(|_| invalid())?;
    let mut multipart = multer::Multipart::new(
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) }),
        boundary,
    );
    let mut fields = url::form_urlencoded::Serializer::new(String::new());
    while let Some(field) = multipart.next_field().await.map_err(|_| invalid())? {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(|_| invalid())?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            ApiError::bad_request(
                "invalid_upload",
                if is_file {
                    "the file is not text: upload the XML file itself"
                } else {
                    "a field is not UTF-8 text"
                },
            )
        })?;
        fields.append_pair(&name, &text);
    }
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    Ok(web::Bytes::from(fields.finish()))
}

fn payload_of(body: web::Bytes) -> actix_web::dev::Payload {
    actix_web::dev::Payload::from(body)
}

/// The console's headers on `response`, its error as a page, and the new CSRF cookie.
fn finish(
    response: ServiceResponse<BoxBody>,
    policy: &CookiePolicy,
    pages: ErrorPages,
    new_csrf: Option<&str>,
) -> ServiceResponse<BoxBody> {
    let mut response = match response.response().error() {
        Some(error)
            if response.status().is_client_error() || response.status().is_server_error() =>
        {
            let (status, code, message) = match error.as_error::<ApiError>() {
                Some(error) => (error.status(), error.code(), error.message().to_owned()),
                None => (
                    response.status(),
                    "error",
                    "the request could not be served".to_owned(),
                ),
            };
            let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
            let (request, _) = response.into_parts();
            let answer = if status == StatusCode::UNAUTHORIZED {
                to_sign_in(&request)
            } else {
                error_page(pages, &request, status, code, &message, retry_after)
            };
            ServiceResponse::new(request, answer)
        }
        _ => response,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    if let Some(secret) = new_csrf {
        headers.append(header::SET_COOKIE, policy.set(CSRF_COOKIE, secret, None));
    }
    response
}

/// A redirect (303: the browser follows it with a GET) to `location`, a path of ours.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// "Sign in first": to the sign-in page, which comes back to this page afterwards (a GET's
/// own path; a form's answer goes to sign-in alone).
fn to_sign_in(request: &HttpRequest) -> HttpResponse {
    let next = if request.method() == Method::GET {
        request.uri().path_and_query().map(|path| path.as_str())
    } else {
        None
    };
    let location = match next.map(|next| super::safe_next(Some(next))) {
        Some(next) if next != crate::routes::CONSOLE_PREFIX => format!(
            "/console/sign-in?next={}",
            percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC)
        ),
        _ => "/console/sign-in".to_owned(),
    };
    see_other(&location)
}
