//! Prometheus metrics of a data-plane node, served as text at `/metrics`.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub tenant_cache_hits: IntCounter,
    pub tenant_cache_misses: IntCounter,
    pub mail_sent: IntCounter,
    pub mail_send_failures: IntCounter,
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
        registry.register(Box::new(mail_sent.clone()))?;
        registry.register(Box::new(mail_send_failures.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            tenant_cache_hits,
            tenant_cache_misses,
            mail_sent,
            mail_send_failures,
        })
    }

    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
