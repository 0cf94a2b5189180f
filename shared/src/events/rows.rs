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
///
/// The audit row is boxed: it is more than twice the size of a telemetry row, and an event is
/// as large as its largest kind, so unboxed every log record would carry an audit row's size
/// through each move from the request to the writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "row", rename_all = "snake_case")]
pub enum Event {
    Audit(Box<AuditRow>),
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

/// Events in the order they were enqueued, kept in the chunks they came in (one request's rows
/// are one chunk): taking a request's rows into the writer's queue, and the queue into a batch,
/// moves chunks, never the events themselves. Serialised as one JSON array of events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    chunks: Vec<Vec<Event>>,
    len: usize,
}

impl Batch {
    /// Appends `events` as one chunk.
    pub fn push(&mut self, events: Vec<Event>) {
        if !events.is_empty() {
            self.len += events.len();
            self.chunks.push(events);
        }
    }

    /// Appends `other`'s chunks.
    pub fn append(&mut self, other: Batch) {
        self.len += other.len;
        self.chunks.extend(other.chunks);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.chunks.iter().flatten()
    }

    /// The events for which `keep` holds, in order.
    pub fn retain(self, mut keep: impl FnMut(&Event) -> bool) -> Batch {
        let events: Vec<Event> = self
            .chunks
            .into_iter()
            .flatten()
            .filter(|event| keep(event))
            .collect();
        Batch::from(events)
    }
}

impl From<Vec<Event>> for Batch {
    fn from(events: Vec<Event>) -> Self {
        let mut batch = Batch::default();
        batch.push(events);
        batch
    }
}

impl Serialize for Batch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Event>::deserialize(deserializer).map(Batch::from)
    }
}

/// A fresh event id (UUID v7: time-ordered, so ids of one stream sort by time).
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
