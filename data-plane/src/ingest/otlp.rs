//! OTLP/HTTP requests (protobuf or JSON, as the OpenTelemetry SDKs and the Collector send
//! them) turned into rows. Resource attribute `service.name` names the service; other resource,
//! scope and record attributes are kept as a JSON object.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};
use shared::events::rows::{new_event_id, LogRow, MetricRow, SpanRow};
use shared::events::Event;
use uuid::Uuid;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a valid OTLP protobuf message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("not a valid OTLP JSON message: {0}")]
    Json(#[from] shared::json_body::InvalidJson),
}

fn decode<T>(encoding: Encoding, body: &[u8]) -> Result<T, DecodeError>
where
    T: prost::Message + Default + serde::de::DeserializeOwned,
{
    Ok(match encoding {
        Encoding::Protobuf => T::decode(body)?,
        // The API's one JSON rule: no key named twice (`shared::json_body`).
        Encoding::Json => shared::json_body::parse(body)?,
    })
}

fn any_to_json(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(text)) => Value::String(text.clone()),
        Some(any_value::Value::BoolValue(flag)) => Value::Bool(*flag),
        Some(any_value::Value::IntValue(number)) => Value::from(*number),
        Some(any_value::Value::DoubleValue(number)) => {
            serde_json::Number::from_f64(*number).map_or(Value::Null, Value::Number)
        }
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.iter().map(any_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => Value::Object(attributes(&list.values)),
        Some(any_value::Value::BytesValue(bytes)) => Value::String(hex::encode(bytes)),
        // Dictionary references (profiles only) and empty values.
        _ => Value::Null,
    }
}

fn attributes(values: &[KeyValue]) -> Map<String, Value> {
    values
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Value::Null, any_to_json),
            )
        })
        .collect()
}

