//! Telemetry ingestion: OTLP/HTTP (`/v1/logs`, `/v1/metrics`, `/v1/traces`) and bulk events
//! (`/v1/telemetry/events`), as a user or an API key with `telemetry:write`.

use serde::Deserialize;

use crate::{Client, Error};

/// What the OTLP endpoints accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpEncoding {
    Protobuf,
    Json,
}

impl OtlpEncoding {
    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

#[derive(Deserialize)]
struct Accepted {
    accepted: u64,
}

/// `/v1/{logs,metrics,traces}` and `/v1/telemetry/events`.
pub struct Telemetry<'c> {
    pub(crate) client: &'c Client,
}

impl Telemetry<'_> {
    /// Sends an OTLP export request (`kind`: `logs`, `metrics` or `traces`) already encoded.
    pub async fn export(
        &self,
        kind: &str,
        encoding: OtlpEncoding,
        body: Vec<u8>,
    ) -> Result<(), Error> {
        self.client
            .post(format!("/v1/{kind}"))
            .body(body, encoding.content_type())
            .done()
            .await
    }

    /// Bulk events, one JSON object per line; all or nothing. The number stored.
    pub async fn events_ndjson(&self, lines: &str) -> Result<u64, Error> {
        self.bulk(lines, "application/x-ndjson").await
    }

    /// Bulk events as CSV with a header row; all or nothing. The number stored.
    pub async fn events_csv(&self, csv: &str) -> Result<u64, Error> {
        self.bulk(csv, "text/csv").await
    }

    async fn bulk(&self, body: &str, content_type: &str) -> Result<u64, Error> {
        let accepted: Accepted = self
            .client
            .post("/v1/telemetry/events")
            .body(body.as_bytes().to_vec(), content_type)
            .ok()
            .await?;
        Ok(accepted.accepted)
    }
}
