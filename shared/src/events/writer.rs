//! The event writer: the request path enqueues, a background task writes to ClickHouse.
//!
//! - **Enqueue** ([`EventWriter::send`], [`EventWriter::record_audit`]) never waits: events are
//!   appended to a bounded in-memory buffer under a short lock, or the call fails at once.
//!   Callers check [`EventWriter::has_room`] *before* doing audited work, so a node that cannot
//!   keep an event refuses the work (503) instead of doing it unaudited.
//! - **Batching**: the task takes the buffer `flush_interval` after its first event, or at once
//!   when it holds `batch_size`, then inserts each table's rows in one RowBinary `INSERT`. Only
//!   those two moments wake the task, not every event: waking a task on another thread costs a
//!   request tens of microseconds on a virtual machine (measured: docs/benchmarks.md).
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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use clickhouse::Client;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use super::chain::ChainKey;
use super::outbox::{Outboxed, Outboxes};
use super::rows::{AuditRow, Batch, Event, LogRow, MetricRow, SpanRow};
use super::spool::{Spool, SpoolError};
use super::store::{self, ChainHeads};

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

/// What the task is asked besides taking events.
enum Message {
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

/// A writer's state ([`EventWriter::stats`]).
#[derive(Debug, Clone, Copy)]
pub struct WriterStats {
    /// Events enqueued and not yet taken by the writing task.
    pub queued: usize,
    /// Bytes waiting in the spool.
    pub spool_bytes: u64,
    /// Whether the last write to ClickHouse succeeded.
    pub clickhouse_ok: bool,
    /// Events written to ClickHouse.
    pub delivered: u64,
    /// Batches put in the spool.
    pub spooled_batches: u64,
}

/// What the request path has enqueued and the task not yet taken.
#[derive(Default)]
struct Queued {
    events: Batch,
    /// Ids of the audit events among them that also wait in the audit outbox (deleted there
    /// once the events are in ClickHouse or the spool). Kept under the same lock as the events,
    /// so an id is never taken without its event.
    outboxed: Vec<Outboxed>,
}

/// Events enqueued and not yet taken by the task, shared by the request path and the task.
struct Queue {
    events: Mutex<Queued>,
    /// Wakes the task when the buffer gets its first event or reaches `batch_size`.
    wake: Notify,
    /// Most events the buffer holds (not batches: one telemetry request may carry 10,000).
    capacity: usize,
    batch_size: usize,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Queued> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn has_room(&self) -> bool {
        self.lock().events.len() < self.capacity
    }

    /// Appends `events`, all or none; `outboxed` names those also held in the audit outbox.
    fn push(&self, events: Vec<Event>, outboxed: Option<Outboxed>) -> Result<(), Refused> {
        let mut queued = self.lock();
        let before = queued.events.len();
        if before + events.len() > self.capacity {
            return Err(Refused::NoRoom);
        }
        queued.events.push(events);
        queued.outboxed.extend(outboxed);
        let after = queued.events.len();
        drop(queued);
        if before == 0 || (before < self.batch_size && after >= self.batch_size) {
            self.wake.notify_one();
        }
        Ok(())
    }

    fn take(&self) -> Queued {
        std::mem::take(&mut *self.lock())
    }

