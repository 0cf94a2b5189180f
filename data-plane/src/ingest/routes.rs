//! HTTP for telemetry ingestion: OTLP/HTTP on its standard paths and bulk NDJSON/CSV.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::json;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::otlp::{self, Decoder, Encoding};
use super::{bulk, service, WRITE};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![
        post_otlp_logs,
        post_otlp_metrics,
        post_otlp_traces,
        post_bulk_events,
    ]
}

fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn unsupported(expected: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("expected Content-Type: {expected}"),
    )
}

fn otlp_encoding(req: &HttpRequest) -> Result<Encoding, ApiError> {
    match media_type(req).as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(unsupported("application/x-protobuf or application/json")),
    }
}

/// The body, decoded (`Content-Encoding: gzip` or `deflate`, as OpenTelemetry Collectors send
/// it), within the limit the node allows for telemetry once decoded.
async fn body(
    state: &DataPlane,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Vec<u8>, ApiError> {
    let limit = state.config.telemetry_max_body_bytes;
    Ok(shared::http::body::read(req, payload.into_inner(), limit).await?)
}

/// An empty Export…ServiceResponse in JSON: no `partialSuccess`, so everything was accepted.
#[derive(Serialize, utoipa::ToSchema)]
struct OtlpJsonResponse {}

/// An OTLP success answer in the request's encoding (an empty Export…ServiceResponse).
fn otlp_ok(encoding: Encoding) -> HttpResponse {
    match encoding {
        Encoding::Protobuf => HttpResponse::Ok()
            .content_type("application/x-protobuf")
            .body(Vec::<u8>::new()),
        Encoding::Json => HttpResponse::Ok().json(OtlpJsonResponse {}),
    }
}

/// What a bulk ingestion answers.
#[derive(Serialize, utoipa::ToSchema)]
struct BulkAccepted {
    /// The number of events stored.
    accepted: usize,
}

async fn otlp_request(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
    decode: Decoder,
) -> Result<HttpResponse, ApiError> {
    let encoding = otlp_encoding(&req)?;
    let body = body(&state, &req, payload).await?;
    let now_nanos = u64::try_from(state.clock.now().unix_timestamp_nanos()).unwrap_or(0);
    let events = decode(encoding, &body, context.tenant.tenant.id, now_nanos)
        .map_err(|error| ApiError::bad_request("invalid_otlp", error.to_string()))?;
    service::accept(&state, &context, events).await?;
    Ok(otlp_ok(encoding))
}

#[route(
    post, "/v1/logs",
    summary = "Ingest OTLP logs",
    access = UserOrKey(WRITE),
    audit = Never,
    rate = Write,
    tag = "telemetry",
    request_body(content((String = "application/x-protobuf"), (Object = "application/json")), description = "An OTLP/HTTP ExportLogsServiceRequest, protobuf (`application/x-protobuf` or `application/protobuf`) or JSON"),
    responses((status = 200, description = "Accepted: an empty ExportLogsServiceResponse in the request's encoding", content((OtlpJsonResponse = "application/json"), (String = "application/x-protobuf")))))]
async fn post_otlp_logs(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    otlp_request(req, context, state, payload, otlp::logs).await
}

#[route(
    post, "/v1/metrics",
    summary = "Ingest OTLP metrics",
    access = UserOrKey(WRITE),
    audit = Never,
    rate = Write,
    tag = "telemetry",
    request_body(content((String = "application/x-protobuf"), (Object = "application/json")), description = "An OTLP/HTTP ExportMetricsServiceRequest, protobuf (`application/x-protobuf` or `application/protobuf`) or JSON"),
    responses((status = 200, description = "Accepted: an empty ExportMetricsServiceResponse in the request's encoding", content((OtlpJsonResponse = "application/json"), (String = "application/x-protobuf")))))]
async fn post_otlp_metrics(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    otlp_request(req, context, state, payload, otlp::metrics).await
}

#[route(
    post, "/v1/traces",
    summary = "Ingest OTLP traces",
    access = UserOrKey(WRITE),
    audit = Never,
    rate = Write,
    tag = "telemetry",
    request_body(content((String = "application/x-protobuf"), (Object = "application/json")), description = "An OTLP/HTTP ExportTracesServiceRequest, protobuf (`application/x-protobuf` or `application/protobuf`) or JSON"),
    responses((status = 200, description = "Accepted: an empty ExportTracesServiceResponse in the request's encoding", content((OtlpJsonResponse = "application/json"), (String = "application/x-protobuf")))))]
async fn post_otlp_traces(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    otlp_request(req, context, state, payload, otlp::traces).await
}

#[route(
    post, "/v1/telemetry/events",
    summary = "Ingest events in bulk (NDJSON or CSV)",
    access = UserOrKey(WRITE),
    audit = Never,
    rate = Write,
    tag = "telemetry",
    request_body(content((String = "application/x-ndjson"), (String = "text/csv")), description = "Events, one per line: NDJSON (`application/x-ndjson`, `application/jsonl` or `application/jsonlines`) or CSV with a header line (`text/csv`); all or nothing"),
    responses((status = 202, description = "Accepted: the number of events stored", body = BulkAccepted)))]
async fn post_bulk_events(
    req: HttpRequest,
    context: RequestContext,
    state: web::Data<DataPlane>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let media = media_type(&req);
    let csv = match media.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => false,
        "text/csv" => true,
        _ => return Err(unsupported("application/x-ndjson or text/csv")),
    };
    let body = body(&state, &req, payload).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_body", "the body must be UTF-8"))?;
    let tenant = context.tenant.tenant.id;
    let now = state.clock.now();
    let parsed = if csv {
        bulk::parse_csv(text, tenant, now)
    } else {
        bulk::parse_ndjson(text, tenant, now)
    };
    let events = parsed.map_err(|errors| {
        ApiError::bad_request(
            "invalid_events",
            format!(
                "{} line(s) are invalid; nothing was stored (the batch is all or nothing)",
                errors.len()
            ),
        )
        .with_details(json!({ "errors": errors }))
    })?;
    if events.is_empty() {
        return Err(ApiError::bad_request("no_events", "the body has no events"));
    }
    let accepted = service::accept(&state, &context, events).await?;
    Ok(HttpResponse::Accepted().json(BulkAccepted { accepted }))
}
