//! The audit query: validation of the caller's parameters into a [`Filter`], and the view of
//! an event the API returns.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use shared::error::ApiError;
use shared::events::rows::AuditRow;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::store::{self, Filter};

pub const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 100;
pub const RESULTS: &[&str] = &["success", "failure", "denied", "refused", "error"];

/// `GET /v1/admin/audit` query parameters; unknown ones are refused.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub result: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

fn time_param(name: &str, value: Option<&str>, default: u32) -> Result<u32, ApiError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let parsed = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| invalid("invalid_time", format!("`{name}` must be an RFC 3339 time")))?;
    u32::try_from(parsed.unix_timestamp())
        .map_err(|_| invalid("invalid_time", format!("`{name}` is out of range")))
}

fn text_param(
    name: &str,
    value: Option<String>,
    allowed: impl Fn(char) -> bool,
) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(value) if (1..=200).contains(&value.len()) && value.chars().all(allowed) => {
            Ok(Some(value))
        }
        Some(_) => Err(invalid(
            "invalid_filter",
            format!("`{name}` is empty, too long or has characters it cannot have"),
        )),
    }
}

/// The caller's parameters, checked.
pub fn filter(query: AuditQuery, now: OffsetDateTime) -> Result<Filter, ApiError> {
    let now_seconds = u32::try_from(now.unix_timestamp()).unwrap_or(u32::MAX);
    let to_seconds = time_param("to", query.to.as_deref(), now_seconds.saturating_add(60))?;
    let from_seconds = time_param("from", query.from.as_deref(), 0)?;
    if from_seconds >= to_seconds {
        return Err(invalid("invalid_time", "`from` must be before `to`"));
    }
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                invalid(
                    "invalid_limit",
                    format!("`limit` must be a whole number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let identifier = |c: char| c.is_ascii_alphanumeric() || "-_.:@/{}".contains(c);
    let result = text_param("result", query.result, |c| c.is_ascii_lowercase())?;
    if let Some(result) = &result {
        if !RESULTS.contains(&result.as_str()) {
            return Err(invalid(
                "invalid_filter",
                format!("`result` must be one of {}", RESULTS.join(", ")),
            ));
        }
    }
    Ok(Filter {
        from_seconds,
        to_seconds,
        actor_id: text_param("actor", query.actor, identifier)?,
        action: text_param("action", query.action, identifier)?,
        resource_type: text_param("resource_type", query.resource_type, identifier)?,
        resource_id: text_param("resource_id", query.resource_id, identifier)?,
        result,
        before: query.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    })
}

fn encode_cursor(millis: u64, event_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{millis}:{event_id}"))
}

fn decode_cursor(cursor: &str) -> Result<(u64, String), ApiError> {
    let bad = || invalid("invalid_cursor", "`cursor` is not one this API returned");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (millis, event_id) = text.split_once(':').ok_or_else(bad)?;
    let millis = millis.parse::<u64>().map_err(|_| bad())?;
    uuid::Uuid::parse_str(event_id).map_err(|_| bad())?;
    Ok((millis, event_id.to_owned()))
}

/// Who acted: the kind of actor (`user`, `api_key`, …) and its id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuditActor)]
pub struct Actor {
    #[serde(rename = "type")]
    pub actor_type: String,
    pub id: String,
}

/// What was acted on: its type and id (empty when none).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuditResource)]
pub struct Resource {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub id: String,
}

/// The request that caused the event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuditHttp)]
pub struct Http {
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// An audit event as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuditEvent)]
pub struct EventView {
    pub id: String,
    pub occurred_at: String,
    pub request_id: String,
    pub actor: Actor,
    pub action: String,
    pub resource: Resource,
    pub result: String,
    pub ip: String,
    pub user_agent: String,
    pub http: Http,
    pub duration_ms: u32,
    pub metadata: serde_json::Value,
}

impl From<AuditRow> for EventView {
    fn from(row: AuditRow) -> Self {
        // Always three fractional digits, so the times of a page sort as text too.
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let occurred_at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.occurred_at_ms) * 1_000_000)
                .ok()
                .and_then(|time| time.format(&format).ok())
                .unwrap_or_default();
        Self {
            id: row.event_id,
            occurred_at,
            request_id: row.request_id,
            actor: Actor {
                actor_type: row.actor_type,
                id: row.actor_id,
            },
            action: row.action,
            resource: Resource {
                resource_type: row.resource_type,
                id: row.resource_id,
            },
            result: row.result,
            ip: row.ip,
            user_agent: row.user_agent,
            http: Http {
                method: row.http_method,
                path: row.http_path,
                status: row.http_status,
            },
            duration_ms: row.duration_ms,
            metadata: serde_json::from_str(&row.metadata).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// One page of the audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuditPage)]
pub struct Page {
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One page of the tenant's events, newest first.
pub async fn page(
    client: &clickhouse::Client,
    tenant_id: &str,
    filter: &Filter,
) -> Result<Page, ApiError> {
    let rows = store::events(client, tenant_id, filter)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "audit query failed");
            ApiError::unavailable(
                "audit_store_unavailable",
                "the audit store is unavailable; retry shortly",
            )
        })?;
    let next_cursor = (rows.len() == filter.limit as usize)
        .then(|| {
            rows.last()
                .map(|row| encode_cursor(row.occurred_at_ms, &row.event_id))
        })
        .flatten();
    Ok(Page {
        events: rows.into_iter().map(EventView::from).collect(),
        next_cursor,
    })
}
