//! Bulk telemetry: NDJSON (one JSON object per line) or CSV (a header line, then one event a
//! row), validated strictly. **All or nothing**: if any line is bad, the whole batch is refused
//! with every bad line's number and reason (up to [`MAX_REPORTED`]), and nothing is stored, so
//! an agent can fix and resend the same batch without creating duplicates.
//!
//! One event (NDJSON fields; CSV columns of the same names, without `attributes`):
//! - `type`: `log` or `metric`;
//! - `time`: RFC 3339, from 2000 to one day ahead of the server's clock;
//! - `service`: 1–200 printable characters (optional, default `unknown`);
//! - logs: `severity` (trace, debug, info, warn, error, fatal; default info), `body` (up to
//!   16 KiB), `trace_id` (32 hex) and `span_id` (16 hex), both optional;
//! - metrics: `name` (1–200 of `[A-Za-z0-9._/-]`), `value` (a finite number), `unit`
//!   (optional, up to 50), `kind` (gauge or sum; default gauge);
//! - `attributes` (NDJSON only): an object of at most 64 string/number/boolean values.
//!
//! Unknown fields or columns are errors, not ignored.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};
use shared::events::rows::{new_event_id, LogRow, MetricRow};
use shared::events::Event;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Text;

/// Most events one request may carry.
pub const MAX_EVENTS: usize = 10_000;
/// Most bad lines reported in one answer.
pub const MAX_REPORTED: usize = 100;
const MAX_BODY: usize = 16 * 1024;
const MAX_ATTRIBUTES: usize = 64;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// One event as read: its strings borrowed from the NDJSON line when they have no escapes
/// (and from a CSV row).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    time: Option<Text<'a>>,
    #[serde(borrow)]
    service: Option<Text<'a>>,
    #[serde(borrow)]
    severity: Option<Text<'a>>,
    #[serde(borrow)]
    body: Option<Text<'a>>,
    #[serde(borrow)]
    trace_id: Option<Text<'a>>,
    #[serde(borrow)]
    span_id: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
    value: Option<Value>,
    #[serde(borrow)]
    unit: Option<Text<'a>>,
    #[serde(rename = "kind", borrow)]
    metric_kind: Option<Text<'a>>,
    attributes: Option<Map<String, Value>>,
}

/// The outcome of parsing a batch: its events, or the bad lines.
pub type Parsed = Result<Vec<Event>, Vec<LineError>>;

pub fn parse_ndjson(body: &str, tenant: Uuid, now: OffsetDateTime) -> Parsed {
    let tenant = tenant.to_string();
    // At most one event a line.
    let lines = body.bytes().filter(|byte| *byte == b'\n').count() + 1;
    let mut events = Vec::with_capacity(lines.min(MAX_EVENTS + 1));
    let mut errors = Vec::new();
    for (index, line) in body.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let outcome = shared::json_body::parse::<Record>(line.as_bytes())
            .map_err(|error| format!("not a valid event object: {error}"))
            .and_then(|record| event_of(record, &tenant, now));
        match outcome {
            Ok(event) => events.push(event),
            Err(message) => errors.push(LineError {
                line: number,
                message,
            }),
        }
        if events.len() + errors.len() > MAX_EVENTS {
            errors.push(LineError {
                line: number,
                message: format!("more than {MAX_EVENTS} events in one request"),
            });
            break;
        }
    }
    finish(events, errors)
}

pub fn parse_csv(body: &str, tenant: Uuid, now: OffsetDateTime) -> Parsed {
    let tenant = tenant.to_string();
    const COLUMNS: &[&str] = &[
        "type", "time", "service", "severity", "body", "trace_id", "span_id", "name", "value",
        "unit", "kind",
    ];
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => {
            return Err(vec![LineError {
                line: 1,
                message: format!("unreadable header: {error}"),
            }])
        }
    };
    let mut seen = std::collections::HashSet::new();
    for header in &headers {
        if !COLUMNS.contains(&header) || !seen.insert(header) {
            return Err(vec![LineError {
                line: 1,
                message: format!(
                    "column `{header}` is unknown or repeated (columns: {})",
                    COLUMNS.join(", ")
                ),
            }]);
        }
    }
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for row in reader.records() {
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line() as usize);
                errors.push(LineError {
                    line,
                    message: format!("malformed row: {error}"),
                });
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line() as usize);
        let mut record = Record::default();
        for (header, value) in headers.iter().zip(row.iter()) {
            if value.is_empty() {
                continue;
            }
            let text = Some(Text(Cow::Borrowed(value)));
            match header {
                "type" => record.kind = text,
                "time" => record.time = text,
                "service" => record.service = text,
                "severity" => record.severity = text,
                "body" => record.body = text,
                "trace_id" => record.trace_id = text,
                "span_id" => record.span_id = text,
                "name" => record.name = text,
                "unit" => record.unit = text,
                "kind" => record.metric_kind = text,
                _ => {
                    record.value = Some(match value.parse::<f64>() {
                        Ok(number) => serde_json::Number::from_f64(number)
                            .map_or(Value::String(value.to_owned()), Value::Number),
                        Err(_) => Value::String(value.to_owned()),
                    })
                }
            }
        }
        match event_of(record, &tenant, now) {
            Ok(event) => events.push(event),
            Err(message) => errors.push(LineError { line, message }),
        }
        if events.len() + errors.len() > MAX_EVENTS {
            errors.push(LineError {
                line,
                message: format!("more than {MAX_EVENTS} events in one request"),
            });
            break;
        }
    }
    finish(events, errors)
}

