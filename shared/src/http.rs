//! The HTTP pieces both planes' servers share: request ids, JSON error envelopes for
//! extractor failures and unknown routes, and the common security headers.
//!
//! Every response carries `X-Request-Id` (the caller's, when it is a sane token, else a new
//! UUIDv7), and every error body built from an [`ApiError`] carries the same id.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use crate::error::ApiError;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

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
/// body of every [`ApiError`] response.
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

    let response = next.call(req).await?;
    let api_error = response
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>())
        .cloned();
    let mut response = match api_error {
        Some(error) => {
            let (request, _) = response.into_parts();
            let body = actix_web::ResponseError::error_response(&error.with_request_id(&id));
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

/// The request id of `req`, for handlers that log.
pub fn request_id_of(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default()
}

/// Extractor configuration that turns malformed JSON, paths and query strings into 400s
/// with the JSON envelope instead of actix's plain-text bodies.
pub fn configure_extractors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|error, _| {
                let api_error = match &error {
                    actix_web::error::JsonPayloadError::ContentType => ApiError::new(
                        actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_media_type",
                        "expected Content-Type: application/json",
                    ),
                    actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
                    | actix_web::error::JsonPayloadError::Overflow { .. } => ApiError::new(
                        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "request body is too large",
                    ),
                    other => ApiError::bad_request("invalid_json", other.to_string()),
                };
                api_error.into()
            }),
    )
    .app_data(
        web::PathConfig::default().error_handler(|error, _| {
            ApiError::bad_request("invalid_path", error.to_string()).into()
        }),
    )
    .app_data(
        web::QueryConfig::default().error_handler(|error, _| {
            ApiError::bad_request("invalid_query", error.to_string()).into()
        }),
    );
}

/// The answer for a route that does not exist.
pub async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("route_not_found", "no such route"))
}

/// Middleware: security headers every API response carries.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    Ok(response)
}
