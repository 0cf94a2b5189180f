//! Prometheus metrics of a data-plane node, served as text at `/metrics`.

use std::sync::Arc;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// The status classes requests are counted by, 1xx to 5xx.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub tenant_cache_hits: IntCounter,
    pub tenant_cache_misses: IntCounter,
    pub mail_sent: IntCounter,
    pub mail_send_failures: IntCounter,
    /// Audit events lost after their change was made (the queue filled up in between).
    pub audit_events_dropped: IntCounter,
    /// The counter and histogram of each status class, resolved once: a request records
    /// without a label lookup.
    by_class: Arc<[(IntCounter, Histogram); 5]>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("tenantry".to_owned()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by status class",
            ),
            &["status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ],
            ),
            &["status"],
        )?;
        let tenant_cache_hits =
            IntCounter::new("tenant_cache_hits_total", "tenant registry cache hits")?;
        let tenant_cache_misses =
            IntCounter::new("tenant_cache_misses_total", "tenant registry cache misses")?;
        let mail_sent = IntCounter::new("mail_sent_total", "mails the SMTP server accepted")?;
        let mail_send_failures = IntCounter::new(
            "mail_send_failures_total",
            "failed attempts to send a mail (each is retried later)",
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(tenant_cache_hits.clone()))?;
        registry.register(Box::new(tenant_cache_misses.clone()))?;
        let audit_events_dropped = IntCounter::new(
            "audit_events_dropped_total",
            "audit events that could not be queued after their change was made",
        )?;
        registry.register(Box::new(audit_events_dropped.clone()))?;
        registry.register(Box::new(mail_sent.clone()))?;
        registry.register(Box::new(mail_send_failures.clone()))?;
        let class = |index: usize| -> Result<(IntCounter, Histogram), prometheus::Error> {
            Ok((
                http_requests.get_metric_with_label_values(&[CLASSES[index]])?,
                http_duration.get_metric_with_label_values(&[CLASSES[index]])?,
            ))
        };
        let by_class = Arc::new([class(0)?, class(1)?, class(2)?, class(3)?, class(4)?]);
        Ok(Self {
            by_class,
            registry,
            http_requests,
            http_duration,
            tenant_cache_hits,
            tenant_cache_misses,
            mail_sent,
            mail_send_failures,
            audit_events_dropped,
        })
    }

    /// Counts an answered request and its latency under its status class.
    pub fn record_request(&self, status: u16, seconds: f64) {
        let index = usize::from(status / 100).clamp(1, 5) - 1;
        let (requests, duration) = &self.by_class[index];
        requests.inc();
        duration.observe(seconds);
    }

    pub fn audit_dropped(&self) {
        self.audit_events_dropped.inc();
    }

    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
