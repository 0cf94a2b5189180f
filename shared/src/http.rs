//! The HTTP pieces both planes' servers share: request ids, JSON error envelopes for
//! extractor failures and unknown routes, the request header limits (431), and the common
//! security headers. JSON request bodies are read by `crate::json_body`.
//!
//! Every response carries `X-Request-Id` (the caller's, when it is a sane token, else a new
//! UUIDv7), and every error body built from an [`ApiError`] carries the same id. Error
//! responses that actix or a library built (a payload error, a 405 with an empty body) are
//! turned into the same JSON envelope here, so no client ever sees a plain-text error.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use crate::error::ApiError;

pub mod body;
pub mod client_address;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Names the tenant on the current request's span (see [`request_id`]).
pub fn record_tenant(slug: &str) {
    tracing::Span::current().record("tenant", slug);
}

/// The id of the request being served, stored in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn acceptable_request_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Middleware: assigns the request id, and puts it into the response header and into the
/// body of every [`ApiError`] response. The request runs in a `request` span carrying the id
/// (and the tenant, once a plane resolves it: [`record_tenant`]), so every log line written
/// while serving it names both.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| acceptable_request_id(value))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));

    let span = tracing::info_span!("request", request_id = %id, tenant = tracing::field::Empty);
    let response = tracing::Instrument::instrument(next.call(req), span).await?;
    let mut response = match api_error_of(&response) {
        Some(error) => {
            let (request, original) = response.into_parts();
            let mut body = actix_web::ResponseError::error_response(&error.with_request_id(&id));
            // Keep what inner middleware added (rate-limit headers, CORS) to the first body.
            for (name, value) in original.headers() {
                if name != actix_web::http::header::CONTENT_TYPE
                    && name != actix_web::http::header::CONTENT_LENGTH
                    && !body.headers().contains_key(name)
                {
                    body.headers_mut().append(name.clone(), value.clone());
                }
            }
            ServiceResponse::new(request, body)
        }
        None => response.map_into_boxed_body(),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// The [`ApiError`] a response should be answered with: its own, or, for an error response
/// built elsewhere (an actix error, an empty-bodied 4xx/5xx), one of the same status.
fn api_error_of<B: MessageBody>(response: &ServiceResponse<B>) -> Option<ApiError> {
    let status = response.status();
    if let Some(error) = response.response().error() {
        if let Some(api_error) = error.as_error::<ApiError>() {
            return Some(api_error.clone());
        }
        return Some(api_error_for_status(status, &error.to_string()));
    }
    let empty = matches!(
        response.response().body().size(),
        actix_web::body::BodySize::None | actix_web::body::BodySize::Sized(0)
    );
    (empty && (status.is_client_error() || status.is_server_error()))
        .then(|| api_error_for_status(status, ""))
}

/// The envelope for an error status we did not build ourselves. `detail` (actix's own text)
/// is shown only for 400s, where it says what was wrong with the request.
fn api_error_for_status(status: actix_web::http::StatusCode, detail: &str) -> ApiError {
    use actix_web::http::StatusCode;
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported_media_type(),
        StatusCode::NOT_FOUND => ApiError::not_found("route_not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "this route does not accept this method",
        ),
        StatusCode::BAD_REQUEST if !detail.is_empty() => {
            ApiError::bad_request("invalid_request", detail)
        }
        status if status.is_client_error() => {
            ApiError::new(status, "invalid_request", "the request is not acceptable")
        }
        _ => ApiError::internal(&format_args!("unhandled {status}: {detail}")),
    }
}

/// 413, for every body over its limit.
pub fn payload_too_large() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request body is too large",
    )
}

/// `raw` as HTML text or a quoted attribute value: `& < > " '` escaped.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for character in raw.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// 415, for a JSON endpoint sent anything but `application/json` (`crate::json_body`).
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "expected Content-Type: application/json",
    )
}

/// Runs the rest of the chain for `req` within `limit`: past it the handler is dropped (an
/// open transaction rolls back) and the answer is 503 `request_timeout`, counted in `metrics`
/// and logged with its path and request id at most once a second. Counted here because the
/// answer is an error the outer middleware pass on as it is (the request they would need for
/// a full response is gone with the dropped handler), so the refusal layer cannot see it.
pub async fn within_deadline(
    limit: std::time::Duration,
    metrics: &crate::metrics::NodeMetrics,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let path = req.path().to_owned();
    let request_id = request_id_of(req.request());
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(response) => response.map(ServiceResponse::map_into_boxed_body),
        Err(_) => {
            if let Some(unlogged) = metrics.refused(503, "request_timeout") {
                tracing::warn!(
                    path,
                    request_id,
                    unlogged,
                    "request did not finish within its deadline"
                );
            }
            Err(ApiError::unavailable(
                "request_timeout",
                "the request could not be completed in time; retry shortly",
            )
            .with_request_id(&request_id)
            .into())
        }
    }
}

