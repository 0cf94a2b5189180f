//! What Tenantry reads of an OTLP export request, borrowing the request's strings.
//!
//! The JSON encoding is deserialized straight into these types: strings without escapes are
//! borrowed from the body, and only the fields that become rows are read (the others are
//! skipped, as OTLP/JSON receivers must skip fields they do not know). A protobuf message is
//! decoded by prost and then viewed through the same types ([`From`] below), so one
//! conversion to rows serves both encodings.
//!
//! Why not opentelemetry-proto's serde mapping: it reads every `AnyValue` through serde's
//! `flatten` (a buffered copy of each value) and owns every string, which made decoding most
//! of an ingesting node's work (docs/benchmarks.md, "OTLP/JSON decoded in place").
//!
//! The JSON mapping follows the OTLP specification and opentelemetry-proto's reading of it:
//! lowerCamelCase keys; 64-bit integers as strings or numbers; trace and span ids as hex;
//! `bytesValue` as base64; enums as integers. A test compares both readings.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::ingest::Text;

/// An attribute's value (OTLP `AnyValue`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AnyValue<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(Vec<AnyValue<'a>>),
    Kvlist(Vec<Attribute<'a>>),
    Bytes(Vec<u8>),
    /// No value, or one of a kind we do not read.
    #[default]
    Empty,
}

/// A key and its value (OTLP `KeyValue`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct Attribute<'a> {
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    #[serde(borrow)]
    pub value: AnyValue<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Resource<'a> {
    #[serde(borrow)]
    pub attributes: Vec<Attribute<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LogsRequest<'a> {
    #[serde(borrow)]
    pub resource_logs: Vec<ResourceLogs<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceLogs<'a> {
    #[serde(borrow)]
    pub resource: Option<Resource<'a>>,
    #[serde(borrow)]
    pub scope_logs: Vec<ScopeLogs<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeLogs<'a> {
    #[serde(borrow)]
    pub log_records: Vec<LogRecord<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LogRecord<'a> {
    #[serde(deserialize_with = "u64_of")]
    pub time_unix_nano: u64,
    #[serde(deserialize_with = "u64_of")]
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    #[serde(borrow)]
    pub severity_text: Cow<'a, str>,
    #[serde(borrow)]
    pub body: Option<AnyValue<'a>>,
    #[serde(borrow)]
    pub attributes: Vec<Attribute<'a>>,
    #[serde(borrow, deserialize_with = "hex_id")]
    pub trace_id: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "hex_id")]
    pub span_id: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MetricsRequest<'a> {
    #[serde(borrow)]
    pub resource_metrics: Vec<ResourceMetrics<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceMetrics<'a> {
    #[serde(borrow)]
    pub resource: Option<Resource<'a>>,
    #[serde(borrow)]
    pub scope_metrics: Vec<ScopeMetrics<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeMetrics<'a> {
    #[serde(borrow)]
    pub metrics: Vec<Metric<'a>>,
}

/// A metric and its data points. Of the five kinds of data, the first present is read, in
/// the order of the fields below.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metric<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow)]
    pub unit: Cow<'a, str>,
    #[serde(borrow)]
    gauge: Option<DataPoints<'a>>,
    #[serde(borrow)]
    sum: Option<DataPoints<'a>>,
    #[serde(borrow)]
    histogram: Option<DataPoints<'a>>,
    #[serde(borrow)]
    exponential_histogram: Option<DataPoints<'a>>,
    #[serde(borrow)]
    summary: Option<DataPoints<'a>>,
}

/// How a metric's points are read: the kind kept in the row, and which value is the point's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    Gauge,
    Sum,
    /// Histograms (explicit or exponential) and summaries keep their sum.
    HistogramSum,
    SummarySum,
}

impl PointKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Sum => "sum",
            Self::HistogramSum => "histogram_sum",
            Self::SummarySum => "summary_sum",
        }
    }
}

