//! Records: the tenant's collections of JSON records for end users
//! (`/v1/collections/{collection}/records`) and the collections' settings
//! (`/v1/collections`). See `docs/records.md` for the API and the decisions behind it.
//!
//! Invariants:
//! - Every route declares `records.{collection}:<action>`, which the route guard checks
//!   before its handler runs; reading sensitive fields needs
//!   `sensitive.<collection>:read`, a separate family that `records:*` does not cover.
//! - Nothing from a request reaches SQL text: collection and field names are parsed into
//!   [`names`] types and travel as parameters; sort orders are an enum mapped to fixed SQL.
//! - Sensitive fields are never stored in clear: they are sealed with the tenant's current
//!   data key (its version stored beside) and bound to tenant, collection and record id.
//! - A write, its version bump and the tenant's storage total change in one transaction; a
//!   write refused (version mismatch, quota, bad input) changes nothing.
//! - In an `owner` collection a record another caller owns is absent (404) unless the caller
//!   holds `records.<collection>:manage`.

pub mod body;
pub mod collections;
pub mod document;
pub mod names;
pub mod query;
pub mod routes;
pub mod service;
pub mod store;

use actix_web::http::StatusCode;
use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

use crate::tenancy::data_keys::DataKeyError;

/// Largest record body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("no such record")]
    NotFound,
    #[error("no such collection")]
    CollectionNotFound,
    #[error("{0}")]
    InvalidCollection(String),
    #[error("invalid field name: a field name is 1 to 63 characters of A-Z, a-z, 0-9 and _, not starting with a digit")]
    InvalidField(String),
    #[error(transparent)]
    InvalidJson(#[from] shared::json_body::InvalidJson),
    #[error("a record is a JSON object")]
    NotAnObject,
    #[error("{0}")]
    InvalidRecord(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("invalid collection settings: {0}")]
    InvalidSettings(String),
    #[error("the cursor is not one this API issued")]
    InvalidCursor,
    #[error("{0:?} is a sensitive field of this collection and cannot be filtered on")]
    SensitiveFilter(String),
    #[error("If-Match must be \"*\" or a list of quoted versions, such as \"3\"")]
    InvalidPrecondition,
    #[error("the record is at version {current}, not the one in If-Match")]
    VersionMismatch { current: i64 },
    #[error("this write needs {needed} more bytes; the tenant stores {used} of {limit} allowed")]
    QuotaExceeded { limit: i64, used: i64, needed: i64 },
    #[error("a record body has at most {} bytes", MAX_BODY_BYTES)]
    TooLarge,
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("the request body could not be read")]
    BodyUnreadable,
    #[error(transparent)]
    Body(#[from] shared::http::body::BodyError),
    #[error(transparent)]
    Db(#[from] TenantDbError),
    #[error(transparent)]
    DataKey(#[from] DataKeyError),
    #[error("sealing or opening sensitive fields failed: {0}")]
    Crypto(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

impl From<tokio_postgres::Error> for RecordsError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}

/// Client input quoted back in an error, cut short.
fn echo(text: &str) -> String {
    text.chars().take(64).collect()
}

impl From<RecordsError> for ApiError {
    fn from(error: RecordsError) -> Self {
        let message = error.to_string();
        match error {
            RecordsError::NotFound => ApiError::not_found("record_not_found", message),
            RecordsError::CollectionNotFound => {
                ApiError::not_found("collection_not_found", message)
            }
            RecordsError::InvalidCollection(_) => {
                ApiError::bad_request("invalid_collection", message)
            }
            RecordsError::InvalidField(field) => ApiError::bad_request("invalid_field", message)
                .with_details(serde_json::json!({ "field": echo(&field) })),
            RecordsError::InvalidJson(invalid) => ApiError::from(invalid),
            RecordsError::NotAnObject | RecordsError::InvalidRecord(_) => {
                ApiError::bad_request("invalid_record", message)
            }
            RecordsError::InvalidQuery(_) => ApiError::bad_request("invalid_query", message),
            RecordsError::InvalidSettings(_) => ApiError::bad_request("invalid_settings", message),
            RecordsError::InvalidCursor => ApiError::bad_request("invalid_cursor", message),
            RecordsError::SensitiveFilter(field) => {
                ApiError::bad_request("sensitive_filter", message)
                    .with_details(serde_json::json!({ "field": echo(&field) }))
            }
            RecordsError::InvalidPrecondition => {
                ApiError::bad_request("invalid_precondition", message)
            }
            RecordsError::VersionMismatch { current } => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "version_mismatch", message)
                    .with_details(serde_json::json!({ "current_version": current }))
            }
            RecordsError::QuotaExceeded {
                limit,
                used,
                needed,
            } => ApiError::forbidden("quota_exceeded", message).with_details(serde_json::json!({
                "quota": "max_storage_bytes",
                "limit": limit,
                "used": used,
                "requested": needed,
            })),
            RecordsError::TooLarge => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
                    .with_details(serde_json::json!({ "limit_bytes": MAX_BODY_BYTES }))
            }
            RecordsError::UnsupportedMediaType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                message,
            ),
            RecordsError::BodyUnreadable => ApiError::bad_request("invalid_body", message),
            RecordsError::Body(shared::http::body::BodyError::TooLarge) => {
                RecordsError::TooLarge.into()
            }
            RecordsError::Body(error) => error.into(),
            RecordsError::Db(error) => error.into(),
            RecordsError::DataKey(error) => error.into(),
            RecordsError::Crypto(_) | RecordsError::Corrupt(_) => ApiError::internal(&error),
        }
    }
}