fn finish(events: Vec<Event>, mut errors: Vec<LineError>) -> Parsed {
    if errors.is_empty() {
        return Ok(events);
    }
    errors.truncate(MAX_REPORTED);
    Err(errors)
}

fn printable(value: &str, max: usize, field: &str) -> Result<(), String> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(format!(
            "`{field}` must be 1 to {max} characters without control characters"
        ));
    }
    Ok(())
}

fn hex_id(value: Option<Text>, length: usize, field: &str) -> Result<String, String> {
    match value {
        None => Ok(String::new()),
        Some(value) if value.len() == length && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(value.to_ascii_lowercase())
        }
        Some(_) => Err(format!("`{field}` must be {length} hex digits")),
    }
}

fn event_of(record: Record, tenant: &str, now: OffsetDateTime) -> Result<Event, String> {
    let time = record.time.as_deref().ok_or("`time` is required")?;
    let time = OffsetDateTime::parse(time, &Rfc3339)
        .map_err(|_| "`time` must be an RFC 3339 time".to_owned())?;
    let earliest = OffsetDateTime::from_unix_timestamp(946_684_800).unwrap_or(now);
    if time < earliest || time > now + time::Duration::days(1) {
        return Err("`time` must be from 2000 to one day ahead".to_owned());
    }
    let nanos = u64::try_from(time.unix_timestamp_nanos()).map_err(|_| "`time` out of range")?;
    let seconds = (nanos / 1_000_000_000) as u32;
    let service = record
        .service
        .map_or_else(|| "unknown".to_owned(), Text::into_owned);
    printable(&service, 200, "service")?;
    let attributes = match record.attributes {
        None => "{}".to_owned(),
        Some(map) => {
            if map.len() > MAX_ATTRIBUTES {
                return Err(format!("at most {MAX_ATTRIBUTES} attributes"));
            }
            if map.iter().any(|(key, value)| {
                key.is_empty()
                    || key.len() > 200
                    || value.is_object()
                    || value.is_array()
                    || value.is_null()
            }) {
                return Err(
                    "attributes must be non-empty names with string, number or boolean values"
                        .to_owned(),
                );
            }
            Value::Object(map).to_string()
        }
    };
    match record.kind.as_deref() {
        Some("log") => {
            if record.name.is_some()
                || record.value.is_some()
                || record.unit.is_some()
                || record.metric_kind.is_some()
            {
                return Err("a log has no `name`, `value`, `unit` or `kind`".to_owned());
            }
            let severity = record
                .severity
                .as_deref()
                .unwrap_or("info")
                .to_ascii_lowercase();
            if !["trace", "debug", "info", "warn", "error", "fatal"].contains(&severity.as_str()) {
                return Err(
                    "`severity` must be trace, debug, info, warn, error or fatal".to_owned(),
                );
            }
            let body = record.body.map(Text::into_owned).unwrap_or_default();
            if body.len() > MAX_BODY {
                return Err(format!("`body` is longer than {MAX_BODY} bytes"));
            }
            Ok(Event::Log(LogRow {
                tenant_id: tenant.to_owned(),
                time: seconds,
                time_unix_nano: nanos,
                event_id: new_event_id(),
                service,
                severity,
                body,
                trace_id: hex_id(record.trace_id, 32, "trace_id")?,
                span_id: hex_id(record.span_id, 16, "span_id")?,
                attributes,
            }))
        }
        Some("metric") => {
            if record.severity.is_some()
                || record.body.is_some()
                || record.trace_id.is_some()
                || record.span_id.is_some()
            {
                return Err(
                    "a metric has no `severity`, `body`, `trace_id` or `span_id`".to_owned(),
                );
            }
            let name = record.name.ok_or("`name` is required for a metric")?;
            if name.is_empty()
                || name.len() > 200
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
            {
                return Err("`name` must be 1 to 200 of A-Z a-z 0-9 . _ / -".to_owned());
            }
            let value = record
                .value
                .as_ref()
                .and_then(Value::as_f64)
                .filter(|value| value.is_finite())
                .ok_or("`value` must be a finite number")?;
            let unit = record.unit.map(Text::into_owned).unwrap_or_default();
            if unit.len() > 50 || unit.chars().any(char::is_control) {
                return Err("`unit` is at most 50 printable characters".to_owned());
            }
            let kind = record.metric_kind.as_deref().unwrap_or("gauge").to_owned();
            if kind != "gauge" && kind != "sum" {
                return Err("`kind` must be gauge or sum".to_owned());
            }
            Ok(Event::Metric(MetricRow {
                tenant_id: tenant.to_owned(),
                time: seconds,
                time_unix_nano: nanos,
                event_id: new_event_id(),
                service,
                name: name.into_owned(),
                kind,
                value,
                unit,
                attributes,
            }))
        }
        Some(other) => Err(format!("`type` must be log or metric, not `{other}`")),
        None => Err("`type` is required (log or metric)".to_owned()),
    }
}
