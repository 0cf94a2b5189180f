//! The event writer: the request path enqueues, a background task writes to ClickHouse.
//!
//! - **Enqueue** ([`EventWriter::send`], [`EventWriter::record_audit`]) never waits: a bounded
//!   channel takes the event or the call fails at once. Callers check [`EventWriter::has_room`]
//!   *before* doing audited work, so a node that cannot keep an event refuses the work (503)
//!   instead of doing it unaudited.
//! - **Batching**: the task collects events until `batch_size` of them or `flush_interval`
//!   since the first, then inserts each table's rows in one RowBinary `INSERT`.
//! - **Outage**: an insert that fails or exceeds `insert_timeout` sends its batch to the
//!   [`Spool`]; while anything is spooled, new batches go to the spool behind it, so order is
//!   kept. The task replays the spool oldest first, with backoff (100 ms doubling to
//!   `retry_max`), and at start.
//! - **No duplicates on replay**: an insert that timed out may have landed. Before replaying a
//!   batch, the task asks ClickHouse which of its event ids are already stored and inserts only
//!   the others. One task owns a spool (it is locked), so nothing races that check. The tables
//!   are `ReplacingMergeTree` keyed by event id as a second line (see `docs/audit.md`).
//! - **Spool full**: the batch stays in memory and `has_room` turns false until the spool
//!   drains; the queue's bound caps that memory.
//! - **Anchors**: after audit rows are in ClickHouse, the head of each (tenant, stream) chain
//!   is written to `control.audit_chain_heads` (see [`super::chain`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clickhouse::Client;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::chain::ChainKey;
use super::rows::{AuditRow, Event, LogRow, MetricRow, SpanRow};
use super::spool::{Spool, SpoolError};

#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub batch_size: usize,
    pub flush_interval: Duration,
    /// Most events waiting in memory (not batches: one telemetry request may carry 10,000).
    pub queue_capacity: usize,
    pub insert_timeout: Duration,
    pub retry_max: Duration,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
}

impl WriterSettings {
    pub fn new(spool_dir: PathBuf) -> Self {
        Self {
            batch_size: 5000,
            flush_interval: Duration::from_millis(200),
            queue_capacity: 200_000,
            insert_timeout: Duration::from_secs(5),
            retry_max: Duration::from_secs(5),
            spool_dir,
            spool_max_bytes: 1 << 30,
        }
    }
}

/// Why an event was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the event queue is full or the spool has no room")]
    NoRoom,
    #[error("the event writer has stopped")]
    Stopped,
}

enum Message {
    Events(Vec<Event>),
    /// Write out what is queued (to ClickHouse or the spool); answer when done.
    Flush(oneshot::Sender<()>),
    /// Flush, then stop (releasing the spool).
    Stop(oneshot::Sender<()>),
}

/// Head of one tenant's chain on this stream.
struct Head {
    seq: u64,
    mac: String,
}

#[derive(Default)]
struct Status {
    spool_full: AtomicBool,
    spool_bytes: AtomicU64,
    clickhouse_ok: AtomicBool,
    inserted: AtomicU64,
    spooled: AtomicU64,
}

struct Inner {
    sender: mpsc::Sender<Message>,
    /// Events sent and not yet taken by the task, against `max_queued`.
    queued: Arc<AtomicU64>,
    max_queued: u64,
    stream: String,
    chains: Mutex<HashMap<String, Head>>,
    status: Arc<Status>,
}

/// Cheap to clone; all clones feed one background task.
#[derive(Clone)]
pub struct EventWriter {
    inner: Arc<Inner>,
}

impl EventWriter {
    /// Opens the spool (failing if another process holds it) and starts the task. `anchors`
    /// is the catalog pool chain heads are written to (`None`: not anchored). Must run inside
    /// a Tokio runtime.
    pub fn start(
        client: Client,
        settings: WriterSettings,
        anchors: Option<deadpool_postgres::Pool>,
    ) -> Result<Self, SpoolError> {
        let spool = Spool::open(&settings.spool_dir, settings.spool_max_bytes)?;
        let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let queued = Arc::new(AtomicU64::new(0));
        let max_queued = settings.queue_capacity.max(1) as u64;
        let status = Arc::new(Status::default());
        status
            .spool_bytes
            .store(spool.used_bytes(), Ordering::Relaxed);
        status.clickhouse_ok.store(true, Ordering::Relaxed);
        let task = Task {
            client,
            settings,
            spool,
            pending: Vec::new(),
            stuck: false,
            retry_at: None,
            backoff: Duration::from_millis(100),
            anchors,
            status: status.clone(),
            queued: queued.clone(),
        };
        tokio::spawn(task.run(receiver));
        Ok(Self {
            inner: Arc::new(Inner {
                sender,
                queued,
                max_queued,
                stream: uuid::Uuid::new_v4().to_string(),
                chains: Mutex::new(HashMap::new()),
                status,
            }),
        })
    }

