//! The `signin-flood` section: what a flood of wrong-password sign-ins at one tenant costs
//! the node's memory and the other tenants' reads (issue 15, item 3).
//!
//! Other tenants' reads (`GET /v1/tenant`, spread over `BYSTANDERS` tenants) are sent open
//! loop at `--flood-read-rate` per second from a thread and client of their own, each request
//! on a task of its own, so a slow
//! answer does not hold back the next request and the latencies are those a steady client
//! would see. They are measured first on the idle node, then while `--flood` clients send
//! wrong-password sign-ins back to back at one tenant, ignoring `Retry-After` as an attacker
//! would, each to an address of its own (no lockout cuts it short). The process's resident
//! memory is sampled throughout; the node runs in this process, beside the load generator.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tenantry_tests::TestApp;

/// Tenants whose reads are measured.
const BYSTANDERS: usize = 10;
/// How often resident memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

pub struct FloodArgs {
    /// Concurrent sign-in clients.
    pub clients: usize,
    /// Other tenants' reads per second.
    pub read_rate: u32,
    /// Seconds each read measurement lasts.
    pub seconds: u64,
    /// Resident memory (MiB) at which the run stops, so a node without bounds cannot take the
    /// machine down with it.
    pub rss_limit_mib: u64,
    /// Whether a refused client waits `Retry-After` (plus up to a second of jitter) before its
    /// next sign-in, as retrying clients should; else it sends the next one at once, as an
    /// attacker would.
    pub honour_retry_after: bool,
}

/// A field of `/proc/self/status` in MiB (`VmRSS`, `VmHWM`).
fn status_mib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kib| kib / 1024)
}

/// Latencies (µs) and errors of open-loop reads, in the order they were sent; each error by
/// its kind (an HTTP status and the envelope's code, or the transport's failure).
struct Reads {
    latencies_us: Vec<u64>,
    errors: usize,
    error_kinds: std::collections::BTreeMap<String, usize>,
}

impl Reads {
    fn percentile(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let index = ((self.latencies_us.len() as f64 * p) as usize)
            .min(self.latencies_us.len().saturating_sub(1));
        self.latencies_us.get(index).copied().unwrap_or_default() as f64 / 1000.0
    }

    /// The reads sent from `second` on (of reads sent at `rate` per second).
    fn sent_since(&self, second: u64, rate: u32) -> Reads {
        let skip = (second * u64::from(rate)) as usize;
        Reads {
            latencies_us: self.latencies_us.get(skip..).unwrap_or_default().to_vec(),
            errors: 0,
            error_kinds: Default::default(),
        }
    }

    fn summary(&mut self) -> String {
        let kinds: Vec<String> = self
            .error_kinds
            .iter()
            .map(|(kind, count)| format!("{count} × {kind}"))
            .collect();
        format!(
            "{} reads, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors{}",
            self.latencies_us.len(),
            self.percentile(0.50),
            self.percentile(0.99),
            self.percentile(1.0),
            self.errors,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            }
        )
    }
}

/// Sends `requests` (cycled) open loop at `rate` per second for `seconds`, from a thread, a
/// runtime and a client of their own: the reads stand for other tenants' clients on other
/// machines, so their latency must be the node's, not the time their tasks wait behind the
/// flood's 1,000 tasks in the load generator's runtime (both on this process's two cores).
async fn open_loop_reads(requests: &[reqwest::Request], rate: u32, seconds: u64) -> Reads {
    let requests: Vec<reqwest::Request> = requests
        .iter()
        .map(|request| request.try_clone().unwrap())
        .collect();
    let reader = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let http = reqwest::Client::new();
                open_loop_reads_here(&http, &requests, rate, seconds).await
            })
    });
    tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap()
}

