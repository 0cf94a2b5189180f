//! OTLP/HTTP requests (protobuf or JSON, as the OpenTelemetry SDKs and the Collector send
//! them) turned into rows. Resource attribute `service.name` names the service; the other
//! resource attributes and the record's own (which win) are kept as one JSON object.
//! Both encodings are read into [`model`]'s types, which borrow the request's strings.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use shared::events::rows::{new_event_id, LogRow, MetricRow, SpanRow};
use shared::events::Event;
use uuid::Uuid;

mod model;

use model::{AnyValue, Attribute, LogsRequest, MetricsRequest, Resource, TracesRequest};

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

/// One signal's reader ([`logs`], [`metrics`], [`traces`]): a body, its tenant and the time
/// to give events that carry none, to rows.
pub type Decoder = fn(Encoding, &[u8], Uuid, u64) -> Result<Vec<Event>, DecodeError>;

/// Reads `body` as `$json` (JSON, straight into the borrowing model) or as `$proto` (protobuf,
/// then viewed through the model), and hands the model to `$rows`.
macro_rules! read {
    ($encoding:expr, $body:expr, $proto:ty => $json:ty, $rows:expr) => {
        match $encoding {
            Encoding::Protobuf => {
                let request = <$proto>::decode($body)?;
                Ok($rows(<$json>::from(&request)))
            }
            // The API's one JSON rule: no key named twice (`shared::json_body`).
            Encoding::Json => Ok($rows(shared::json_body::parse::<$json>($body)?)),
        }
    };
}

fn service_of(resource: Option<&Resource>) -> String {
    resource
        .and_then(|resource| {
            resource
                .attributes
                .iter()
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| match &attribute.value {
                    AnyValue::Str(name) => Some(name.clone().into_owned()),
                    _ => None,
                })
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A resource's attributes but `service.name` (which is the row's service), read once for
/// all of the resource's records rather than once for each.
struct ResourceAttributes<'r> {
    /// In key order, a key named again keeping its last value.
    entries: Vec<(&'r str, &'r AnyValue<'r>)>,
    /// `entries` as a JSON object: the attributes of a record that has none of its own.
    json: String,
}

impl<'r> ResourceAttributes<'r> {
    fn of(resource: Option<&'r Resource<'r>>) -> Self {
        let mut entries =
            resource.map_or_else(Vec::new, |resource| in_key_order(&resource.attributes));
        entries.retain(|(key, _)| *key != "service.name");
        let json = merged(&entries, Vec::new());
        Self { entries, json }
    }

    /// These merged with a record's own attributes (which win), as a JSON object: the object
    /// a map of the resource's attributes, then the record's in turn, would be (keys in
    /// order, a key named again keeping its last value), written without building that map.
    fn with(&self, own: &[Attribute]) -> String {
        if own.is_empty() {
            return self.json.clone();
        }
        merged(&self.entries, in_key_order(own))
    }
}

/// `resource` and `own` attributes (both in key order) as one JSON object, `own` winning.
fn merged(resource: &[(&str, &AnyValue)], own: Vec<(&str, &AnyValue)>) -> String {
    // Writing strings, numbers and objects with string keys cannot fail.
    serde_json::to_string(&Merged { resource, own }).unwrap_or_default()
}

/// Attributes sorted by key, a key named again keeping its last value (what collecting them
/// into a map does).
fn in_key_order<'v>(attributes: &'v [Attribute<'v>]) -> Vec<(&'v str, &'v AnyValue<'v>)> {
    let mut entries: Vec<_> = attributes
        .iter()
        .map(|attribute| (attribute.key.as_ref(), &attribute.value))
        .collect();
    // Stable: of the attributes of one key, the last stays last.
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = later.1;
        }
        same
    });
    entries
}

/// A resource's attributes (in key order) under a record's own ones, also in key order.
struct Merged<'r, 'v> {
    resource: &'r [(&'r str, &'r AnyValue<'r>)],
    own: Vec<(&'v str, &'v AnyValue<'v>)>,
}

impl serde::Serialize for Merged<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut object = serializer.serialize_map(None)?;
        let mut resource = self.resource.iter().peekable();
        for (key, value) in &self.own {
            while let Some((name, value)) = resource.next_if(|(name, _)| name < key) {
                object.serialize_entry(name, value)?;
            }
            // The record's own value wins over the resource's.
            resource.next_if(|(name, _)| name == key);
            object.serialize_entry(key, value)?;
        }
        for (name, value) in resource {
            object.serialize_entry(name, value)?;
        }
        object.end()
    }
}