    /// Whether an audited action may go ahead: the queue and the spool have room.
    pub fn has_room(&self) -> bool {
        self.inner.sender.capacity() > 0
            && self.inner.queued.load(Ordering::Relaxed) < self.inner.max_queued
            && !self.inner.status.spool_full.load(Ordering::Relaxed)
    }

    /// Whether the last attempt to write to ClickHouse succeeded.
    pub fn clickhouse_ok(&self) -> bool {
        self.inner.status.clickhouse_ok.load(Ordering::Relaxed)
    }

    /// Bytes waiting in the spool.
    pub fn spooled_bytes(&self) -> u64 {
        self.inner.status.spool_bytes.load(Ordering::Relaxed)
    }

    /// Events written to ClickHouse by this writer, and batches sent to the spool.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.inner.status.inserted.load(Ordering::Relaxed),
            self.inner.status.spooled.load(Ordering::Relaxed),
        )
    }

    /// This writer's chain stream id.
    pub fn stream(&self) -> &str {
        &self.inner.stream
    }

    /// Enqueues telemetry events (or any unchained events) without waiting; refused when the
    /// queue or the spool has no room.
    pub fn send(&self, events: Vec<Event>) -> Result<(), Refused> {
        if self.inner.status.spool_full.load(Ordering::Relaxed) {
            return Err(Refused::NoRoom);
        }
        self.enqueue(events)
    }

    /// Enqueues whatever the spool's state: for events whose action already happened (the
    /// caller checked [`Self::has_room`] before it), only the queue's bound refuses them.
    fn enqueue(&self, events: Vec<Event>) -> Result<(), Refused> {
        if events.is_empty() {
            return Ok(());
        }
        let count = events.len() as u64;
        let before = self.inner.queued.fetch_add(count, Ordering::Relaxed);
        if before + count > self.inner.max_queued {
            self.inner.queued.fetch_sub(count, Ordering::Relaxed);
            return Err(Refused::NoRoom);
        }
        self.inner
            .sender
            .try_send(Message::Events(events))
            .map_err(|error| {
                self.inner.queued.fetch_sub(count, Ordering::Relaxed);
                match error {
                    mpsc::error::TrySendError::Full(_) => Refused::NoRoom,
                    mpsc::error::TrySendError::Closed(_) => Refused::Stopped,
                }
            })
    }

    /// Links `row` into its tenant's chain on this stream (sequence, previous MAC, MAC) and
    /// enqueues it. The chain advances only if the queue took the row, and under one lock with
    /// the enqueue, so the queue's order is the chain's order.
    pub fn record_audit(&self, key: &ChainKey, mut row: AuditRow) -> Result<(), Refused> {
        let mut chains = self
            .inner
            .chains
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (seq, prev_mac) = match chains.get(&row.tenant_id) {
            Some(head) => (head.seq + 1, head.mac.clone()),
            None => (1, String::new()),
        };
        row.chain_stream = self.inner.stream.clone();
        row.chain_seq = seq;
        row.prev_mac = prev_mac;
        row.key_version = key.version;
        row.mac = key.mac(&row);
        let tenant = row.tenant_id.clone();
        let mac = row.mac.clone();
        self.enqueue(vec![Event::Audit(row)])?;
        chains.insert(tenant, Head { seq, mac });
        Ok(())
    }

    /// Writes out everything queued so far (to ClickHouse, or to the spool).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Flushes and stops the task; the spool is released for the next process.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.sender.send(Message::Stop(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

struct Task {
    client: Client,
    settings: WriterSettings,
    spool: Spool,
    /// Events taken from the queue and not yet in ClickHouse or the spool.
    pending: Vec<Event>,
    /// A batch the spool refused is back in `pending`: no room until it is written.
    stuck: bool,
    /// When to try ClickHouse again after a failure.
    retry_at: Option<Instant>,
    backoff: Duration,
    anchors: Option<deadpool_postgres::Pool>,
    status: Arc<Status>,
    queued: Arc<AtomicU64>,
}

