//! Telemetry ingestion for tenants' agents: OTLP/HTTP (`/v1/logs`, `/v1/metrics`,
//! `/v1/traces`, protobuf or JSON) and bulk NDJSON/CSV (`/v1/telemetry/events`).
//!
//! Every request needs `telemetry:write` (an API key scoped so, or a user holding it). Parsed
//! rows go to the shared event writer; the request never waits on ClickHouse. The tenant's
//! `events_per_day` quota is checked before anything is queued ([`quota`]); the per-tenant
//! and per-key rate limits apply as to every request. See `docs/telemetry.md`.

pub mod bulk;
pub mod otlp;
pub mod quota;
pub mod routes;
pub mod service;

/// The permission every ingestion endpoint needs.
pub const WRITE: &str = "telemetry:write";

/// A string of a request body, borrowed from it when it has no escapes (OTLP/JSON, NDJSON) or
/// from a CSV row.
#[derive(Debug, serde::Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>);

impl Text<'_> {
    fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}