fn service_of(resource: Option<&Resource>) -> String {
    resource
        .and_then(|resource| {
            resource
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|value| match &value.value {
                    Some(any_value::Value::StringValue(name)) => Some(name.clone()),
                    _ => None,
                })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A resource's attributes but `service.name` (which is the row's service), read once for
/// all of the resource's records rather than once for each.
struct ResourceAttributes {
    map: Map<String, Value>,
    /// `map` as a JSON object: the attributes of a record that has none of its own.
    json: String,
}

impl ResourceAttributes {
    fn of(resource: Option<&Resource>) -> Self {
        let mut map = resource
            .map(|resource| attributes(&resource.attributes))
            .unwrap_or_default();
        map.remove("service.name");
        let json = Value::Object(map.clone()).to_string();
        Self { map, json }
    }

    /// These merged with a record's own attributes (which win), as a JSON object.
    fn with(&self, own: &[KeyValue]) -> String {
        if own.is_empty() {
            return self.json.clone();
        }
        let mut map = self.map.clone();
        map.extend(attributes(own));
        Value::Object(map).to_string()
    }
}

/// A time in nanoseconds, or `now` when the sender left it 0.
fn nanos_or(now_nanos: u64, nanos: u64) -> u64 {
    if nanos == 0 {
        now_nanos
    } else {
        nanos
    }
}

fn body_text(body: Option<&AnyValue>) -> String {
    match body.map(any_to_json) {
        Some(Value::String(text)) => text,
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn severity(number: i32, text: &str) -> String {
    if !text.is_empty() {
        return text.to_ascii_lowercase();
    }
    match number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => "unspecified",
    }
    .to_owned()
}

pub fn logs(
    encoding: Encoding,
    body: &[u8],
    tenant: Uuid,
    now_nanos: u64,
) -> Result<Vec<Event>, DecodeError> {
    let request: ExportLogsServiceRequest = decode(encoding, body)?;
    let tenant_id = tenant.to_string();
    let mut events = Vec::new();
    for resource_logs in &request.resource_logs {
        let resource = resource_logs.resource.as_ref();
        let service = service_of(resource);
        let resource_attributes = ResourceAttributes::of(resource);
        for scope in &resource_logs.scope_logs {
            for record in &scope.log_records {
                let nanos = nanos_or(
                    now_nanos,
                    nanos_or(record.observed_time_unix_nano, record.time_unix_nano),
                );
                events.push(Event::Log(LogRow {
                    tenant_id: tenant_id.clone(),
                    time: (nanos / 1_000_000_000) as u32,
                    time_unix_nano: nanos,
                    event_id: new_event_id(),
                    service: service.clone(),
                    severity: severity(record.severity_number, &record.severity_text),
                    body: body_text(record.body.as_ref()),
                    trace_id: hex::encode(&record.trace_id),
                    span_id: hex::encode(&record.span_id),
                    attributes: resource_attributes.with(&record.attributes),
                }));
            }
        }
    }
    Ok(events)
}

pub fn metrics(
    encoding: Encoding,
    body: &[u8],
    tenant: Uuid,
    now_nanos: u64,
) -> Result<Vec<Event>, DecodeError> {
    let request: ExportMetricsServiceRequest = decode(encoding, body)?;
    let tenant_id = tenant.to_string();
    let mut events = Vec::new();
    for resource_metrics in &request.resource_metrics {
        let resource = resource_metrics.resource.as_ref();
        let service = service_of(resource);
        let resource_attributes = ResourceAttributes::of(resource);
        for scope in &resource_metrics.scope_metrics {
            for metric in &scope.metrics {
                // (kind, time, value, attributes) of each data point.
                type Point<'a> = (&'static str, u64, f64, &'a [KeyValue]);
                macro_rules! points {
                    ($points:expr, $kind:literal, $point:ident => $value:expr) => {
                        $points
                            .iter()
                            .map(|$point| {
                                ($kind, $point.time_unix_nano, $value, &$point.attributes[..])
                            })
                            .collect()
                    };
                }
                let points: Vec<Point> = match &metric.data {
                    Some(metric::Data::Gauge(gauge)) => {
                        points!(gauge.data_points, "gauge", p => number(&p.value))
                    }
                    Some(metric::Data::Sum(sum)) => {
                        points!(sum.data_points, "sum", p => number(&p.value))
                    }
                    Some(metric::Data::Histogram(histogram)) => {
                        points!(histogram.data_points, "histogram_sum", p => p.sum.unwrap_or(0.0))
                    }
                    Some(metric::Data::ExponentialHistogram(histogram)) => {
                        points!(histogram.data_points, "histogram_sum", p => p.sum.unwrap_or(0.0))
                    }
                    Some(metric::Data::Summary(summary)) => {
                        points!(summary.data_points, "summary_sum", p => p.sum)
                    }
                    None => Vec::new(),
                };
                for (kind, nanos, value, point_attributes) in points {
                    let nanos = nanos_or(now_nanos, nanos);
                    events.push(Event::Metric(MetricRow {
                        tenant_id: tenant_id.clone(),
                        time: (nanos / 1_000_000_000) as u32,
                        time_unix_nano: nanos,
                        event_id: new_event_id(),
                        service: service.clone(),
                        name: metric.name.clone(),
                        kind: kind.to_owned(),
                        value: if value.is_finite() { value } else { 0.0 },
                        unit: metric.unit.clone(),
                        attributes: resource_attributes.with(point_attributes),
                    }));
                }
            }
        }
    }
    Ok(events)
}

fn number(value: &Option<number_data_point::Value>) -> f64 {
    match value {
        Some(number_data_point::Value::AsDouble(number)) => *number,
        Some(number_data_point::Value::AsInt(number)) => *number as f64,
        None => 0.0,
    }
}

pub fn traces(
    encoding: Encoding,
    body: &[u8],
    tenant: Uuid,
    now_nanos: u64,
) -> Result<Vec<Event>, DecodeError> {
    let request: ExportTraceServiceRequest = decode(encoding, body)?;
    let tenant_id = tenant.to_string();
    let mut events = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans.resource.as_ref();
        let service = service_of(resource);
        let resource_attributes = ResourceAttributes::of(resource);
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                let start = nanos_or(now_nanos, span.start_time_unix_nano);
                events.push(Event::Span(SpanRow {
                    tenant_id: tenant_id.clone(),
                    time: (start / 1_000_000_000) as u32,
                    start_unix_nano: start,
                    end_unix_nano: span.end_time_unix_nano.max(start),
                    event_id: new_event_id(),
                    service: service.clone(),
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    name: span.name.clone(),
                    kind: match span.kind {
                        1 => "internal",
                        2 => "server",
                        3 => "client",
                        4 => "producer",
                        5 => "consumer",
                        _ => "unspecified",
                    }
                    .to_owned(),
                    status_code: match span.status.as_ref().map(|status| status.code) {
                        Some(1) => "ok",
                        Some(2) => "error",
                        _ => "unset",
                    }
                    .to_owned(),
                    attributes: resource_attributes.with(&span.attributes),
                }));
            }
        }
    }
    Ok(events)
}
