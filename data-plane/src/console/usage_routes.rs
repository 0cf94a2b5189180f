//! The tenant console's usage page: each quota's use against its limit, and the last 30
//! days' requests and ingested events as bar charts (inline SVG drawn on the server: the
//! console runs no script).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::page::{render, Frame};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use shared::console::Csrf;

pub fn routes() -> Vec<Route> {
    routes![usage_page]
}

/// Days the charts cover.
const DAYS: u32 = 30;

/// One quota as a meter.
struct Meter {
    label: &'static str,
    used: i64,
    limit: i64,
    /// Filled share of the bar, 0 to 100.
    percent: i64,
}

fn meter(label: &'static str, used: i64, limit: i64) -> Meter {
    let percent = if limit > 0 {
        (used.saturating_mul(100) / limit).clamp(0, 100)
    } else {
        0
    };
    Meter {
        label,
        used,
        limit,
        percent,
    }
}

/// A bar chart of one value per day: each bar's height in the 100-unit-high drawing.
struct Chart {
    title: &'static str,
    id: &'static str,
    bars: Vec<Bar>,
    max: u64,
    /// The daily limit's height, if it is within the drawing's scale.
    limit_at: Option<u64>,
    limit: Option<i64>,
}

struct Bar {
    x: usize,
    height: u64,
    y: u64,
    label: String,
}

fn chart(
    title: &'static str,
    id: &'static str,
    values: &[(String, u64)],
    limit: Option<i64>,
) -> Chart {
    let limit_value = limit
        .and_then(|limit| u64::try_from(limit).ok())
        .filter(|limit| *limit > 0);
    let max = values
        .iter()
        .map(|(_, value)| *value)
        .chain(limit_value)
        .max()
        .unwrap_or(0)
        .max(1);
    let bars = values
        .iter()
        .enumerate()
        .map(|(index, (date, value))| {
            let height = value * 100 / max;
            Bar {
                x: index * 10,
                height,
                y: 100 - height,
                label: format!("{date}: {value}"),
            }
        })
        .collect();
    Chart {
        title,
        id,
        bars,
        max,
        limit_at: limit_value.map(|limit| 100 - limit * 100 / max),
        limit,
    }
}

#[derive(Template)]
#[template(path = "console/usage.html")]
struct UsagePage {
    frame: Frame,
    meters: Vec<Meter>,
    charts: Vec<Chart>,
    first_day: String,
    last_day: String,
}

#[route(get, "/console/admin/usage", access = Permission(crate::usage::READ), rate = Read)]
async fn usage_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    let (frame, _) = Frame::signed_in(&state, &context, &csrf, context.signed_in()?).await?;
    let quotas = crate::usage::service::usage(&state, &context).await?;
    let daily = crate::usage::daily::usage(&state, &context, DAYS).await?;
    let meters = vec![
        meter("Users", quotas.users.used, quotas.users.limit),
        meter("API keys", quotas.api_keys.used, quotas.api_keys.limit),
        meter(
            "Storage (bytes)",
            quotas.storage_bytes.used,
            quotas.storage_bytes.limit,
        ),
    ];
    let series = |value: fn(&crate::usage::daily::Day) -> u64| -> Vec<(String, u64)> {
        daily
            .days
            .iter()
            .map(|day| (day.date.clone(), value(day)))
            .collect()
    };
    let charts = vec![
        chart(
            "Audited requests per day",
            "chart-requests",
            &series(|day| day.requests),
            None,
        ),
        chart(
            "Telemetry events per day",
            "chart-events",
            &series(|day| day.events_ingested),
            Some(daily.events_per_day_limit),
        ),
        chart(
            "Active users per day",
            "chart-users",
            &series(|day| day.active_users),
            None,
        ),
    ];
    let first_day = daily
        .days
        .first()
        .map(|day| day.date.clone())
        .unwrap_or_default();
    let last_day = daily
        .days
        .last()
        .map(|day| day.date.clone())
        .unwrap_or_default();
    render(
        StatusCode::OK,
        &UsagePage {
            frame,
            meters,
            charts,
            first_day,
            last_day,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::{chart, meter};

    #[test]
    fn bars_scale_to_the_highest_value_or_the_limit() {
        let values = vec![("d1".to_owned(), 50), ("d2".to_owned(), 100)];
        let drawn = chart("t", "c", &values, Some(200));
        assert_eq!(drawn.max, 200);
        assert_eq!(drawn.bars[1].height, 50);
        assert_eq!(drawn.limit_at, Some(0));
        let drawn = chart("t", "c", &values, None);
        assert_eq!(drawn.bars[1].height, 100);
        assert_eq!(drawn.bars[0].y, 50);
        assert_eq!(meter("m", 5, 0).percent, 0);
        assert_eq!(meter("m", 300, 100).percent, 100);
    }
}