impl<'a> Metric<'a> {
    /// The metric's kind and its data points (none when it carries no data).
    pub fn points(&self) -> (PointKind, &[DataPoint<'a>]) {
        let kinds = [
            (PointKind::Gauge, &self.gauge),
            (PointKind::Sum, &self.sum),
            (PointKind::HistogramSum, &self.histogram),
            (PointKind::HistogramSum, &self.exponential_histogram),
            (PointKind::SummarySum, &self.summary),
        ];
        kinds
            .into_iter()
            .find_map(|(kind, points)| points.as_ref().map(|p| (kind, &p.data_points[..])))
            .unwrap_or((PointKind::Gauge, &[]))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct DataPoints<'a> {
    #[serde(borrow)]
    data_points: Vec<DataPoint<'a>>,
}

/// One data point of any kind: a number (`asDouble` or `asInt`) or a `sum`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DataPoint<'a> {
    #[serde(deserialize_with = "u64_of")]
    pub time_unix_nano: u64,
    pub as_double: Option<f64>,
    #[serde(deserialize_with = "some_i64_of")]
    pub as_int: Option<i64>,
    pub sum: Option<f64>,
    #[serde(borrow)]
    pub attributes: Vec<Attribute<'a>>,
}

impl DataPoint<'_> {
    /// The point's value as `kind` reads it.
    pub fn value(&self, kind: PointKind) -> f64 {
        match kind {
            PointKind::Gauge | PointKind::Sum => self
                .as_double
                .or(self.as_int.map(|number| number as f64))
                .unwrap_or(0.0),
            PointKind::HistogramSum | PointKind::SummarySum => self.sum.unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TracesRequest<'a> {
    #[serde(borrow)]
    pub resource_spans: Vec<ResourceSpans<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceSpans<'a> {
    #[serde(borrow)]
    pub resource: Option<Resource<'a>>,
    #[serde(borrow)]
    pub scope_spans: Vec<ScopeSpans<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeSpans<'a> {
    #[serde(borrow)]
    pub spans: Vec<Span<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Span<'a> {
    #[serde(borrow, deserialize_with = "hex_id")]
    pub trace_id: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "hex_id")]
    pub span_id: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "hex_id")]
    pub parent_span_id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub kind: i32,
    #[serde(deserialize_with = "u64_of")]
    pub start_time_unix_nano: u64,
    #[serde(deserialize_with = "u64_of")]
    pub end_time_unix_nano: u64,
    pub status: Option<Status>,
    #[serde(borrow)]
    pub attributes: Vec<Attribute<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Status {
    pub code: i32,
}

// --- JSON: the values that are not plain serde ---

/// A 64-bit integer as proto3's JSON mapping writes it (a string) or as a number.
struct Integer<T>(std::marker::PhantomData<T>);

macro_rules! integer_visitor {
    ($type:ty) => {
        impl<'de> Visitor<'de> for Integer<$type> {
            type Value = $type;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str(concat!("a ", stringify!($type), " as a number or a string"))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<$type, E> {
                <$type>::try_from(value).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<$type, E> {
                <$type>::try_from(value).map_err(E::custom)
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<$type, E> {
                value.parse::<$type>().map_err(E::custom)
            }
        }
    };
}
integer_visitor!(u64);
integer_visitor!(i64);

fn u64_of<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(Integer::<u64>(std::marker::PhantomData))
}

fn some_i64_of<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    deserializer
        .deserialize_any(Integer::<i64>(std::marker::PhantomData))
        .map(Some)
}

/// A trace or span id: hex (either case; an empty string is no id), kept in lower case.
fn hex_id<'de: 'a, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'a, str>, D::Error> {
    let Text(text) = Text::deserialize(deserializer)?;
    let digits = text.strip_prefix("0x").unwrap_or(&text);
    if digits.len() % 2 != 0 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(de::Error::custom(format!(
            "an id must be hex digits, not {text:?}"
        )));
    }
    Ok(match text {
        Cow::Borrowed(text)
            if !text.starts_with("0x") && !text.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            Cow::Borrowed(text)
        }
        text => Cow::Owned(
            text.strip_prefix("0x")
                .unwrap_or(&text)
                .to_ascii_lowercase(),
        ),
    })
}

