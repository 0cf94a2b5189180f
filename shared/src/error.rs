//! The one error type every HTTP handler of both planes returns, and its mapping to a status,
//! a stable machine-readable code and the JSON envelope `{"error": {"code", "message",
//! "request_id"}}`.
//!
//! Invariant: a client never sees internal detail. [`ApiError::internal`] logs its cause and
//! answers with a generic message; every other constructor carries a message written for
//! the client.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// What `Retry-After` says on a 503 `database_unavailable`: a busy pool frees a connection
/// within a request's time; a restarting Postgres takes a few seconds.
pub const DATABASE_RETRY_AFTER_SECONDS: u64 = 2;

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    request_id: Option<String>,
    /// Machine-readable specifics (e.g. every rule a password broke).
    details: Option<serde_json::Value>,
    /// A header the answer carries besides the envelope (boxed: errors travel in `Result`s
    /// and stay small).
    header: Option<Box<Header>>,
}

#[derive(Debug, Clone)]
enum Header {
    /// Seconds after which a retry can succeed (`Retry-After`).
    RetryAfter(u64),
    /// The methods the path accepts, for a 405 (`Allow`).
    Allow(String),
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            request_id: None,
            details: None,
            header: None,
        }
    }

    /// The same error with machine-readable specifics in its body.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A 405 for a path that accepts only `allow` (methods, comma-separated).
    pub fn method_not_allowed(allow: &str) -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this route accepts only {allow}"),
        );
        error.header = Some(Box::new(Header::Allow(allow.to_owned())));
        error
    }

    /// The same error with a `Retry-After` header.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.header = Some(Box::new(Header::RetryAfter(seconds)));
        self
    }

    pub fn too_many_requests(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// The one answer of both planes when no Postgres connection could be had in time (pool
    /// exhausted, Postgres unreachable) or Postgres missed a round trip's deadline: 503
    /// `database_unavailable` with `Retry-After`. The client caused nothing and nothing
    /// changed, so it may simply retry.
    pub fn database_unavailable() -> Self {
        Self::unavailable(
            "database_unavailable",
            "the database is busy or unavailable; retry shortly",
        )
        .with_retry_after(DATABASE_RETRY_AFTER_SECONDS)
    }

    /// An error the client did not cause. The cause is logged here, where it is handled,
    /// and never shown to the client.
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }

    /// The same error, answered with the request id in its body.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// Every pool failure is the database being unavailable to this request: the wait for a
/// connection timed out, a new connection could not be made (Postgres down or not answering),
/// or the pool is closed (the node is stopping).
impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        crate::observability::at_most_once_a_second("no database connection", |unlogged| {
            tracing::warn!(%error, unlogged, "no database connection");
        });
        Self::database_unavailable()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let envelope = Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
                request_id: self.request_id.as_deref(),
                details: self.details.as_ref(),
            },
        };
        let mut response = HttpResponse::build(self.status);
        match self.header.as_deref() {
            Some(Header::RetryAfter(seconds)) => {
                response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
            }
            Some(Header::Allow(allow)) => {
                response.insert_header((actix_web::http::header::ALLOW, allow.as_str()));
            }
            None => {}
        }
        response.json(envelope)
    }
}