    fn len(&self) -> usize {
        self.lock().events.len()
    }
}

struct Inner {
    queue: Arc<Queue>,
    /// Flush and stop requests; closed when the last writer handle is dropped.
    control: mpsc::Sender<Message>,
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
    /// Opens the spool (failing if another process holds it) and starts the task.
    /// `outboxes` says where the audit outboxes are; chain heads are anchored in its catalog
    /// (`None`: not anchored, nothing outboxed). Must run inside a Tokio runtime.
    pub fn start(
        client: Client,
        settings: WriterSettings,
        outboxes: Option<Outboxes>,
    ) -> Result<Self, SpoolError> {
        let spool = Spool::open(&settings.spool_dir, settings.spool_max_bytes)?;
        let (control, receiver) = mpsc::channel(4);
        let queue = Arc::new(Queue {
            events: Mutex::new(Queued::default()),
            wake: Notify::new(),
            capacity: settings.queue_capacity.max(1),
            batch_size: settings.batch_size.max(1),
        });
        let status = Arc::new(Status::default());
        status
            .spool_bytes
            .store(spool.used_bytes(), Ordering::Relaxed);
        status.clickhouse_ok.store(true, Ordering::Relaxed);
        let task = Task {
            client,
            settings,
            spool,
            pending: Batch::default(),
            pending_outboxed: Vec::new(),
            undeleted: Vec::new(),
            stuck: false,
            retry_at: None,
            backoff: Duration::from_millis(100),
            anchors: outboxes.as_ref().map(|outboxes| outboxes.catalog.clone()),
            outboxes,
            status: status.clone(),
            queue: queue.clone(),
        };
        tokio::spawn(task.run(receiver));
        Ok(Self {
            inner: Arc::new(Inner {
                queue,
                control,
                stream: uuid::Uuid::new_v4().to_string(),
                chains: Mutex::new(HashMap::new()),
                status,
            }),
        })
    }

