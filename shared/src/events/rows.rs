//! The rows of the ClickHouse tables, as written (RowBinary) and as kept in the spool (JSON).
//!
//! Only integers and strings: a row read back from ClickHouse serialises to exactly the bytes
//! that were MAC'd when it was written (see [`super::chain`]). Times are `DateTime` seconds
//! plus a millisecond (or nanosecond) column for ordering within a second. Ids are text UUIDs.

use serde::{Deserialize, Serialize};

/// One audit event (table `audit_log`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row)]
pub struct AuditRow {
    pub tenant_id: String,
    /// `DateTime`: seconds since the epoch (partition and sort key).
    pub occurred_at: u32,
    pub occurred_at_ms: u64,
    pub event_id: String,
    pub request_id: String,
    /// `user`, `api_key`, `operator`, `anonymous`.
    pub actor_type: String,
    pub actor_id: String,
    /// Stable dotted name, e.g. `auth.login`, `records.create`, `tenant.suspend`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// `success`, `failure`, `denied`, `refused`, `error`.
    pub result: String,
    pub ip: String,
    pub user_agent: String,
    pub http_method: String,
    pub http_path: String,
    pub http_status: u16,
    pub duration_ms: u32,
    /// A JSON object as text (error code, limit class, …); never a secret.
    pub metadata: String,
    /// The writer stream the event belongs to (one per writer process).
    pub chain_stream: String,
    /// Position in the (tenant, stream) chain, from 1.
    pub chain_seq: u64,
    /// Version of the tenant data key the chain key derives from.
    pub key_version: i32,
    /// Hex MAC of the previous event in the chain ("" for the first).
    pub prev_mac: String,
    /// Hex HMAC-SHA256 over this row (all the fields above) with the tenant's chain key.
    pub mac: String,
}

/// One log record (table `telemetry_logs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct LogRow {
    pub tenant_id: String,
    pub time: u32,
    pub time_unix_nano: u64,
    pub event_id: String,
    pub service: String,
    pub severity: String,
    pub body: String,
    pub trace_id: String,
    pub span_id: String,
    /// JSON object as text.
    pub attributes: String,
}

/// One metric data point (table `telemetry_metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct MetricRow {
    pub tenant_id: String,
    pub time: u32,
    pub time_unix_nano: u64,
    pub event_id: String,
    pub service: String,
    pub name: String,
    /// `gauge`, `sum`, `histogram` (its sum), …
    pub kind: String,
    pub value: f64,
    pub unit: String,
    pub attributes: String,
}

/// One span (table `telemetry_spans`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct SpanRow {
    pub tenant_id: String,
    pub time: u32,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub event_id: String,
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub kind: String,
    pub status_code: String,
    pub attributes: String,
}

/// Anything the writer carries to ClickHouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "row", rename_all = "snake_case")]
pub enum Event {
    Audit(AuditRow),
    Log(LogRow),
    Metric(MetricRow),
    Span(SpanRow),
}

impl Event {
    pub fn event_id(&self) -> &str {
        match self {
            Event::Audit(row) => &row.event_id,
            Event::Log(row) => &row.event_id,
            Event::Metric(row) => &row.event_id,
            Event::Span(row) => &row.event_id,
        }
    }

    pub fn table(&self) -> &'static str {
        match self {
            Event::Audit(_) => "audit_log",
            Event::Log(_) => "telemetry_logs",
            Event::Metric(_) => "telemetry_metrics",
            Event::Span(_) => "telemetry_spans",
        }
    }
}

/// A fresh event id (UUID v7: time-ordered, so ids of one stream sort by time).
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
