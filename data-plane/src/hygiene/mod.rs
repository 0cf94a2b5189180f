//! Request hygiene: what every request and response of the data plane goes through, whatever
//! the endpoint.
//!
//! - **Header size** (`shared::http::limit_headers`, both planes): a header line over 8 KiB or
//!   headers over 32 KiB in all are refused with 431 `request_headers_too_large`.
//! - **Body size**: a body declared larger than `max_body_bytes` is refused with 413
//!   `payload_too_large` before any handler runs; a body without a declared length (chunked)
//!   is cut off at the same size, which fails its extractor with the same 413. JSON bodies
//!   are further limited to `shared::json_body::JSON_BODY_LIMIT` by the JSON extractor.
//! - **Compressed bodies** (`shared::http::body`): gzip and deflate are undone, the endpoint's
//!   limit counts decoded bytes, other codings are 415 `unsupported_content_encoding`.
//! - **JSON only where JSON is expected, by one rule** (`shared::json_body`, both planes):
//!   `application/json` with optional parameters, else 415 `unsupported_media_type`; malformed
//!   JSON, and an object naming a key twice, 400 `invalid_json`. Any error response actix
//!   builds itself is turned into the JSON envelope by `shared::http::request_id`.
//! - **Security headers** (`shared::http::security_headers`): `nosniff`, `DENY` framing, a
//!   CSP that allows nothing, `no-referrer`, `no-store`, and HSTS when the public scheme is
//!   https.
//! - **CORS** per tenant: see `crate::cors`.
//! - **The client's address** ([`client_address`]): the TCP peer, or behind the proxies in
//!   `trusted_proxies` the first untrusted hop of their forwarding header read from the right
//!   (`shared::http::client_address`). Rate limits, API-key allow-lists, role conditions,
//!   sessions, sign-in attempts and audit events all take it from here.
//!
//! None of this touches the database or allocates per request beyond actix's own work.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web;
use futures_util::StreamExt as _;

use crate::state::DataPlane;

/// The address of the client that sent `request`: the TCP peer, or, when that peer is one of
/// the node's `trusted_proxies`, the client they forwarded (`None` when the peer is unknown).
pub fn client_address(request: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
    match request.app_data::<web::Data<DataPlane>>() {
        Some(state) => state.config.trusted_proxies.client_address(request),
        None => request.peer_addr().map(|peer| peer.ip().to_canonical()),
    }
}

/// Middleware: refuses bodies over the node's `max_body_bytes` (413, JSON) and bounds bodies
/// of unknown length to the same size.
pub async fn limit_body(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<DataPlane>>()
        .map_or(shared::http::RAW_BODY_LIMIT, |state| {
            state.config.max_body_bytes
        });
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
        });
    let may_stream = req
        .headers()
        .contains_key(actix_web::http::header::TRANSFER_ENCODING)
        || req.version() >= actix_web::http::Version::HTTP_2;
    match declared {
        Some(Some(length)) if length > limit as u64 => {
            return Ok(req.error_response(shared::http::payload_too_large()));
        }
        // A declared length at or under the limit is enforced by the HTTP decoder; an
        // unreadable one is refused by it.
        Some(_) => {}
        // Without a declared length an HTTP/1 request has a body only when chunked.
        None if may_stream => {
            let (request, payload) = req.into_parts();
            let payload = bounded(payload, limit);
            return next
                .call(ServiceRequest::from_parts(request, payload))
                .await
                .map(ServiceResponse::map_into_boxed_body);
        }
        None => {}
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// `payload`, failing with `Overflow` once more than `limit` bytes have arrived.
fn bounded(payload: Payload, limit: usize) -> Payload {
    let mut seen: usize = 0;
    let stream = payload.map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            Err(PayloadError::Overflow)
        } else {
            Ok(chunk)
        }
    });
    Payload::Stream {
        payload: Box::pin(stream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::web::Bytes;

    fn chunks(sizes: &[usize]) -> Payload {
        let items: Vec<Result<Bytes, PayloadError>> = sizes
            .iter()
            .map(|size| Ok(Bytes::from(vec![b'x'; *size])))
            .collect();
        Payload::Stream {
            payload: Box::pin(futures_util::stream::iter(items)),
        }
    }

    async fn read(payload: Payload) -> Result<usize, PayloadError> {
        let mut total = 0;
        let mut payload = payload;
        while let Some(chunk) = payload.next().await {
            total += chunk?.len();
        }
        Ok(total)
    }

    #[actix_web::test]
    async fn a_body_of_unknown_length_is_cut_off_past_the_limit() {
        assert_eq!(read(bounded(chunks(&[40, 60]), 100)).await.unwrap(), 100);
        assert!(matches!(
            read(bounded(chunks(&[40, 60, 1]), 100)).await,
            Err(PayloadError::Overflow)
        ));
    }
}
