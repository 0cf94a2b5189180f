//! Reading a record from a request body: the content type first (415), then at most
//! [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES) bytes (413, refused from `Content-Length` before
//! reading when it is declared), then JSON (400). The records routes read their bodies here
//! rather than through `shared::json_body::Json`, whose limit is the API-wide one for small
//! admin bodies; the content type and the JSON itself are judged by the same rules
//! (`shared::json_body::{is_json, parse}`: `application/json`, no key named twice). The one
//! addition is JSON merge patch's own media type on PATCH.

use actix_web::{web, HttpMessage as _, HttpRequest};
use serde_json::Value;
use shared::json_body;

use super::{RecordsError, MAX_BODY_BYTES};

/// The media types a body may be sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// `application/json`.
    Json,
    /// `application/merge-patch+json` (RFC 7396) or `application/json`.
    MergePatch,
}

fn check_content_type(req: &HttpRequest, accept: Accept) -> Result<(), RecordsError> {
    let merge_patch = || {
        req.mime_type().ok().flatten().is_some_and(|mime| {
            mime.essence_str()
                .eq_ignore_ascii_case("application/merge-patch+json")
        })
    };
    let accepted = match accept {
        Accept::Json => json_body::is_json(req),
        Accept::MergePatch => json_body::is_json(req) || merge_patch(),
    };
    if accepted {
        Ok(())
    } else {
        Err(RecordsError::UnsupportedMediaType(match accept {
            Accept::Json => "expected Content-Type: application/json",
            Accept::MergePatch => {
                "expected Content-Type: application/merge-patch+json or application/json"
            }
        }))
    }
}

/// The body's bytes, bounded.
async fn read_bounded(req: &HttpRequest, payload: web::Payload) -> Result<Vec<u8>, RecordsError> {
    let declared = shared::http::body::declared_length(req);
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(RecordsError::TooLarge);
    }
    Ok(shared::http::body::read(req, payload.into_inner(), MAX_BODY_BYTES).await?)
}

/// A JSON body of an accepted content type, within the size limit.
pub async fn json_body(
    req: &HttpRequest,
    payload: web::Payload,
    accept: Accept,
) -> Result<Value, RecordsError> {
    check_content_type(req, accept)?;
    let bytes = read_bounded(req, payload).await?;
    Ok(json_body::parse(&bytes)?)
}