async fn open_loop_reads_here(
    http: &reqwest::Client,
    requests: &[reqwest::Request],
    rate: u32,
    seconds: u64,
) -> Reads {
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = u64::from(rate) * seconds;
    let mut tasks = Vec::new();
    for index in 0..total {
        ticker.tick().await;
        let request = requests[index as usize % requests.len()]
            .try_clone()
            .unwrap();
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let failure = match http.execute(request).await {
                Ok(response) if response.status().is_success() => response
                    .bytes()
                    .await
                    .err()
                    .map(|error| format!("body: {error}")),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body: serde_json::Value = response.json().await.unwrap_or_default();
                    Some(format!(
                        "{status} {}",
                        body["error"]["code"].as_str().unwrap_or("")
                    ))
                }
                Err(error) if error.is_timeout() => Some("transport: timeout".to_owned()),
                Err(error) if error.is_connect() => Some("transport: connect".to_owned()),
                Err(error) => {
                    // The innermost cause names it ("connection closed before message
                    // completed", "connection reset by peer", …).
                    let mut cause: &dyn std::error::Error = &error;
                    while let Some(source) = cause.source() {
                        cause = source;
                    }
                    Some(format!("transport: {cause}"))
                }
            };
            (failure, sent.elapsed().as_micros() as u64)
        }));
    }
    let mut reads = Reads {
        latencies_us: Vec::new(),
        errors: 0,
        error_kinds: Default::default(),
    };
    for task in tasks {
        let (failure, latency) = task.await.unwrap();
        reads.latencies_us.push(latency);
        if let Some(kind) = failure {
            reads.errors += 1;
            *reads.error_kinds.entry(kind).or_default() += 1;
        }
    }
    reads
}

/// Answers the flood got, by kind.
#[derive(Default)]
struct FloodAnswers {
    wrong_password: AtomicUsize,
    busy: AtomicUsize,
    database_busy: AtomicUsize,
    other: AtomicUsize,
    transport_errors: AtomicUsize,
}

