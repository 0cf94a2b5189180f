//! SCIM on the wire: request bodies (`application/scim+json` or `application/json`), answers
//! as `application/scim+json`, and errors as SCIM error documents (RFC 7644 §3.12).
//!
//! [`reshape`] wraps the whole app and rewrites every error answered under `/scim/v2`, whoever
//! made it (tenant resolution, the route guard, the rate limiter, a handler), from the API's
//! envelope (`{"error": {"code", "message"}}`) into `{"schemas": [Error], "status", "scimType",
//! "detail"}`, so a directory reads one error format and the API's codes map in one table.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use shared::error::ApiError;

/// SCIM's media type (RFC 7644 §8.1).
pub const MEDIA_TYPE: &str = "application/scim+json";
/// The schema of SCIM error documents.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The schema of list answers.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Largest SCIM request body: a group's membership change may name many users.
pub const BODY_LIMIT: usize = 512 * 1024;

/// `document` as a SCIM answer with `status`.
pub fn answer(status: StatusCode, document: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(MEDIA_TYPE)
        .body(document.to_string())
}

/// A request's SCIM body: a JSON object, sent as `application/scim+json` or `application/json`
/// (415 otherwise), read to [`BODY_LIMIT`] with the one rule every body follows (codings
/// undone, duplicate keys refused).
pub async fn read_body(req: &HttpRequest, payload: web::Payload) -> Result<Value, ApiError> {
    let media_type = req.mime_type().ok().flatten();
    let accepted = media_type.as_ref().is_some_and(|mime| {
        let essence = mime.essence_str();
        essence.eq_ignore_ascii_case(MEDIA_TYPE) || essence.eq_ignore_ascii_case("application/json")
    });
    if !accepted {
        return Err(shared::http::unsupported_media_type());
    }
    let bytes = shared::http::body::read(req, payload.into_inner(), BODY_LIMIT).await?;
    let document: Value = shared::json_body::parse(&bytes)?;
    if !document.is_object() {
        return Err(ApiError::bad_request(
            "invalid_syntax",
            "the body must be a JSON object",
        ));
    }
    Ok(document)
}

/// The `scimType` of an API error code, where SCIM names one (RFC 7644 §3.12, table 9).
fn scim_type(code: &str) -> Option<&'static str> {
    Some(match code {
        "invalid_filter" => "invalidFilter",
        "invalid_path" => "invalidPath",
        "invalid_value" | "invalid_email" => "invalidValue",
        "invalid_syntax" | "invalid_json" | "invalid_body" | "invalid_query" => "invalidSyntax",
        "no_target" => "noTarget",
        "mutability" => "mutability",
        "uniqueness" | "user_exists" => "uniqueness",
        "too_many" => "tooMany",
        _ => return None,
    })
}

/// The SCIM error document for an error answer's status and API envelope.
fn error_document(status: StatusCode, envelope: &Value) -> Value {
    let error = &envelope["error"];
    let code = error["code"].as_str().unwrap_or_default();
    let message = error["message"].as_str().unwrap_or("the request failed");
    let mut document = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.as_u16().to_string(),
        "detail": message,
    });
    if let Some(scim_type) = scim_type(code) {
        document["scimType"] = json!(scim_type);
    }
    document
}

/// App middleware, outside the request-id layer (which writes the final API error body): an
/// error answered under `/scim/v2` becomes a SCIM error document, with the same status and
/// headers (`Retry-After`, the request id, rate-limit headers).
pub async fn reshape(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !shared::routes::is_scim_path(req.path()) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    // Every layer inside answers its refusals as responses (`req.error_response`), so an
    // `Err` here is actix's own and is left as it is.
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(response);
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    // Error bodies are small and already built: reading one costs nothing worth bounding.
    let envelope = match to_bytes(body).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let mut reshaped = answer(status, &error_document(status, &envelope));
    for (name, value) in head.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            reshaped.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(ServiceResponse::new(request, reshaped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_error_becomes_a_scim_error_with_its_type() {
        let envelope = json!({"error": {"code": "invalid_filter", "message": "bad filter"}});
        let document = error_document(StatusCode::BAD_REQUEST, &envelope);
        assert_eq!(
            document,
            json!({
                "schemas": [ERROR_SCHEMA],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "bad filter",
            })
        );
        let refused = json!({"error": {"code": "invalid_api_key", "message": "no"}});
        let document = error_document(StatusCode::UNAUTHORIZED, &refused);
        assert_eq!(document["status"], "401");
        assert!(document.get("scimType").is_none());
    }
}