/// An attribute's value as JSON: bytes as hex, a number JSON cannot hold (NaN, infinities)
/// and no value as `null`, a key-value list as an object ([`in_key_order`]).
impl serde::Serialize for AnyValue<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AnyValue::Str(text) => serializer.serialize_str(text),
            AnyValue::Bool(flag) => serializer.serialize_bool(*flag),
            AnyValue::Int(number) => serializer.serialize_i64(*number),
            AnyValue::Double(number) if number.is_finite() => serializer.serialize_f64(*number),
            AnyValue::Double(_) | AnyValue::Empty => serializer.serialize_unit(),
            AnyValue::Array(values) => serializer.collect_seq(values),
            AnyValue::Kvlist(values) => serializer.collect_map(in_key_order(values)),
            AnyValue::Bytes(bytes) => serializer.serialize_str(&hex::encode(bytes)),
        }
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

fn body_text(body: Option<AnyValue>) -> String {
    match body {
        Some(AnyValue::Str(text)) => text.into_owned(),
        Some(AnyValue::Empty) | None => String::new(),
        // Writing strings, numbers and objects with string keys cannot fail.
        Some(other) => serde_json::to_string(&other).unwrap_or_default(),
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
    read!(encoding, body, ExportLogsServiceRequest => LogsRequest, |request: LogsRequest| {
        log_rows(request, tenant, now_nanos)
    })
}

fn log_rows(request: LogsRequest, tenant: Uuid, now_nanos: u64) -> Vec<Event> {
    let tenant_id = tenant.to_string();
    let mut events = Vec::new();
    for resource_logs in request.resource_logs {
        let resource = resource_logs.resource.as_ref();
        let service = service_of(resource);
        let resource_attributes = ResourceAttributes::of(resource);
        for scope in resource_logs.scope_logs {
            // Room for the scope's rows at once: they are moved, not copied, from here on.
            events.reserve(scope.log_records.len());
            for record in scope.log_records {
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
                    attributes: resource_attributes.with(&record.attributes),
                    body: body_text(record.body),
                    trace_id: record.trace_id.into_owned(),
                    span_id: record.span_id.into_owned(),
                }));
            }
        }
    }
    events
}

pub fn metrics(
    encoding: Encoding,
    body: &[u8],
    tenant: Uuid,
    now_nanos: u64,
) -> Result<Vec<Event>, DecodeError> {
    read!(encoding, body, ExportMetricsServiceRequest => MetricsRequest, |request: MetricsRequest| {
        metric_rows(request, tenant, now_nanos)
    })
}

fn metric_rows(request: MetricsRequest, tenant: Uuid, now_nanos: u64) -> Vec<Event> {
    let tenant_id = tenant.to_string();
    let mut events = Vec::new();
    for resource_metrics in request.resource_metrics {
        let resource = resource_metrics.resource.as_ref();
        let service = service_of(resource);
        let resource_attributes = ResourceAttributes::of(resource);
        for scope in resource_metrics.scope_metrics {
            for metric in scope.metrics {
                let (kind, points) = metric.points();
                events.reserve(points.len());
                for point in points {
                    let nanos = nanos_or(now_nanos, point.time_unix_nano);
                    let value = point.value(kind);
                    events.push(Event::Metric(MetricRow {
                        tenant_id: tenant_id.clone(),
                        time: (nanos / 1_000_000_000) as u32,
                        time_unix_nano: nanos,
                        event_id: new_event_id(),
                        service: service.clone(),
                        name: metric.name.clone().into_owned(),
                        kind: kind.name().to_owned(),
                        value: if value.is_finite() { value } else { 0.0 },
                        unit: metric.unit.clone().into_owned(),
                        attributes: resource_attributes.with(&point.attributes),
                    }));
                }
            }
        }
    }
    events
}

pub fn traces(
    encoding: Encoding,
    body: &[u8],
    tenant: Uuid,
    now_nanos: u64,
) -> Result<Vec<Event>, DecodeError> {
    read!(encoding, body, ExportTraceServiceRequest => TracesRequest, |request: TracesRequest| {
        span_rows(request, tenant, now_nanos)
    })
}

