//! ClickHouse queries of the audit log. Every value is bound (`?` with `.bind`, escaped by
//! the client); the tenant id always comes from the request context. Every query has a
//! deadline ([`QUERY_DEADLINE`]): a ClickHouse that accepts connections and never answers
//! makes the API answer 503, not hang.

use std::future::Future;
use std::time::Duration;

use shared::events::rows::AuditRow;

/// Longest an audit or usage query may take.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("ClickHouse did not answer within {0:?}")]
    Timeout(Duration),
}

async fn bounded<T>(
    query: impl Future<Output = Result<T, clickhouse::error::Error>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(QUERY_DEADLINE, query)
        .await
        .map_err(|_| StoreError::Timeout(QUERY_DEADLINE))?
        .map_err(StoreError::from)
}

/// A validated audit query (see [`super::service::AuditQuery`]).
#[derive(Debug, Default)]
pub struct Filter {
    pub from_seconds: u32,
    pub to_seconds: u32,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub result: Option<String>,
    /// Only events before this (occurred_at_ms, event_id), newest first.
    pub before: Option<(u64, String)>,
    pub limit: u32,
}

pub async fn events(
    client: &clickhouse::Client,
    tenant_id: &str,
    filter: &Filter,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut sql = String::from(
        "SELECT ?fields FROM audit_log WHERE tenant_id = ? \
         AND occurred_at >= toDateTime(?) AND occurred_at < toDateTime(?)",
    );
    let optional = [
        ("actor_id", &filter.actor_id),
        ("action", &filter.action),
        ("resource_type", &filter.resource_type),
        ("resource_id", &filter.resource_id),
        ("result", &filter.result),
    ];
    for (column, value) in &optional {
        if value.is_some() {
            sql.push_str(&format!(" AND {column} = ?"));
        }
    }
    if filter.before.is_some() {
        sql.push_str(
            " AND (occurred_at_ms < ? OR (occurred_at_ms = ? AND event_id < ?)) \
             AND occurred_at <= toDateTime(?)",
        );
    }
    sql.push_str(" ORDER BY occurred_at DESC, occurred_at_ms DESC, event_id DESC LIMIT ?");
    let mut query = client
        .query(&sql)
        .bind(tenant_id)
        .bind(filter.from_seconds)
        .bind(filter.to_seconds);
    for (_, value) in optional {
        if let Some(value) = value {
            query = query.bind(value.as_str());
        }
    }
    if let Some((millis, event_id)) = &filter.before {
        query = query
            .bind(*millis)
            .bind(*millis)
            .bind(event_id.as_str())
            .bind((*millis / 1000) as u32);
    }
    bounded(query.bind(filter.limit).fetch_all::<AuditRow>()).await
}

/// One day of a tenant's usage, from ClickHouse.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
pub struct DayCount {
    /// `Date` as days since the epoch.
    pub day: u16,
    pub count: u64,
}

/// Audited requests per day.
pub async fn audited_requests_per_day(
    client: &clickhouse::Client,
    tenant_id: &str,
    from_seconds: u32,
) -> Result<Vec<DayCount>, StoreError> {
    bounded(
        client
            .query(
                "SELECT toDate(occurred_at, 'UTC') AS day, count() AS count FROM audit_log \
             WHERE tenant_id = ? AND occurred_at >= toDateTime(?) GROUP BY day ORDER BY day",
            )
            .bind(tenant_id)
            .bind(from_seconds)
            .fetch_all(),
    )
    .await
}

/// Distinct users who made an audited request, per day.
pub async fn active_users_per_day(
    client: &clickhouse::Client,
    tenant_id: &str,
    from_seconds: u32,
) -> Result<Vec<DayCount>, StoreError> {
    bounded(
        client
        .query(
            "SELECT toDate(occurred_at, 'UTC') AS day, uniqExact(actor_id) AS count FROM audit_log \
             WHERE tenant_id = ? AND occurred_at >= toDateTime(?) AND actor_type = 'user' \
             GROUP BY day ORDER BY day",
        )
        .bind(tenant_id)
        .bind(from_seconds)
        .fetch_all(),
    )
    .await
}

/// Telemetry events (logs, metric points, spans) ingested per day, by the day ClickHouse
/// stored them (`ingested_at`), not the events' own times.
pub async fn telemetry_events_per_day(
    client: &clickhouse::Client,
    tenant_id: &str,
    from_seconds: u32,
) -> Result<Vec<DayCount>, StoreError> {
    bounded(
        client
            .query(
                "SELECT day, sum(c) AS count FROM ( \
               SELECT toDate(ingested_at, 'UTC') AS day, count() AS c FROM telemetry_logs \
                 WHERE tenant_id = ? AND ingested_at >= toDateTime(?) GROUP BY day \
               UNION ALL \
               SELECT toDate(ingested_at, 'UTC') AS day, count() AS c FROM telemetry_metrics \
                 WHERE tenant_id = ? AND ingested_at >= toDateTime(?) GROUP BY day \
               UNION ALL \
               SELECT toDate(ingested_at, 'UTC') AS day, count() AS c FROM telemetry_spans \
                 WHERE tenant_id = ? AND ingested_at >= toDateTime(?) GROUP BY day \
             ) GROUP BY day ORDER BY day",
            )
            .bind(tenant_id)
            .bind(from_seconds)
            .bind(tenant_id)
            .bind(from_seconds)
            .bind(tenant_id)
            .bind(from_seconds)
            .fetch_all(),
    )
    .await
}

/// Telemetry events of a tenant since `from_seconds` (for the events/day quota).
pub async fn telemetry_events_since(
    client: &clickhouse::Client,
    tenant_id: &str,
    from_seconds: u32,
) -> Result<u64, StoreError> {
    let days = telemetry_events_per_day(client, tenant_id, from_seconds).await?;
    Ok(days.iter().map(|day| day.count).sum())
}
