//! Prometheus metrics of a data-plane node, served as text at `/metrics` (or on
//! `data_metrics_listen` alone): requests by status class and latency, 429s by rate class,
//! credential refusals held (`rate_limit::hold`), sign-in outcomes (password, MFA, SSO) by
//! error code, the tenant cache, mail, and what every plane shows (`shared::metrics`: process,
//! event writer, pools by cluster, refusals by code).

use std::sync::Arc;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

/// The status classes requests are counted by, 1xx to 5xx.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Clone)]
pub struct Metrics {
    /// The process, event writer and pool gauges, and the registry everything is in.
    pub node: shared::metrics::NodeMetrics,
    pub registry: Registry,
    /// Requests refused with 429 by their route's rate class.
    pub rate_limited: IntCounterVec,
    /// Answers of the sign-in routes (password, MFA, SSO), by audit action and outcome
    /// (`success` or the error code).
    pub sign_ins: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// Documents fetched from OpenID providers, by `document` (`discovery`, `jwks`): with the
    /// per-issuer cache, far fewer than sign-ins.
    pub idp_fetches: IntCounterVec,
    pub tenant_cache_hits: IntCounter,
    pub tenant_cache_misses: IntCounter,
    pub mail_sent: IntCounter,
    pub mail_send_failures: IntCounter,
    /// Audit events lost after their change was made (the queue filled up in between).
    pub audit_events_dropped: IntCounter,
    /// Refusals of credential routes by what became of them (`held`, or `full`: answered at
    /// once with the connection closed, every hold taken); see `rate_limit::hold`.
    pub refusals_held: IntCounterVec,
    /// The counter and histogram of each status class, resolved once: a request records
    /// without a label lookup.
    by_class: Arc<[(IntCounter, Histogram); 5]>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let node = shared::metrics::NodeMetrics::new()?;
        let registry = node.registry.clone();
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "requests refused with 429, by rate class",
            ),
            &["class"],
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        let sign_ins = IntCounterVec::new(
            Opts::new(
                "sign_ins_total",
                "answers of the sign-in routes by audit action (auth.login, auth.mfa_verify, \
                 auth.sso_login) and outcome (success, or the error code)",
            ),
            &["action", "outcome"],
        )?;
        registry.register(Box::new(sign_ins.clone()))?;
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
        let idp_fetches = IntCounterVec::new(
            Opts::new(
                "sso_idp_fetches_total",
                "documents fetched from OpenID providers, by document (discovery, jwks)",
            ),
            &["document"],
        )?;
        registry.register(Box::new(idp_fetches.clone()))?;
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
        let refusals_held = IntCounterVec::new(
            Opts::new(
                "credential_refusals_held_total",
                "refusals of credential routes held before their answer (held), or answered at \
                 once with the connection closed because every hold was taken (full)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(refusals_held.clone()))?;
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
            node,
            rate_limited,
            sign_ins,
            by_class,
            registry,
            http_requests,
            http_duration,
            idp_fetches,
            tenant_cache_hits,
            tenant_cache_misses,
            mail_sent,
            mail_send_failures,
            audit_events_dropped,
            refusals_held,
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
        self.node.render()
    }

    /// Counts an answer of a sign-in route (`action` is its audit action).
    /// A document fetched from an OpenID provider (`discovery` or `jwks`).
    pub fn idp_fetched(&self, document: &str) {
        self.idp_fetches.with_label_values(&[document]).inc();
    }

    pub fn sign_in(&self, action: &str, outcome: &str) {
        self.sign_ins.with_label_values(&[action, outcome]).inc();
    }
}