/// `{"values": [...]}`: the content of `arrayValue` and `kvlistValue`.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Values<T> {
    #[serde(default = "Vec::new")]
    values: Vec<T>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum AnyField {
    StringValue,
    BoolValue,
    IntValue,
    DoubleValue,
    ArrayValue,
    KvlistValue,
    BytesValue,
    #[serde(other)]
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for AnyValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for AnyVisitor<'a> {
            type Value = AnyValue<'a>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object for AnyValue")
            }

            fn visit_unit<E: de::Error>(self) -> Result<AnyValue<'a>, E> {
                Ok(AnyValue::Empty)
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<AnyValue<'a>, M::Error> {
                // As opentelemetry-proto reads it: the last value named wins; a null, or a
                // key we do not know, leaves the value as it was.
                let mut value = AnyValue::Empty;
                while let Some(field) = map.next_key::<AnyField>()? {
                    let read = match field {
                        AnyField::StringValue => map
                            .next_value::<Option<Text>>()?
                            .map(|Text(t)| AnyValue::Str(t)),
                        AnyField::BoolValue => {
                            map.next_value::<Option<bool>>()?.map(AnyValue::Bool)
                        }
                        AnyField::IntValue => map
                            .next_value::<Option<IntText>>()?
                            .map(|IntText(number)| AnyValue::Int(number)),
                        AnyField::DoubleValue => {
                            map.next_value::<Option<f64>>()?.map(AnyValue::Double)
                        }
                        AnyField::ArrayValue => map
                            .next_value::<Option<Values<AnyValue<'a>>>>()?
                            .map(|list| AnyValue::Array(list.values)),
                        AnyField::KvlistValue => map
                            .next_value::<Option<Values<Attribute<'a>>>>()?
                            .map(|list| AnyValue::Kvlist(list.values)),
                        AnyField::BytesValue => match map.next_value::<Option<Text>>()? {
                            Some(Text(text)) => Some(AnyValue::Bytes(
                                base64::engine::general_purpose::STANDARD
                                    .decode(text.as_bytes())
                                    .map_err(de::Error::custom)?,
                            )),
                            None => None,
                        },
                        AnyField::Other => {
                            map.next_value::<IgnoredAny>()?;
                            None
                        }
                    };
                    if let Some(read) = read {
                        value = read;
                    }
                }
                Ok(value)
            }
        }

        // `deserialize_any`, so that a `null` value is no value rather than an error.
        deserializer.deserialize_any(AnyVisitor(std::marker::PhantomData))
    }
}

/// `intValue`: a string or a number.
struct IntText(i64);

impl<'de> Deserialize<'de> for IntText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(Integer::<i64>(std::marker::PhantomData))
            .map(IntText)
    }
}

// --- Protobuf: prost's messages viewed through the same types ---

impl<'a> From<&'a opentelemetry_proto::tonic::common::v1::AnyValue> for AnyValue<'a> {
    fn from(value: &'a opentelemetry_proto::tonic::common::v1::AnyValue) -> Self {
        match &value.value {
            Some(any_value::Value::StringValue(text)) => Self::Str(Cow::Borrowed(text)),
            Some(any_value::Value::BoolValue(flag)) => Self::Bool(*flag),
            Some(any_value::Value::IntValue(number)) => Self::Int(*number),
            Some(any_value::Value::DoubleValue(number)) => Self::Double(*number),
            Some(any_value::Value::ArrayValue(array)) => {
                Self::Array(array.values.iter().map(Self::from).collect())
            }
            Some(any_value::Value::KvlistValue(list)) => Self::Kvlist(attributes(&list.values)),
            Some(any_value::Value::BytesValue(bytes)) => Self::Bytes(bytes.clone()),
            // Dictionary references (profiles only) and empty values.
            _ => Self::Empty,
        }
    }
}

pub(super) fn attributes(values: &[KeyValue]) -> Vec<Attribute<'_>> {
    values
        .iter()
        .map(|kv| Attribute {
            key: Cow::Borrowed(&kv.key),
            value: kv.value.as_ref().map_or(AnyValue::Empty, AnyValue::from),
        })
        .collect()
}

fn resource(resource: &Option<ProtoResource>) -> Option<Resource<'_>> {
    resource.as_ref().map(|resource| Resource {
        attributes: attributes(&resource.attributes),
    })
}

fn hex(bytes: &[u8]) -> Cow<'static, str> {
    if bytes.is_empty() {
        Cow::Borrowed("")
    } else {
        Cow::Owned(hex::encode(bytes))
    }
}

impl<'a> From<&'a ExportLogsServiceRequest> for LogsRequest<'a> {
    fn from(request: &'a ExportLogsServiceRequest) -> Self {
        let resource_logs = request
            .resource_logs
            .iter()
            .map(|resource_logs| ResourceLogs {
                resource: resource(&resource_logs.resource),
                scope_logs: resource_logs
                    .scope_logs
                    .iter()
                    .map(|scope| ScopeLogs {
                        log_records: scope
                            .log_records
                            .iter()
                            .map(|record| LogRecord {
                                time_unix_nano: record.time_unix_nano,
                                observed_time_unix_nano: record.observed_time_unix_nano,
                                severity_number: record.severity_number,
                                severity_text: Cow::Borrowed(&record.severity_text),
                                body: record.body.as_ref().map(AnyValue::from),
                                attributes: attributes(&record.attributes),
                                trace_id: hex(&record.trace_id),
                                span_id: hex(&record.span_id),
                            })
                            .collect(),
                    })
                    .collect(),
            });
        Self {
            resource_logs: resource_logs.collect(),
        }
    }
}