pub async fn signin_flood(app: &TestApp, args: &FloodArgs, password: &str) {
    println!(
        "\n## Sign-in flood: {} clients of wrong-password sign-ins at one tenant, {}",
        args.clients,
        if args.honour_retry_after {
            "each waiting Retry-After when refused"
        } else {
            "ignoring Retry-After"
        }
    );
    app.tenant_with_active_admin("flood-target", "owner@flood-target.example", password)
        .await;
    app.raise_rate_limits("flood-target").await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients + 64)
        .build()
        .unwrap();
    let mut reads = Vec::new();
    for index in 0..BYSTANDERS {
        let slug = format!("flood-bystander-{index:02}");
        app.create_tenant(&slug).await;
        app.raise_rate_limits(&slug).await;
        reads.push(
            http.get(format!("{}/v1/tenant", app.data_url))
                .header("X-Tenant", &slug)
                .build()
                .unwrap(),
        );
    }
    open_loop_reads(&reads, args.read_rate, 2).await;

    let rss_before = status_mib("VmRSS");
    let mut idle = open_loop_reads(&reads, args.read_rate, args.seconds).await;
    println!(
        "idle node, other tenants' reads at {}/s: {}",
        args.read_rate,
        idle.summary()
    );

    // Peak memory from here on: VmHWM reset (Linux ≥ 4.0), and our own samples.
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let flood_started = Instant::now();
    let sampler = {
        let (stop, peak, limit) = (stop.clone(), peak.clone(), args.rss_limit_mib);
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let rss = status_mib("VmRSS");
                peak.fetch_max(rss, Ordering::SeqCst);
                if rss > limit {
                    println!(
                        "ABORTED: resident memory {rss} MiB passed --rss-limit-mib {limit}, {:.1} s \
                         into the flood",
                        flood_started.elapsed().as_secs_f64()
                    );
                    std::process::exit(2);
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        })
    };
    let answers = Arc::new(FloodAnswers::default());
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let flood: Vec<_> = (0..args.clients)
        .map(|client| {
            let (http, stop, answers, latencies) = (
                http.clone(),
                stop.clone(),
                answers.clone(),
                latencies.clone(),
            );
            let url = format!("{}/v1/auth/login", app.data_url);
            let honour_retry_after = args.honour_retry_after;
            tokio::spawn(async move {
                let mut attempt = 0u64;
                let mut mine = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    attempt += 1;
                    let body = serde_json::json!({
                        "email": format!("nobody-{client}-{attempt}@flood-target.example"),
                        "password": "not the password at all",
                    });
                    let sent = Instant::now();
                    let sent_request = http
                        .post(&url)
                        .header("X-Tenant", "flood-target")
                        .json(&body)
                        .send()
                        .await;
                    let mut retry_after = None;
                    let counter = match sent_request {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            retry_after = response
                                .headers()
                                .get("retry-after")
                                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
                            let body = response.text().await.unwrap_or_default();
                            match status {
                                401 => &answers.wrong_password,
                                503 if body.contains("credential_check_busy") => &answers.busy,
                                503 => &answers.database_busy,
                                _ => &answers.other,
                            }
                        }
                        Err(_) => &answers.transport_errors,
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    mine.push(sent.elapsed().as_micros() as u64);
                    if let (true, Some(seconds)) = (honour_retry_after, retry_after) {
                        // Retry-After, plus up to a second of jitter as retrying clients add
                        // (a fixed spread per client and attempt, not a random one).
                        let jitter = (client as u64 * 7919 + attempt * 104_729) % 1000;
                        let wait = Duration::from_secs(seconds) + Duration::from_millis(jitter);
                        tokio::time::sleep(wait).await;
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    let mut flooded = open_loop_reads(&reads, args.read_rate, args.seconds).await;
    let mut steady = flooded.sent_since(1, args.read_rate);
    stop.store(true, Ordering::SeqCst);
    for client in flood {
        client.await.unwrap();
    }
    let flood_seconds = flood_started.elapsed().as_secs_f64();
    sampler.await.unwrap();
    let peak_sampled = peak.load(Ordering::SeqCst);
    let hwm = status_mib("VmHWM");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = status_mib("VmRSS");
    let mut after = open_loop_reads(&reads, args.read_rate, args.seconds).await;

    let count = |counter: &AtomicUsize| counter.load(Ordering::SeqCst);
    let answered = count(&answers.wrong_password)
        + count(&answers.busy)
        + count(&answers.database_busy)
        + count(&answers.other);
    let mut sign_ins = Reads {
        latencies_us: std::mem::take(&mut *latencies.lock().unwrap()),
        errors: 0,
        error_kinds: Default::default(),
    };
    println!(
        "flood: {answered} sign-ins answered in {flood_seconds:.1} s: {} 401 (password checked), \
         {} 503 credential_check_busy, {} 503 other, {} other statuses, {} transport errors; \
         sign-in latency p50 {:.1} ms, p99 {:.1} ms",
        count(&answers.wrong_password),
        count(&answers.busy),
        count(&answers.database_busy),
        count(&answers.other),
        count(&answers.transport_errors),
        sign_ins.percentile(0.50),
        sign_ins.percentile(0.99),
    );
    println!(
        "during the flood, other tenants' reads at {}/s: {}",
        args.read_rate,
        flooded.summary()
    );
    println!(
        "  of which sent from the flood's second second on: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        steady.percentile(0.50),
        steady.percentile(0.99),
        steady.percentile(1.0)
    );
    println!(
        "after the flood, other tenants' reads at {}/s: {}",
        args.read_rate,
        after.summary()
    );
    println!(
        "resident memory: {rss_before} MiB before, peak {peak_sampled} MiB sampled every {} ms{}, \
         {rss_after} MiB 2 s after (goal: peak < 500 MB)",
        SAMPLE_EVERY.as_millis(),
        if hwm_reset {
            format!(" ({hwm} MiB VmHWM)")
        } else {
            String::new()
        },
    );
    println!(
        "ratio other tenants' read p99 during flood/idle: {:.2} over the whole flood, {:.2} from \
         its second second on (goal <= 3)",
        flooded.percentile(0.99) / idle.percentile(0.99),
        steady.percentile(0.99) / idle.percentile(0.99)
    );
}