    /// Whether an audited action may go ahead: the queue and the spool have room.
    pub fn has_room(&self) -> bool {
        !self.inner.control.is_closed()
            && self.inner.queue.has_room()
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

    /// What the writer holds and has done, for `/metrics`.
    pub fn stats(&self) -> WriterStats {
        let (delivered, spooled_batches) = self.counters();
        WriterStats {
            queued: self.inner.queue.lock().events.len(),
            spool_bytes: self.spooled_bytes(),
            clickhouse_ok: self.clickhouse_ok(),
            delivered,
            spooled_batches,
        }
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
        self.enqueue(events, None)
    }

    /// Enqueues whatever the spool's state: for events whose action already happened (the
    /// caller checked [`Self::has_room`] before it), only the queue's bound refuses them.
    fn enqueue(&self, events: Vec<Event>, outboxed: Option<Outboxed>) -> Result<(), Refused> {
        if events.is_empty() {
            return Ok(());
        }
        if self.inner.control.is_closed() {
            return Err(Refused::Stopped);
        }
        self.inner.queue.push(events, outboxed)
    }

    /// Links `row` into its tenant's chain on this stream (sequence, previous MAC, MAC) and
    /// enqueues it. The chain advances only if the queue took the row, and under one lock with
    /// the enqueue, so the queue's order is the chain's order.
    pub fn record_audit(&self, key: &ChainKey, row: AuditRow) -> Result<(), Refused> {
        self.link_and_enqueue(key, row, None)
    }

    /// [`Self::record_audit`] for an event that also waits in the audit outbox (its change
    /// committed with it, see [`super::outbox`]): once the event is in ClickHouse or the spool,
    /// the writer deletes its outbox row, on `cluster` (the tenant's; `None`: the catalog's).
    pub fn record_outboxed_audit(
        &self,
        key: &ChainKey,
        row: AuditRow,
        cluster: Option<Arc<str>>,
    ) -> Result<(), Refused> {
        let outboxed = uuid::Uuid::parse_str(&row.event_id)
            .ok()
            .map(|event_id| Outboxed { cluster, event_id });
        self.link_and_enqueue(key, row, outboxed)
    }

    fn link_and_enqueue(
        &self,
        key: &ChainKey,
        mut row: AuditRow,
        outboxed: Option<Outboxed>,
    ) -> Result<(), Refused> {
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
        self.enqueue(vec![Event::Audit(Box::new(row))], outboxed)?;
        chains.insert(tenant, Head { seq, mac });
        Ok(())
    }

    /// Writes out everything queued so far (to ClickHouse, or to the spool).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.control.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Flushes and stops the task; the spool is released for the next process.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.control.send(Message::Stop(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

struct Task {
    client: Client,
    settings: WriterSettings,
    spool: Spool,
    /// Events taken from the queue and not yet in ClickHouse or the spool.
    pending: Batch,
    /// Ids of the pending audit events that wait in the audit outbox too.
    pending_outboxed: Vec<Outboxed>,
    /// Outbox rows of delivered events whose delete failed; tried again with the next batch.
    undeleted: Vec<Outboxed>,
    /// A batch the spool refused is back in `pending`: no room until it is written.
    stuck: bool,
    /// When to try ClickHouse again after a failure.
    retry_at: Option<Instant>,
    backoff: Duration,
    anchors: Option<deadpool_postgres::Pool>,
    /// Where delivered events' outbox rows are deleted (`None`: nothing is outboxed).
    outboxes: Option<Outboxes>,
    status: Arc<Status>,
    queue: Arc<Queue>,
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
    async fn run(mut self, mut control: mpsc::Receiver<Message>) {
        // Whatever a previous process left in the spool goes first.
        if self.spool.pending() {
            self.retry_at = Some(Instant::now());
        }
        // When the events now in the buffer are due to be written.
        let mut flush_at: Option<Instant> = None;
        loop {
            let wake_at = match (flush_at, self.retry_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timer = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = control.recv() => {
                    self.take();
                    self.flush().await;
                    flush_at = None;
                    match message {
                        Some(Message::Flush(done)) => {
                            let _ = done.send(());
                        }
                        Some(Message::Stop(done)) => {
                            self.stop();
                            let _ = done.send(());
                            return;
                        }
                        None => {
                            self.stop();
                            return;
                        }
                    }
                }
                () = self.queue.wake.notified() => {
                    if self.queue.len() >= self.settings.batch_size {
                        self.take();
                        self.flush().await;
                        flush_at = None;
                    }
                    if self.queue.len() > 0 {
                        flush_at.get_or_insert_with(|| Instant::now() + self.settings.flush_interval);
                    }
                }
                () = timer => {
                    self.take();
                    self.tick().await;
                    flush_at = None;
                }
            }
            if flush_at.is_none() && !self.pending.is_empty() {
                // Events the spool could not take: try again after the interval.
                flush_at = Some(Instant::now() + self.settings.flush_interval);
            }
        }
    }

    /// Moves the buffer's events behind those already pending.
    fn take(&mut self) {
        let queued = self.queue.take();
        self.pending.append(queued.events);
        self.pending_outboxed.extend(queued.outboxed);
    }

    /// Logs what could be neither written nor spooled, then releases the spool (its lock)
    /// by dropping the task, so a successor process takes over this slot and replays it.
    fn stop(self) {
        if !self.pending.is_empty() {
            tracing::error!(
                events = self.pending.len(),
                "event writer stopping with events neither written nor spooled"
            );
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
        let outboxed = std::mem::take(&mut self.pending_outboxed);
        if !self.spool.pending() && !self.clickhouse_down() {
            match self.insert(&batch).await {
                Ok(()) => {
                    self.succeeded();
                    self.anchor(&batch).await;
                    self.release_outbox(outboxed).await;
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
                // The spool is fsync'd: the events survive this process from here on.
                self.release_outbox(outboxed).await;
            }
            Err(error) => {
                tracing::error!(%error, events = batch.len(), "cannot spool events; keeping them in memory");
                self.pending = batch;
                self.pending_outboxed = outboxed;
                self.stuck = true;
            }
        }
        self.update_status();
    }

    /// Deletes the outbox rows of events now in ClickHouse or the spool (with any whose delete
    /// failed before). A failure keeps them for the next batch; recovery would otherwise find
    /// them in ClickHouse and delete them too (at most `OUTBOX_RETRY_MAX` are kept).
    async fn release_outbox(&mut self, delivered: Vec<Outboxed>) {
        const OUTBOX_RETRY_MAX: usize = 100_000;
        let Some(outboxes) = &self.outboxes else {
            return;
        };
        let mut events = std::mem::take(&mut self.undeleted);
        events.extend(delivered);
        if events.is_empty() {
            return;
        }
        let (mut failed, error) = outboxes.delete(events, self.settings.insert_timeout).await;
        if let Some(error) = error {
            tracing::warn!(%error, rows = failed.len(), "cannot delete delivered events from the audit outbox; will retry");
            let excess = failed.len().saturating_sub(OUTBOX_RETRY_MAX);
            failed.drain(..excess);
            self.undeleted = failed;
        }
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
    async fn not_yet_stored(&self, batch: Batch) -> Result<Batch, WriteError> {
        let mut by_table: HashMap<&'static str, Vec<String>> = HashMap::new();
        for event in batch.iter() {
            by_table
                .entry(event.table())
                .or_default()
                .push(event.event_id().to_owned());
        }
        let mut stored = std::collections::HashSet::new();
        for (table, ids) in by_table {
            let found = stored_event_ids(&self.client, table, ids, self.settings.insert_timeout)
                .await
                .map_err(|error| match error {
                    StoredIdsError::ClickHouse(error) => WriteError::ClickHouse(error),
                    StoredIdsError::Timeout(deadline) => WriteError::Timeout(deadline),
                })?;
            stored.extend(found);
        }
        Ok(batch.retain(|event| !stored.contains(event.event_id())))
    }

    async fn insert(&self, batch: &Batch) -> Result<(), WriteError> {
        let mut audit = Vec::new();
        let mut logs = Vec::new();
        let mut metrics = Vec::new();
        let mut spans = Vec::new();
        for event in batch.iter() {
            match event {
                Event::Audit(row) => audit.push(&**row),
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
    async fn anchor(&self, batch: &Batch) {
        let Some(pool) = &self.anchors else {
            return;
        };
        let mut heads: HashMap<(&str, &str), (u64, &str)> = HashMap::new();
        for event in batch.iter() {
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
        let mut anchored = ChainHeads {
            tenants: Vec::with_capacity(heads.len()),
            streams: Vec::with_capacity(heads.len()),
            seqs: Vec::with_capacity(heads.len()),
            macs: Vec::with_capacity(heads.len()),
        };
        for ((tenant, stream), (seq, mac)) in heads {
            let Ok(tenant) = uuid::Uuid::parse_str(tenant) else {
                continue;
            };
            anchored.tenants.push(tenant);
            anchored.streams.push(stream);
            anchored.seqs.push(seq as i64);
            anchored.macs.push(mac);
        }
        let work = async {
            let mut client = pool.get().await.map_err(|error| error.to_string())?;
            store::anchor_chain_heads(&mut client, &anchored)
                .await
                .map_err(|error| error.to_string())
        };
        // A hung Postgres must not hold up the writer: the queue behind it would fill.
        let deadline = self.settings.insert_timeout;
        let outcome = tokio::time::timeout(deadline, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {deadline:?}")));
        if let Err(error) = outcome {
            // The next batch anchors a later head; verification only loses tail coverage.
            tracing::warn!(%error, "cannot anchor audit chain heads");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoredIdsError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("ClickHouse did not answer within {0:?}")]
    Timeout(Duration),
}

/// Which of `ids` the events table `table` already holds (an insert that timed out may have
/// landed; a dead node may have delivered an event it had not yet cleared from the outbox).
pub async fn stored_event_ids(
    client: &Client,
    table: &str,
    ids: Vec<String>,
    deadline: Duration,
) -> Result<Vec<String>, StoredIdsError> {
    tokio::time::timeout(deadline, store::stored_event_ids(client, table, ids))
        .await
        .map_err(|_| StoredIdsError::Timeout(deadline))?
        .map_err(StoredIdsError::from)
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