impl<'a> From<&'a ExportMetricsServiceRequest> for MetricsRequest<'a> {
    fn from(request: &'a ExportMetricsServiceRequest) -> Self {
        use opentelemetry_proto::tonic::metrics::v1::NumberDataPoint;
        let numbers = |points: &'a [NumberDataPoint]| DataPoints {
            data_points: points
                .iter()
                .map(|point| DataPoint {
                    time_unix_nano: point.time_unix_nano,
                    as_double: match point.value {
                        Some(number_data_point::Value::AsDouble(number)) => Some(number),
                        _ => None,
                    },
                    as_int: match point.value {
                        Some(number_data_point::Value::AsInt(number)) => Some(number),
                        _ => None,
                    },
                    sum: None,
                    attributes: attributes(&point.attributes),
                })
                .collect(),
        };
        let sums = |points: &mut dyn Iterator<Item = (u64, f64, &'a [KeyValue])>| DataPoints {
            data_points: points
                .map(|(time_unix_nano, sum, point_attributes)| DataPoint {
                    time_unix_nano,
                    as_double: None,
                    as_int: None,
                    sum: Some(sum),
                    attributes: attributes(point_attributes),
                })
                .collect(),
        };
        let metric = |metric: &'a opentelemetry_proto::tonic::metrics::v1::Metric| {
            let mut read = Metric {
                name: Cow::Borrowed(&metric.name),
                unit: Cow::Borrowed(&metric.unit),
                ..Metric::default()
            };
            match &metric.data {
                Some(metric::Data::Gauge(gauge)) => read.gauge = Some(numbers(&gauge.data_points)),
                Some(metric::Data::Sum(sum)) => read.sum = Some(numbers(&sum.data_points)),
                Some(metric::Data::Histogram(histogram)) => {
                    read.histogram =
                        Some(sums(&mut histogram.data_points.iter().map(|p| {
                            (p.time_unix_nano, p.sum.unwrap_or(0.0), &p.attributes[..])
                        })))
                }
                Some(metric::Data::ExponentialHistogram(histogram)) => {
                    read.exponential_histogram =
                        Some(sums(&mut histogram.data_points.iter().map(|p| {
                            (p.time_unix_nano, p.sum.unwrap_or(0.0), &p.attributes[..])
                        })))
                }
                Some(metric::Data::Summary(summary)) => {
                    read.summary = Some(sums(
                        &mut summary
                            .data_points
                            .iter()
                            .map(|p| (p.time_unix_nano, p.sum, &p.attributes[..])),
                    ))
                }
                None => {}
            }
            read
        };
        Self {
            resource_metrics: request
                .resource_metrics
                .iter()
                .map(|resource_metrics| ResourceMetrics {
                    resource: resource(&resource_metrics.resource),
                    scope_metrics: resource_metrics
                        .scope_metrics
                        .iter()
                        .map(|scope| ScopeMetrics {
                            metrics: scope.metrics.iter().map(metric).collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl<'a> From<&'a ExportTraceServiceRequest> for TracesRequest<'a> {
    fn from(request: &'a ExportTraceServiceRequest) -> Self {
        Self {
            resource_spans: request
                .resource_spans
                .iter()
                .map(|resource_spans| ResourceSpans {
                    resource: resource(&resource_spans.resource),
                    scope_spans: resource_spans
                        .scope_spans
                        .iter()
                        .map(|scope| ScopeSpans {
                            spans: scope
                                .spans
                                .iter()
                                .map(|span| Span {
                                    trace_id: hex(&span.trace_id),
                                    span_id: hex(&span.span_id),
                                    parent_span_id: hex(&span.parent_span_id),
                                    name: Cow::Borrowed(&span.name),
                                    kind: span.kind,
                                    start_time_unix_nano: span.start_time_unix_nano,
                                    end_time_unix_nano: span.end_time_unix_nano,
                                    status: span
                                        .status
                                        .as_ref()
                                        .map(|status| Status { code: status.code }),
                                    attributes: attributes(&span.attributes),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