fn span_rows(request: TracesRequest, tenant: Uuid, now_nanos: u64) -> Vec<Event> {
    let tenant_id = tenant.to_string();
    let mut events = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.as_ref();
        let service = service_of(resource);
        let resource_attributes = ResourceAttributes::of(resource);
        for scope in resource_spans.scope_spans {
            events.reserve(scope.spans.len());
            for span in scope.spans {
                let start = nanos_or(now_nanos, span.start_time_unix_nano);
                events.push(Event::Span(SpanRow {
                    tenant_id: tenant_id.clone(),
                    time: (start / 1_000_000_000) as u32,
                    start_unix_nano: start,
                    end_unix_nano: span.end_time_unix_nano.max(start),
                    event_id: new_event_id(),
                    service: service.clone(),
                    trace_id: span.trace_id.into_owned(),
                    span_id: span.span_id.into_owned(),
                    parent_span_id: span.parent_span_id.into_owned(),
                    name: span.name.into_owned(),
                    kind: match span.kind {
                        1 => "internal",
                        2 => "server",
                        3 => "client",
                        4 => "producer",
                        5 => "consumer",
                        _ => "unspecified",
                    }
                    .to_owned(),
                    status_code: match span.status.map(|status| status.code) {
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
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{
        any_value, AnyValue as ProtoAny, ArrayValue, KeyValue, KeyValueList,
    };
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, number_data_point, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
        Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
        Summary, SummaryDataPoint,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
    use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
    use serde_json::{Map, Value};

    const NOW: u64 = 1_800_000_000_000_000_000;

    fn any(value: any_value::Value) -> Option<ProtoAny> {
        Some(ProtoAny { value: Some(value) })
    }

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: any(value),
            ..KeyValue::default()
        }
    }

    fn text(value: &str) -> any_value::Value {
        any_value::Value::StringValue(value.to_owned())
    }

    /// Every kind of attribute value, nested ones included, and a string that needs escapes.
    fn every_kind_of_value() -> Vec<KeyValue> {
        vec![
            kv("text", text("line one\nline \"two\" \u{e9}")),
            kv("flag", any_value::Value::BoolValue(true)),
            kv("count", any_value::Value::IntValue(-9_007_199_254_740_993)),
            kv("ratio", any_value::Value::DoubleValue(0.25)),
            kv(
                "list",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        ProtoAny {
                            value: Some(text("a")),
                        },
                        ProtoAny {
                            value: Some(any_value::Value::IntValue(2)),
                        },
                    ],
                }),
            ),
            kv(
                "map",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![
                        kv("inner", text("x")),
                        kv("other", any_value::Value::BoolValue(false)),
                    ],
                }),
            ),
            kv("raw", any_value::Value::BytesValue(vec![0, 1, 0xfe, 0xff])),
            KeyValue {
                key: "nothing".to_owned(),
                ..KeyValue::default()
            },
        ]
    }

    fn resource() -> Option<ProtoResource> {
        Some(ProtoResource {
            attributes: vec![
                kv("service.name", text("checkout")),
                kv("host.name", text("node-1")),
                // A record's own attribute of the same name wins.
                kv("text", text("from the resource")),
            ],
            ..ProtoResource::default()
        })
    }

    /// The rows of one message sent as protobuf and as opentelemetry-proto writes its JSON,
    /// with the event ids (new for every row) left out. Both must be the same.
    fn both_encodings<M: prost::Message + serde::Serialize>(
        message: &M,
        read: Decoder,
    ) -> Vec<serde_json::Value> {
        let rows = |encoding, body: &[u8]| -> Vec<serde_json::Value> {
            read(encoding, body, Uuid::nil(), NOW)
                .unwrap()
                .into_iter()
                .map(|event| {
                    // `{"kind": …, "row": {…}}`
                    let mut event = serde_json::to_value(&event).unwrap();
                    let row = event["row"].as_object_mut().unwrap();
                    assert!(row.remove("event_id").is_some());
                    event
                })
                .collect()
        };
        let from_protobuf = rows(Encoding::Protobuf, &message.encode_to_vec());
        let from_json = rows(Encoding::Json, &serde_json::to_vec(message).unwrap());
        assert_eq!(from_json, from_protobuf);
        from_json
    }

    fn field<'a>(row: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
        &row["row"][name]
    }

    #[test]
    fn logs_read_from_json_are_the_rows_the_same_protobuf_gives() {
        let record = |body, severity_number, severity_text: &str, time| LogRecord {
            time_unix_nano: time,
            severity_number,
            severity_text: severity_text.to_owned(),
            body,
            attributes: every_kind_of_value(),
            trace_id: (1..=16).collect(),
            span_id: vec![0xab; 8],
            ..LogRecord::default()
        };
        let message = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: resource(),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(any(text("plain")), 9, "", 1_700_000_000_123_456_789),
                        record(any(any_value::Value::IntValue(42)), 0, "WARNING", 0),
                        record(
                            any(any_value::Value::KvlistValue(KeyValueList {
                                values: vec![kv("k", text("v"))],
                            })),
                            17,
                            "",
                            5,
                        ),
                        LogRecord::default(),
                    ],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let rows = both_encodings(&message, logs);
        assert_eq!(rows.len(), 4);
        let first = &rows[0];
        assert_eq!(field(first, "service"), "checkout");
        assert_eq!(field(first, "body"), "plain");
        assert_eq!(field(first, "severity"), "info");
        assert_eq!(
            field(first, "time_unix_nano"),
            1_700_000_000_123_456_789_u64
        );
        assert_eq!(field(first, "trace_id"), "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(field(first, "span_id"), "abababababababab");
        let attributes: serde_json::Value =
            serde_json::from_str(field(first, "attributes").as_str().unwrap()).unwrap();
        assert_eq!(
            attributes,
            serde_json::json!({
                "host.name": "node-1",
                "text": "line one\nline \"two\" \u{e9}",
                "flag": true,
                "count": -9_007_199_254_740_993_i64,
                "ratio": 0.25,
                "list": ["a", 2],
                "map": {"inner": "x", "other": false},
                "raw": "0001feff",
                "nothing": null,
            })
        );
        assert_eq!(field(&rows[1], "body"), "42");
        assert_eq!(field(&rows[1], "severity"), "warning");
        assert_eq!(field(&rows[1], "time_unix_nano"), NOW);
        assert_eq!(field(&rows[2], "body"), r#"{"k":"v"}"#);
        assert_eq!(field(&rows[2], "severity"), "error");
        assert_eq!(field(&rows[3], "body"), "");
        assert_eq!(field(&rows[3], "trace_id"), "");
        assert_eq!(
            field(&rows[3], "attributes"),
            r#"{"host.name":"node-1","text":"from the resource"}"#
        );
    }

    #[test]
    fn metrics_read_from_json_are_the_rows_the_same_protobuf_gives() {
        let number = |value, time| NumberDataPoint {
            time_unix_nano: time,
            value: Some(value),
            attributes: vec![kv("route", text("/a"))],
            ..NumberDataPoint::default()
        };
        let metric = |name: &str, data| Metric {
            name: name.to_owned(),
            unit: "ms".to_owned(),
            data: Some(data),
            ..Metric::default()
        };
        let message = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: resource(),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        metric(
                            "queue.depth",
                            metric::Data::Gauge(Gauge {
                                data_points: vec![
                                    number(number_data_point::Value::AsInt(7), 11),
                                    number(number_data_point::Value::AsDouble(1.5), 0),
                                ],
                            }),
                        ),
                        metric(
                            "requests",
                            metric::Data::Sum(Sum {
                                data_points: vec![number(
                                    number_data_point::Value::AsInt(1 << 60),
                                    12,
                                )],
                                ..Sum::default()
                            }),
                        ),
                        metric(
                            "latency",
                            metric::Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    time_unix_nano: 13,
                                    sum: Some(99.5),
                                    ..HistogramDataPoint::default()
                                }],
                                ..Histogram::default()
                            }),
                        ),
                        metric(
                            "size",
                            metric::Data::ExponentialHistogram(ExponentialHistogram {
                                data_points: vec![ExponentialHistogramDataPoint {
                                    time_unix_nano: 14,
                                    sum: None,
                                    attributes: every_kind_of_value(),
                                    ..ExponentialHistogramDataPoint::default()
                                }],
                                ..ExponentialHistogram::default()
                            }),
                        ),
                        metric(
                            "quantiles",
                            metric::Data::Summary(Summary {
                                data_points: vec![SummaryDataPoint {
                                    time_unix_nano: 15,
                                    sum: 3.0,
                                    ..SummaryDataPoint::default()
                                }],
                            }),
                        ),
                        Metric {
                            name: "empty".to_owned(),
                            ..Metric::default()
                        },
                    ],
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }],
        };
        let rows = both_encodings(&message, metrics);
        let summary: Vec<(String, String, f64, u64)> = rows
            .iter()
            .map(|row| {
                (
                    field(row, "name").as_str().unwrap().to_owned(),
                    field(row, "kind").as_str().unwrap().to_owned(),
                    field(row, "value").as_f64().unwrap(),
                    field(row, "time_unix_nano").as_u64().unwrap(),
                )
            })
            .collect();
        let owned =
            |name: &str, kind: &str, value, time| (name.to_owned(), kind.to_owned(), value, time);
        assert_eq!(
            summary,
            [
                owned("queue.depth", "gauge", 7.0, 11),
                owned("queue.depth", "gauge", 1.5, NOW),
                owned("requests", "sum", (1u64 << 60) as f64, 12),
                owned("latency", "histogram_sum", 99.5, 13),
                owned("size", "histogram_sum", 0.0, 14),
                owned("quantiles", "summary_sum", 3.0, 15),
            ]
        );
        assert_eq!(field(&rows[0], "unit"), "ms");
        assert_eq!(
            field(&rows[0], "attributes"),
            r#"{"host.name":"node-1","route":"/a","text":"from the resource"}"#
        );
    }

    #[test]
    fn spans_read_from_json_are_the_rows_the_same_protobuf_gives() {
        let span = |kind, code: Option<status::StatusCode>, parent: Vec<u8>| Span {
            trace_id: vec![0xAB; 16],
            span_id: vec![0x0c; 8],
            parent_span_id: parent,
            name: "GET /orders".to_owned(),
            kind,
            start_time_unix_nano: 100,
            end_time_unix_nano: 50,
            status: code.map(|code| Status {
                code: code as i32,
                ..Status::default()
            }),
            attributes: every_kind_of_value(),
            ..Span::default()
        };
        let message = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: resource(),
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        span(2, Some(status::StatusCode::Error), vec![1; 8]),
                        span(9, None, Vec::new()),
                    ],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let rows = both_encodings(&message, traces);
        assert_eq!(field(&rows[0], "kind"), "server");
        assert_eq!(field(&rows[0], "status_code"), "error");
        assert_eq!(field(&rows[0], "trace_id"), &"ab".repeat(16));
        assert_eq!(field(&rows[0], "parent_span_id"), "0101010101010101");
        // An end before the start is read as the start.
        assert_eq!(field(&rows[0], "end_unix_nano"), 100);
        assert_eq!(field(&rows[1], "kind"), "unspecified");
        assert_eq!(field(&rows[1], "status_code"), "unset");
        assert_eq!(field(&rows[1], "parent_span_id"), "");
    }

    /// Attribute values to JSON through `serde_json::Value` maps, as the node did before it
    /// wrote them in place: the reference the written attributes are checked against.
    fn any_to_json(value: &AnyValue) -> Value {
        match value {
            AnyValue::Str(text) => Value::String(text.clone().into_owned()),
            AnyValue::Bool(flag) => Value::Bool(*flag),
            AnyValue::Int(number) => Value::from(*number),
            AnyValue::Double(number) => {
                serde_json::Number::from_f64(*number).map_or(Value::Null, Value::Number)
            }
            AnyValue::Array(values) => Value::Array(values.iter().map(any_to_json).collect()),
            AnyValue::Kvlist(values) => Value::Object(attributes(values)),
            AnyValue::Bytes(bytes) => Value::String(hex::encode(bytes)),
            AnyValue::Empty => Value::Null,
        }
    }

    fn attributes(values: &[Attribute]) -> Map<String, Value> {
        values
            .iter()
            .map(|attribute| {
                (
                    attribute.key.clone().into_owned(),
                    any_to_json(&attribute.value),
                )
            })
            .collect()
    }

    #[test]
    fn a_records_attributes_are_written_as_the_merged_map_of_them_would_be() {
        let resource = ProtoResource {
            attributes: vec![
                kv("service.name", text("checkout")),
                kv("b", text("resource")),
                kv("d", any_value::Value::IntValue(4)),
                kv("a", any_value::Value::DoubleValue(f64::NAN)),
            ],
            ..ProtoResource::default()
        };
        let own = vec![
            kv("d", text("first")),
            kv("c", any_value::Value::DoubleValue(1e300)),
            kv("d", text("last wins")),
            kv(
                "nested",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("z", text("1")), kv("y", text("2")), kv("z", text("3"))],
                }),
            ),
            kv("\u{1}quote\"", any_value::Value::BytesValue(vec![7])),
        ];
        let resource = model::Resource {
            attributes: model::attributes(&resource.attributes),
        };
        let own = model::attributes(&own);
        let attributes = ResourceAttributes::of(Some(&resource));
        // What the map of them gives: the resource's attributes, then the record's in turn.
        let mut map = self::attributes(&resource.attributes);
        map.remove("service.name");
        map.extend(self::attributes(&own));
        let expected = Value::Object(map).to_string();
        assert_eq!(attributes.with(&own), expected);
        assert_eq!(
            expected,
            r#"{"\u0001quote\"":"07","a":null,"b":"resource","c":1e+300,"d":"last wins","nested":{"y":"2","z":"3"}}"#
        );
        assert_eq!(attributes.with(&[]), r#"{"a":null,"b":"resource","d":4}"#);
    }

    fn json_logs(body: &str) -> Result<Vec<LogRow>, String> {
        logs(Encoding::Json, body.as_bytes(), Uuid::nil(), NOW)
            .map(|events| {
                events
                    .into_iter()
                    .map(|event| match event {
                        Event::Log(row) => row,
                        other => panic!("not a log: {other:?}"),
                    })
                    .collect()
            })
            .map_err(|error| error.to_string())
    }

    fn one_record(record: &str) -> String {
        format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{record}]}}]}}]}}"#)
    }

    #[test]
    fn json_takes_what_senders_write_and_skips_what_it_does_not_read() {
        // 64-bit integers as numbers or strings; ids in either case; unknown fields, in a
        // record and in a value, skipped; a null value is no value.
        let rows = json_logs(&one_record(
            r#"{"timeUnixNano": 1700000000000000001, "observedTimeUnixNano": "0",
                "severityNumber": 13, "flags": 1, "eventName": "x", "future": {"a": [1, 2]},
                "traceId": "0102030405060708090A0B0C0D0E0F10", "spanId": "",
                "body": {"intValue": 5, "somethingNew": true},
                "attributes": [{"key": "n", "value": {"intValue": "-3"}},
                               {"key": "z", "value": null},
                               {"key": "esc\u0061ped", "value": {"stringValue": "tab\there"}}]}"#,
        ))
        .unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(row.severity, "warn");
        assert_eq!(row.trace_id, "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(row.span_id, "");
        assert_eq!(row.body, "5");
        assert_eq!(row.service, "unknown");
        assert_eq!(row.attributes, r#"{"escaped":"tab\there","n":-3,"z":null}"#);
        // Nothing at all is no rows.
        assert_eq!(json_logs("{}").unwrap().len(), 0);
    }

    #[test]
    fn json_that_is_not_otlp_is_refused() {
        for (body, reason) in [
            (one_record(r#"{"traceId": "xyz"}"#), "hex"),
            (one_record(r#"{"traceId": "abc"}"#), "hex"),
            (one_record(r#"{"traceId": 12}"#), "invalid type"),
            (one_record(r#"{"timeUnixNano": "soon"}"#), "invalid digit"),
            (one_record(r#"{"timeUnixNano": -1}"#), "out of range"),
            (
                one_record(r#"{"body": {"intValue": "1.5"}}"#),
                "invalid digit",
            ),
            (
                one_record(r#"{"body": {"bytesValue": "not base64!"}}"#),
                "Invalid",
            ),
            (one_record(r#"{"body": "text"}"#), "invalid type"),
            (
                one_record(r#"{"severityNumber": 9, "severityNumber": 10}"#),
                "appears twice",
            ),
            ("[]".to_owned(), "invalid type"),
            (r#"{"resourceLogs": "#.to_owned(), "EOF"),
        ] {
            let refused = json_logs(&body).expect_err(&body);
            assert!(refused.contains(reason), "{body}: {refused}");
        }
    }
}
