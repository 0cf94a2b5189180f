//! What both planes' `/metrics` show besides their own counters: the process (CPU, memory,
//! open files, threads), the event writer (queued, spooled, delivered, ClickHouse reachable)
//! and the Postgres pools by cluster (connections open, idle, allowed, requests waiting), and
//! the requests refused with 429 or 503 by error code, each kind logged at most once a second
//! ([`NodeMetrics::observe_refusal`]). Gauges of the writer and the pools are read at each
//! scrape ([`NodeMetrics::render`]).
//!
//! `/metrics` is served on the public port, or, when the plane's `*_metrics_listen` is set,
//! only on that address ([`serve`]): operators keep it off the port tenants reach.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServiceResponse};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use deadpool_postgres::Pool;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::events::EventWriter;
use crate::observability::LogThrottle;

/// The registry of a plane's metrics (every name prefixed `tenantry_`), with the process's
/// and the writer's and pools' gauges in it.
#[derive(Clone)]
pub struct NodeMetrics {
    pub registry: Registry,
    writer_queued: IntGauge,
    writer_spool_bytes: IntGauge,
    writer_clickhouse_up: IntGauge,
    writer_delivered: IntCounter,
    writer_spooled: IntCounter,
    pool_connections: IntGaugeVec,
    pool_idle: IntGaugeVec,
    pool_max: IntGaugeVec,
    pool_waiting: IntGaugeVec,
    /// Requests refused with 429 or 503, by status and error code.
    refusals: IntCounterVec,
    /// The log lines of refusals: one a second per (status, code).
    refusal_lines: Arc<LogThrottle<(u16, &'static str)>>,
}

impl NodeMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("tenantry".to_owned()), None)?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let gauge = IntGauge::new(name, help)?;
            registry.register(Box::new(gauge.clone()))?;
            Ok(gauge)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let counter = IntCounter::new(name, help)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        let by_cluster = |name: &str, help: &str| -> Result<IntGaugeVec, prometheus::Error> {
            let gauges = IntGaugeVec::new(Opts::new(name, help), &["cluster"])?;
            registry.register(Box::new(gauges.clone()))?;
            Ok(gauges)
        };
        let refusals = IntCounterVec::new(
            Opts::new(
                "http_refusals_total",
                "requests refused with 429 (limits) or 503 (pool exhausted, audit unavailable, \
                 busy, past the request's deadline), by status and error code",
            ),
            &["status", "code"],
        )?;
        registry.register(Box::new(refusals.clone()))?;
        Ok(Self {
            refusals,
            refusal_lines: Arc::new(LogThrottle::new(Duration::from_secs(1))),
            writer_queued: gauge(
                "event_writer_queued",
                "events enqueued and not yet written to ClickHouse or the spool",
            )?,
            writer_spool_bytes: gauge(
                "event_writer_spool_bytes",
                "bytes of events waiting in the spool for ClickHouse",
            )?,
            writer_clickhouse_up: gauge(
                "event_writer_clickhouse_up",
                "1 when the writer's last write to ClickHouse succeeded",
            )?,
            writer_delivered: counter(
                "event_writer_delivered_total",
                "events the writer has written to ClickHouse",
            )?,
            writer_spooled: counter(
                "event_writer_spooled_batches_total",
                "batches the writer has put in the spool while ClickHouse could not take them",
            )?,
            pool_connections: by_cluster(
                "postgres_pool_connections",
                "Postgres connections open in this process's pools, by cluster",
            )?,
            pool_idle: by_cluster(
                "postgres_pool_idle_connections",
                "open Postgres connections not in use, by cluster",
            )?,
            pool_max: by_cluster(
                "postgres_pool_max_connections",
                "Postgres connections this process may open, by cluster",
            )?,
            pool_waiting: by_cluster(
                "postgres_pool_waiting_requests",
                "work waiting for a Postgres connection, by cluster",
            )?,
            registry,
        })
    }

    /// Counts a refusal. Returns `Some(unlogged)` when it should be logged (at most once a
    /// second for each status and code, so a flood cannot flood the log) with the number of
    /// like refusals since the last line that was logged.
    pub(crate) fn refused(&self, status: u16, code: &'static str) -> Option<u64> {
        self.refusals
            .with_label_values(&[status.to_string().as_str(), code])
            .inc();
        self.refusal_lines.admit((status, code))
    }

    /// Counts `response` if it is a refusal (429 or 503) and logs it with its request id, its
    /// path and the tenant `tenant_of` names, at most once a second per status and code (the
    /// line says how many like it went unlogged). For a layer inside the request-id layer,
    /// which rebuilds error bodies: there the handler's own error is still on the response.
    pub fn observe_refusal<B>(
        &self,
        response: &ServiceResponse<B>,
        tenant_of: impl FnOnce(&HttpRequest) -> String,
    ) {
        let status = response.status().as_u16();
        if status != 429 && status != 503 {
            return;
        }
        let code = response
            .response()
            .error()
            .and_then(|error| error.as_error::<crate::error::ApiError>())
            .map_or("unknown", crate::error::ApiError::code);
        if let Some(unlogged) = self.refused(status, code) {
            let request = response.request();
            tracing::warn!(
                status,
                code,
                tenant = tenant_of(request),
                request_id = %crate::http::request_id_of(request),
                path = request.path(),
                unlogged,
                "request refused"
            );
        }
    }

    /// Reads the writer's state into its gauges.
    pub fn observe_writer(&self, writer: &EventWriter) {
        let stats = writer.stats();
        self.writer_queued.set(clamp(stats.queued as u64));
        self.writer_spool_bytes.set(clamp(stats.spool_bytes));
        self.writer_clickhouse_up
            .set(i64::from(stats.clickhouse_ok));
        // Counters follow the writer's own, which only grow.
        catch_up(&self.writer_delivered, stats.delivered);
        catch_up(&self.writer_spooled, stats.spooled_batches);
    }

    /// Reads the pools of `cluster` into its gauges (summed over them).
    pub fn observe_pools<'a>(&self, cluster: &str, pools: impl IntoIterator<Item = &'a Pool>) {
        let (mut open, mut idle, mut max, mut waiting) = (0, 0, 0, 0);
        for pool in pools {
            let status = pool.status();
            open += status.size;
            idle += status.available;
            max += status.max_size;
            waiting += status.waiting;
        }
        for (gauges, value) in [
            (&self.pool_connections, open),
            (&self.pool_idle, idle),
            (&self.pool_max, max),
            (&self.pool_waiting, waiting),
        ] {
            gauges
                .with_label_values(&[cluster])
                .set(clamp(value as u64));
        }
    }

    /// The text exposition of everything registered.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn catch_up(counter: &IntCounter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// The `/metrics` answer of `render`'s text.