/// The request id of `req`, for handlers that log.
pub fn request_id_of(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default()
}

/// Largest raw body (`web::Bytes`, `String`) an endpoint accepts unless it sets its own.
/// JSON bodies have their own, smaller limit (`crate::json_body::JSON_BODY_LIMIT`).
pub const RAW_BODY_LIMIT: usize = 1024 * 1024;

/// Extractor configuration that turns bad paths and query strings into 400s with the JSON
/// envelope instead of actix's plain-text bodies, and bounds raw bodies. JSON bodies are read
/// by `crate::json_body::Json`, which needs no configuration.
pub fn configure_extractors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::default().limit(RAW_BODY_LIMIT))
        .app_data(web::PathConfig::default().error_handler(|error, _| {
            ApiError::bad_request("invalid_path", error.to_string()).into()
        }))
        .app_data(web::QueryConfig::default().error_handler(|error, _| {
            ApiError::bad_request("invalid_query", error.to_string()).into()
        }));
}

/// Largest request header line (`name: value`) either plane accepts: 8 KiB, the line limit
/// of Apache (`LimitRequestFieldSize`) and nginx (`large_client_header_buffers 4 8k`), so a
/// header that passes the usual proxy in front of us passes here too.
pub const MAX_HEADER_LINE_BYTES: usize = 8 * 1024;
/// Largest sum of a request's header lines: 32 KiB, nginx's default (four 8 KiB buffers).
/// actix's HTTP/1 codec refuses heads over 128 KiB (or over 96 headers) itself, with a bare
/// 431 before any middleware runs; everything under that gets the JSON envelope here.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Middleware: 431 `request_headers_too_large` for a request with a header line over
/// [`MAX_HEADER_LINE_BYTES`] or headers over [`MAX_HEADER_BYTES`] in all. Runs inside
/// [`request_id`], so the answer is the JSON envelope with a request id, and before anything
/// looks at a header (tenant, credentials, CORS).
pub async fn limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(error) = oversized_headers(req.headers()) {
        return Ok(req.error_response(error));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// The refusal for `headers`, if they are over a limit. A line is counted as sent
/// (`name: value`), without its line break.
fn oversized_headers(headers: &actix_web::http::header::HeaderMap) -> Option<ApiError> {
    use actix_web::http::StatusCode;
    let mut total: usize = 0;
    for (name, value) in headers {
        let line = name.as_str().len() + 2 + value.len();
        if line > MAX_HEADER_LINE_BYTES {
            let name: String = name.as_str().chars().take(64).collect();
            return Some(
                ApiError::new(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "request_headers_too_large",
                    format!("the {name} header is over {MAX_HEADER_LINE_BYTES} bytes"),
                )
                .with_details(serde_json::json!({
                    "header": name,
                    "limit_bytes": MAX_HEADER_LINE_BYTES,
                })),
            );
        }
        total += line;
    }
    (total > MAX_HEADER_BYTES).then(|| {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_headers_too_large",
            format!("the request's headers are over {MAX_HEADER_BYTES} bytes in all"),
        )
        .with_details(serde_json::json!({ "limit_bytes": MAX_HEADER_BYTES }))
    })
}

/// The answer for a route that does not exist.
pub async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("route_not_found", "no such route"))
}

/// App data that turns on `Strict-Transport-Security`: registered by a server whose public
/// URLs are `https` (browsers ignore the header over plain HTTP anyway, and a development
/// server on `http` must not pin itself to HTTPS).
#[derive(Debug, Clone, Copy)]
pub struct Hsts(pub bool);

impl Hsts {
    /// On when `public_scheme` is `https`.
    pub fn for_scheme(public_scheme: &str) -> Self {
        Self(public_scheme.eq_ignore_ascii_case("https"))
    }
}

/// Middleware: security headers every API response carries, errors included. API responses
/// are JSON, never HTML, so the content security policy allows nothing and no framing.
/// `Cache-Control: no-store` is the default (tokens and personal data must not sit in
/// caches); a handler that sets its own `Cache-Control` keeps it.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let hsts = req.app_data::<Hsts>().is_some_and(|hsts| hsts.0);
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    // A console page sets its own (stricter than none: its stylesheet, its forms).
    if !headers.contains_key(actix_web::http::header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            actix_web::http::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if !headers.contains_key(actix_web::http::header::CACHE_CONTROL) {
        headers.insert(
            actix_web::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
    }
    if hsts {
        headers.insert(
            actix_web::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    Ok(response)
}