#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("ClickHouse did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl Task {
    async fn run(mut self, mut receiver: mpsc::Receiver<Message>) {
        // Whatever a previous process left in the spool goes first.
        if self.spool.pending() {
            self.retry_at = Some(Instant::now());
        }
        let mut first_pending_at: Option<Instant> = None;
        loop {
            let flush_at = first_pending_at.map(|at| at + self.settings.flush_interval);
            let wake_at = match (flush_at, self.retry_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let message = match wake_at {
                Some(at) => match tokio::time::timeout_at(at, receiver.recv()).await {
                    Ok(message) => message,
                    Err(_) => {
                        self.tick().await;
                        if self.pending.is_empty() {
                            first_pending_at = None;
                        }
                        continue;
                    }
                },
                None => receiver.recv().await,
            };
            match message {
                Some(Message::Events(events)) => {
                    self.queued
                        .fetch_sub(events.len() as u64, Ordering::Relaxed);
                    self.pending.extend(events);
                    first_pending_at.get_or_insert_with(Instant::now);
                    if self.pending.len() >= self.settings.batch_size {
                        self.flush().await;
                    }
                }
                Some(Message::Flush(done)) => {
                    self.drain(&mut receiver);
                    self.flush().await;
                    let _ = done.send(());
                }
                Some(Message::Stop(done)) => {
                    self.drain(&mut receiver);
                    self.flush().await;
                    if !self.pending.is_empty() {
                        tracing::error!(
                            events = self.pending.len(),
                            "event writer stopping with events neither written nor spooled"
                        );
                    }
                    // Release the spool (its lock) before answering, so a successor process
                    // started right after takes over this slot and replays it.
                    drop(self);
                    let _ = done.send(());
                    return;
                }
                None => {
                    self.flush().await;
                    return;
                }
            }
            if self.pending.is_empty() {
                first_pending_at = None;
            }
        }
    }

    /// Takes what is already queued without waiting.
    fn drain(&mut self, receiver: &mut mpsc::Receiver<Message>) {
        while let Ok(message) = receiver.try_recv() {
            match message {
                Message::Events(events) => {
                    self.queued
                        .fetch_sub(events.len() as u64, Ordering::Relaxed);
                    self.pending.extend(events);
                }
                Message::Flush(done) | Message::Stop(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Timer: replay the spool if a retry is due, and flush what is pending.
    async fn tick(&mut self) {
        if self.retry_at.is_some_and(|at| at <= Instant::now()) {
            self.replay().await;
        }
        self.flush().await;
    }

    fn clickhouse_down(&self) -> bool {
        self.retry_at.is_some()
    }

    /// Sends pending events on: to ClickHouse when nothing is spooled and it is up, else to
    /// the spool. Events the spool cannot take stay pending.
    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.spool.pending() && !self.clickhouse_down() {
            self.replay().await;
        }
        let batch = std::mem::take(&mut self.pending);
        if !self.spool.pending() && !self.clickhouse_down() {
            match self.insert(&batch).await {
                Ok(()) => {
                    self.succeeded();
                    self.anchor(&batch).await;
                    self.stuck = false;
                    self.update_status();
                    return;
                }
                Err(error) => self.failed(&error),
            }
        }
        match self.spool.append(&batch) {
            Ok(()) => {
                self.status.spooled.fetch_add(1, Ordering::Relaxed);
                self.stuck = false;
            }
            Err(error) => {
                tracing::error!(%error, events = batch.len(), "cannot spool events; keeping them in memory");
                self.pending = batch;
                self.stuck = true;
            }
        }
        self.update_status();
    }

    fn update_status(&self) {
        let used = self.spool.used_bytes();
        self.status.spool_bytes.store(used, Ordering::Relaxed);
        self.status.spool_full.store(
            // Not "events pending": they are normal between flushes.
            used >= self.spool.max_bytes() || self.stuck,
            Ordering::Relaxed,
        );
    }

    fn succeeded(&mut self) {
        if self.retry_at.take().is_some() {
            tracing::info!("ClickHouse reachable again");
        }
        self.backoff = Duration::from_millis(100);
        self.status.clickhouse_ok.store(true, Ordering::Relaxed);
    }

    fn failed(&mut self, error: &WriteError) {
        if self.retry_at.is_none() {
            tracing::warn!(%error, "ClickHouse write failed; spooling events");
        }
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.settings.retry_max);
        self.status.clickhouse_ok.store(false, Ordering::Relaxed);
    }

    /// Replays spooled batches oldest first until the spool is empty or a write fails.
    async fn replay(&mut self) {
        loop {
            let next = match self.spool.oldest() {
                Ok(Some(next)) => next,
                Ok(None) => {
                    if self.retry_at.is_some() && !self.spool.pending() {
                        // Nothing left to prove ClickHouse is back with: try the next batch.
                        self.retry_at = None;
                    }
                    break;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read the spool");
                    self.retry_at = Some(Instant::now() + self.settings.retry_max);
                    break;
                }
            };
            let (batch, end) = next;
            let outcome = async {
                let fresh = self.not_yet_stored(batch).await?;
                self.insert(&fresh).await?;
                self.spool.mark_replayed(end)?;
                Ok::<_, WriteError>(fresh)
            }
            .await;
            match outcome {
                Ok(fresh) => {
                    self.succeeded();
                    self.anchor(&fresh).await;
                }
                Err(error) => {
                    self.failed(&error);
                    break;
                }
            }
        }
        self.update_status();
    }

    /// The events of `batch` whose ids ClickHouse does not have yet.
    async fn not_yet_stored(&self, batch: Vec<Event>) -> Result<Vec<Event>, WriteError> {
        let mut by_table: HashMap<&'static str, Vec<String>> = HashMap::new();
        for event in &batch {
            by_table
                .entry(event.table())
                .or_default()
                .push(event.event_id().to_owned());
        }
        let mut stored = std::collections::HashSet::new();
        for (table, ids) in by_table {
            let query = self
                .client
                .query("SELECT event_id FROM ? WHERE has(?, event_id)")
                .bind(clickhouse::sql::Identifier(table))
                .bind(ids);
            let found: Vec<String> =
                tokio::time::timeout(self.settings.insert_timeout, query.fetch_all::<String>())
                    .await
                    .map_err(|_| WriteError::Timeout(self.settings.insert_timeout))??;
            stored.extend(found);
        }
        Ok(batch
            .into_iter()
            .filter(|event| !stored.contains(event.event_id()))
            .collect())
    }

    async fn insert(&self, batch: &[Event]) -> Result<(), WriteError> {
        let mut audit = Vec::new();
        let mut logs = Vec::new();
        let mut metrics = Vec::new();
        let mut spans = Vec::new();
        for event in batch {
            match event {
                Event::Audit(row) => audit.push(row),
                Event::Log(row) => logs.push(row),
                Event::Metric(row) => metrics.push(row),
                Event::Span(row) => spans.push(row),
            }
        }
        let timeout = self.settings.insert_timeout;
        let work = async {
            insert_rows::<AuditRow>(&self.client, "audit_log", &audit, timeout).await?;
            insert_rows::<LogRow>(&self.client, "telemetry_logs", &logs, timeout).await?;
            insert_rows::<MetricRow>(&self.client, "telemetry_metrics", &metrics, timeout).await?;
            insert_rows::<SpanRow>(&self.client, "telemetry_spans", &spans, timeout).await?;
            Ok::<_, WriteError>(())
        };
        tokio::time::timeout(timeout * 2, work)
            .await
            .map_err(|_| WriteError::Timeout(timeout))??;
        self.status
            .inserted
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Records the newest (tenant, stream) heads of `batch` in the catalog.
    async fn anchor(&self, batch: &[Event]) {
        let Some(pool) = &self.anchors else {
            return;
        };
        let mut heads: HashMap<(&str, &str), (u64, &str)> = HashMap::new();
        for event in batch {
            if let Event::Audit(row) = event {
                let head = heads
                    .entry((row.tenant_id.as_str(), row.chain_stream.as_str()))
                    .or_insert((0, ""));
                if row.chain_seq > head.0 {
                    *head = (row.chain_seq, row.mac.as_str());
                }
            }
        }
        if heads.is_empty() {
            return;
        }
        let outcome = async {
            let client = pool.get().await.map_err(|error| error.to_string())?;
            for ((tenant, stream), (seq, mac)) in heads {
                let Ok(tenant) = uuid::Uuid::parse_str(tenant) else {
                    continue;
                };
                client
                    .execute(
                        "INSERT INTO control.audit_chain_heads (tenant_id, stream_id, seq, mac)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (tenant_id, stream_id) DO UPDATE
                             SET seq = excluded.seq, mac = excluded.mac, updated_at = now()
                             WHERE control.audit_chain_heads.seq < excluded.seq",
                        &[&tenant, &stream, &(seq as i64), &mac],
                    )
                    .await
                    .map_err(|error| error.to_string())?;
            }
            Ok::<_, String>(())
        }
        .await;
        if let Err(error) = outcome {
            // The next batch anchors a later head; verification only loses tail coverage.
            tracing::warn!(%error, "cannot anchor audit chain heads");
        }
    }
}

async fn insert_rows<T>(
    client: &Client,
    table: &str,
    rows: &[&T],
    timeout: Duration,
) -> Result<(), clickhouse::error::Error>
where
    T: clickhouse::RowOwned + clickhouse::RowWrite,
{
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = client
        .insert::<T>(table)
        .await?
        .with_timeouts(Some(timeout), Some(timeout));
    for row in rows {
        insert.write(*row).await?;
    }
    insert.end().await
}