pub fn answer(text: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}

/// What a plane's `/metrics` renders, and whether it is served on an address of its own
/// (then the public port answers 404): app data of each plane's app.
#[derive(Clone)]
pub struct MetricsSource {
    render: std::sync::Arc<dyn Fn() -> String + Send + Sync>,
    separately: bool,
}

impl MetricsSource {
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static, separately: bool) -> Self {
        Self {
            render: std::sync::Arc::new(render),
            separately,
        }
    }
}

/// `/metrics` on both planes.
pub fn routes() -> Vec<crate::routes::Route> {
    crate::routes::routes![get_metrics]
}

/// Prometheus metrics of this process: what every plane shows (the process, the event
/// writer, the Postgres pools by cluster) and the plane's own. Not on this port when the
/// plane's `*_metrics_listen` is set (404 here; served there alone).
#[crate::routes::route(get, "/metrics",
    summary = "Prometheus metrics",
    access = Public,
    audit = Never,
    rate = Unlimited,
    tag = "health",
    responses((status = 200, description = "Prometheus metrics (text exposition format 0.0.4)", content_type = "text/plain", body = String)))]
async fn get_metrics(
    source: web::Data<MetricsSource>,
) -> Result<HttpResponse, crate::error::ApiError> {
    if source.separately {
        return Err(crate::error::ApiError::not_found(
            "not_found",
            "no such route",
        ));
    }
    Ok(answer((source.render)()))
}

/// Serves `GET /metrics` (from `render`) on `listener`, apart from the plane's API: one
/// worker, nothing else routed.
pub fn serve<F>(listener: TcpListener, render: F) -> std::io::Result<Server>
where
    F: Fn() -> String + Clone + Send + 'static,
{
    Ok(HttpServer::new(move || {
        let render = render.clone();
        App::new().route(
            "/metrics",
            web::get().to(move || {
                let render = render.clone();
                async move { answer(render()) }
            }),
        )
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .run())
}
