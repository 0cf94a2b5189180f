//! Running SQL inside one tenant's schema, as that tenant's role.
//!
//! Every unit of work is a transaction that starts with
//! `BEGIN; SET LOCAL ROLE <tenant role>; SET LOCAL search_path TO <tenant schema>`, sent
//! pipelined with the first statement so the switch costs no extra round trip. `SET LOCAL`
//! ends with the transaction, so a pooled connection never carries one tenant's context into
//! the next request, and the scheme stays correct behind a transaction-mode pooler.
//!
//! Invariants:
//! - A connection goes back to the pool only outside a transaction. A [`TenantTransaction`]
//!   dropped mid-way (an early return, a cancelled request) rolls back on a spawned task
//!   before the connection is released, or detaches the connection from the pool when it
//!   cannot.
//! - If the role or search_path cannot be set, the transaction is aborted and no statement of
//!   the request runs.
//! - Statements run as the tenant role. The one exception,
//!   [`TenantTransaction::query_as_session_user`], switches back to the tenant role in the same
//!   pipelined message, and a failure anywhere in it aborts the transaction.
//! - In an audited request (its scope carries an [`AuditIntent`]), the first transaction that
//!   changed something commits the request's audit event with it, into the audit outbox, in
//!   the same pipelined message as `COMMIT` (see [`crate::events::outbox`]).
//! - Every statement has the server's `statement_timeout`, set with `SET LOCAL` in the tenant
//!   switch (never as a connection option, which a pooler refuses), and every round trip a
//!   deadline just above it ([`TenantDb::with_statement_timeout`]). A server that does not
//!   answer in time costs the request a 503, and the connection is closed, never reused.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool, PoolError};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::cluster::fleet::Fleet;
use crate::events::outbox::AuditIntent;
use crate::observability::at_most_once_a_second;
use crate::tenant::{PgIdentifier, Tenant, TenantSlug};

#[derive(Debug, thiserror::Error)]
pub enum TenantDbError {
    #[error("no database connection available: {0}")]
    Pool(#[from] PoolError),
    #[error("database error: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// The connection closed (its server went away), or was closed after a missed deadline.
    #[error("the transaction's connection is gone")]
    Closed,
    #[error("Postgres did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The tenant's cluster (not the catalog's) gave no connection.
    #[error(transparent)]
    ClusterUnavailable(#[from] crate::cluster::fleet::Unavailable),
    /// Switching to the tenant's role and schema failed: they are gone from the cluster this
    /// node routed to (a move's drop, or a deletion, it has not heard of yet).
    #[error("the tenant's role or schema is gone: {0}")]
    Setup(tokio_postgres::Error),
}

/// A client never causes these: no connection in time, a missed deadline or a connection
/// that closed under the transaction is 503 `database_unavailable` (retry), a tenant cluster
/// that gives no connection or closes it 503 `tenant_unavailable` (retry; other clusters'
/// tenants are served), as does a tenant role or schema gone from the cluster routed to (a
/// move's drop this node has not heard of yet), a privilege refused by a move's fence 503
/// `tenant_moving`, anything else a logged 500. Every error type of the data plane that
/// carries a `TenantDbError` maps it through here.
///
/// Their warnings are written at most once a second per kind (the line says how many like it
/// went unlogged): a database outage under load must not flood the log.
impl From<TenantDbError> for crate::error::ApiError {
    fn from(error: TenantDbError) -> Self {
        match error {
            TenantDbError::Pool(error) => error.into(),
            TenantDbError::Timeout(deadline) => {
                at_most_once_a_second("Postgres missed a deadline", |unlogged| {
                    tracing::warn!(?deadline, unlogged, "Postgres missed a deadline");
                });
                Self::database_unavailable()
            }
            TenantDbError::Closed => {
                at_most_once_a_second("connection closed", |unlogged| {
                    tracing::warn!(unlogged, "a Postgres connection closed under a transaction");
                });
                Self::database_unavailable()
            }
            // A tenant's role is refused its own tables only by a move's fence
            // (`control-plane/src/moves`) that this node has not heard of yet; the statement
            // failed, nothing changed. (A role reaching beyond its schema is refused the same
            // way, which a request never does: logged.)
            TenantDbError::Query(error)
                if error.code()
                    == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
            {
                at_most_once_a_second("privilege refused", |unlogged| {
                    tracing::warn!(%error, unlogged,
                        "a tenant statement was refused a privilege: a move's fence?");
                });
                tenant_moving()
            }
            TenantDbError::Setup(error) => {
                at_most_once_a_second("role or schema gone", |unlogged| {
                    tracing::warn!(%error, unlogged,
                        "a tenant's role or schema is gone under a request: a move or deletion this node has not heard of yet?");
                });
                Self::unavailable(
                    "tenant_unavailable",
                    "the tenant's database is unavailable; retry shortly",
                )
                .with_retry_after(crate::error::DATABASE_RETRY_AFTER_SECONDS)
            }
            TenantDbError::ClusterUnavailable(error) => {
                at_most_once_a_second("cluster gave no connection", |unlogged| {
                    tracing::warn!(cluster = %error.cluster, reason = %error.reason, unlogged,
                        "a tenant's cluster gave no connection");
                });
                Self::unavailable(
                    "tenant_unavailable",
                    "the tenant's database is unavailable; retry shortly",
                )
                .with_retry_after(crate::error::DATABASE_RETRY_AFTER_SECONDS)
            }
            other => Self::internal(&other),
        }
    }
}

/// 503 `tenant_moving`: a move to another cluster refuses the tenant's writes for a moment;
/// its reads are served. Retry shortly.
pub fn tenant_moving() -> crate::error::ApiError {
    crate::error::ApiError::unavailable(
        "tenant_moving",
        "the tenant is moving to another database cluster; writes resume in a moment",
    )
    .with_retry_after(crate::error::DATABASE_RETRY_AFTER_SECONDS)
}

/// What a unit of work needs to reach exactly one tenant's schema.
#[derive(Debug, Clone)]
pub struct TenantScope {
    pub tenant_id: Uuid,
    pub slug: TenantSlug,
    role: PgIdentifier,
    /// The cluster the tenant is placed on (`None`: whichever the pool reaches).
    cluster: Option<Arc<str>>,
    /// `BEGIN; SET LOCAL …` for this tenant, built once.
    setup: Arc<str>,
    /// The audit event of the request this scope serves, written to the audit outbox by the
    /// first of its transactions that commits a change (see [`crate::events::outbox`]).
    audit: Option<Arc<AuditIntent>>,
}

/// The `SET LOCAL` statements that put a transaction in a tenant's context.
pub fn tenant_settings(schema: &PgIdentifier, role: &PgIdentifier) -> String {
    format!(
        "SET LOCAL ROLE {}; SET LOCAL search_path TO {}",
        role.quoted(),
        schema.quoted()
    )
}

impl TenantScope {
    pub fn new(
        tenant_id: Uuid,
        slug: TenantSlug,
        schema: &PgIdentifier,
        role: &PgIdentifier,
    ) -> Self {
        let setup = format!("BEGIN; {}", tenant_settings(schema, role));
        Self {
            tenant_id,
            slug,
            role: role.clone(),
            cluster: None,
            setup: setup.into(),
            audit: None,
        }
    }

    /// The same scope for one audited request: its transactions write `intent` to the audit
    /// outbox when the first of them commits a change.
    pub fn with_audit(&self, intent: Arc<AuditIntent>) -> Self {
        Self {
            audit: Some(intent),
            ..self.clone()
        }
    }

    /// The tenant's Postgres role, which every statement of its transactions runs as.
    pub fn role(&self) -> &PgIdentifier {
        &self.role
    }

    /// The cluster the tenant is placed on, when the scope knows it.
    pub fn cluster(&self) -> Option<&Arc<str>> {
        self.cluster.as_ref()
    }

    pub fn for_tenant(tenant: &Tenant) -> Self {
        Self {
            cluster: Some(tenant.cluster.as_str().into()),
            ..Self::new(tenant.id, tenant.slug.clone(), &tenant.schema, &tenant.role)
        }
    }
}

/// The pools through which all tenant work runs.
///
/// A data-plane node has one pool per HTTP worker and one for everything else (tenant lookups,
/// background tasks). A tokio-postgres connection is driven by a task on the runtime that
/// opened it, and each actix worker is a runtime of its own: a connection opened on one worker
/// and then used by another makes every round trip hop between threads (a thread wake-up each
/// way; a bare handler's reads gained 11-18% from a pool per worker, docs/benchmarks.md). So
/// each worker takes its connections from its own pool ([`for_worker`](Self::for_worker), called in the worker's app factory).
///
/// With a [`Fleet`] the pools above serve the catalog's cluster, and a scope placed on another
/// cluster takes its connection from that cluster's pools (the same worker's).
#[derive(Clone)]
pub struct TenantDb {
    /// The pool this handle takes connections from.
    pool: Pool,
    /// The pool for work off the HTTP workers.
    shared: Pool,
    /// The workers' pools (empty for a single-pool `TenantDb`): `groups` per worker, worker
    /// by worker.
    worker_pools: Arc<[Pool]>,
    /// Affinity groups per worker: a tenant's transactions on a worker always take their
    /// connection from the group [`affinity_group`] picks, so each backend sees about
    /// 1/`groups` of the tenants' schemas.
    groups: usize,
    /// Longest any round trip of a transaction may take (see [`TenantTransaction`]).
    deadline: Duration,
    /// `SET LOCAL statement_timeout = …`, sent with each transaction's tenant switch (`None`:
    /// the server's default).
    statement_timeout: Option<Arc<str>>,
    /// The pools to other clusters than the catalog's (none: every scope runs on `pool`).
    fleet: Option<Fleet>,
    /// The HTTP worker this handle serves (`None`: work off the workers).
    worker: Option<usize>,
    /// Transactions a connection serves before it is closed (`None`: no limit); see
    /// [`TenantDb::with_connection_max_uses`].
    max_uses: Option<usize>,
}

/// The affinity group, of `groups`, of tenant `tenant_id`: from the id's last 8 bytes (random
/// in both v4 and v7 ids; the first bytes of a v7 id are its creation time). Every node
/// computes the same, so a tenant meets the same share of backends whichever node serves it.
pub fn affinity_group(tenant_id: Uuid, groups: usize) -> usize {
    let bytes = tenant_id.as_bytes();
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&bytes[8..]);
    (u64::from_le_bytes(tail) % groups.max(1) as u64) as usize
}

/// Round-trip deadline of a `TenantDb` unless set with [`TenantDb::with_statement_timeout`].
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// How much longer than the server's statement timeout a round trip may take before Postgres
/// is taken not to be answering at all (a hung server, a silent network).
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// The round-trip deadline that goes with a statement timeout of `timeout`: past it Postgres
/// is taken not to be answering at all.
pub fn round_trip_deadline(timeout: Duration) -> Duration {
    timeout + DEADLINE_MARGIN
}

impl TenantDb {
    /// One pool for all work.
    pub fn new(pool: Pool) -> Self {
        Self {
            shared: pool.clone(),
            pool,
            worker_pools: Arc::new([]),
            groups: 1,
            deadline: DEFAULT_DEADLINE,
            statement_timeout: None,
            fleet: None,
            worker: None,
            max_uses: None,
        }
    }

    /// `groups` pools per HTTP worker (worker by worker: `worker_pools.len()` is the workers
    /// times `groups`), and `shared` for work off the workers (this handle's pool).
    pub fn with_worker_pools(shared: Pool, worker_pools: Vec<Pool>, groups: usize) -> Self {
        Self {
            pool: shared.clone(),
            shared,
            worker_pools: worker_pools.into(),
            groups: groups.max(1),
            deadline: DEFAULT_DEADLINE,
            statement_timeout: None,
            fleet: None,
            worker: None,
            max_uses: None,
        }
    }

    /// Closes each connection once it has served `uses` transactions, so its backend exits
    /// and gives back its caches. A Postgres backend caches the catalog entries of every schema
    /// it touches and never evicts them: about 9 KiB per tenant schema (docs/benchmarks.md,
    /// "Fleet"), so with tenants spread over many schemas a long-lived connection grows
    /// without bound. A connection that served `uses` transactions has touched at most `uses`
    /// schemas. The price: each new backend starts cold (docs/scale-out.md).
    pub fn with_connection_max_uses(mut self, uses: Option<usize>) -> Self {
        self.max_uses = uses.filter(|uses| *uses > 0);
        self
    }

    /// The same pools for the catalog's cluster, and `fleet`'s for tenants placed elsewhere.
    pub fn with_fleet(mut self, fleet: Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// The pools to other clusters, when this handle has them.
    pub fn fleet(&self) -> Option<&Fleet> {
        self.fleet.as_ref()
    }

    /// The same pools with every statement of a tenant transaction limited to `timeout` on
    /// the server (`SET LOCAL statement_timeout`, in the same message as the tenant switch:
    /// no extra round trip, and nothing a transaction-mode pooler refuses), and every round
    /// trip to `timeout` and 2 s more: past that Postgres is not answering at all, and the
    /// request gets a 503 instead of waiting as long as the hang.
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout =
            Some(format!("SET LOCAL statement_timeout = {}", timeout.as_millis()).into());
        self.deadline = round_trip_deadline(timeout);
        self
    }

    /// The handle the `worker`-th HTTP worker uses: it takes connections from that worker's
    /// pool (the same handle when there are no worker pools).
    pub fn for_worker(&self, worker: usize) -> Self {
        match self.worker_pools.len() / self.groups {
            0 => self.clone(),
            workers => Self {
                pool: self.worker_pools[(worker % workers) * self.groups].clone(),
                worker: Some(worker % workers),
                ..self.clone()
            },
        }
    }

    /// A connection for a transaction in `scope` on the catalog's cluster: on a worker handle
    /// with affinity groups, preferably from the tenant's group of the worker's pools
    /// ([`crate::db::get_preferring`]), else from this handle's pool.
    async fn local_connection(&self, scope: &TenantScope) -> Result<Object, PoolError> {
        match self.worker {
            Some(worker) if self.groups > 1 => {
                let first = worker * self.groups;
                crate::db::get_preferring(
                    &self.worker_pools[first..first + self.groups],
                    affinity_group(scope.tenant_id, self.groups),
                )
                .await
            }
            _ => self.pool.get().await,
        }
    }

    /// The pool this handle takes connections from.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The HTTP workers' pools (for checks over every connection).
    pub fn worker_pools(&self) -> &[Pool] {
        &self.worker_pools
    }

    /// The pool for work off the HTTP workers.
    pub fn shared_pool(&self) -> &Pool {
        &self.shared
    }

    /// Takes a connection for a unit of work in `scope`. Nothing is sent until the first
    /// statement, which carries the tenant switch with it.
    pub async fn begin(&self, scope: &TenantScope) -> Result<TenantTransaction, TenantDbError> {
        let elsewhere = scope
            .cluster
            .as_deref()
            .filter(|cluster| *cluster != crate::catalog::CATALOG_CLUSTER);
        let (client, remote) = match (&self.fleet, elsewhere) {
            (Some(fleet), Some(cluster)) => (
                fleet
                    .connection(
                        cluster,
                        self.worker
                            .map(|worker| (worker, affinity_group(scope.tenant_id, self.groups))),
                    )
                    .await?,
                Some(cluster.to_owned()),
            ),
            _ => (self.local_connection(scope).await?, None),
        };
        let setup = match &self.statement_timeout {
            Some(timeout) => format!("{}; {timeout}", scope.setup).into(),
            None => scope.setup.clone(),
        };
        Ok(TenantTransaction {
            client: Some(client),
            pending_setup: Some(setup),
            in_transaction: false,
            tenant_id: scope.tenant_id,
            role: scope.role.clone(),
            audit: scope.audit.clone(),
            deadline: self.deadline,
            remote,
            max_uses: self.max_uses,
        })
    }

    /// One statement in its own tenant transaction, in a single round trip: the tenant switch,
    /// the statement and the commit are pipelined.
    pub async fn query_once(
        &self,
        scope: &TenantScope,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, TenantDbError> {
        let mut transaction = self.begin(scope).await?;
        transaction.query_then_commit(sql, params).await
    }
}

/// A transaction in one tenant's context. Finish it with [`commit`](Self::commit) or
/// [`rollback`](Self::rollback); dropping it rolls back.
pub struct TenantTransaction {
    client: Option<Object>,
    pending_setup: Option<Arc<str>>,
    in_transaction: bool,
    tenant_id: Uuid,
    role: PgIdentifier,
    audit: Option<Arc<AuditIntent>>,
    deadline: Duration,
    /// The tenant's cluster, when it is not the catalog's.
    remote: Option<String>,
    /// Close the connection instead of returning it once it has served this many.
    max_uses: Option<usize>,
}

impl TenantTransaction {
    /// A connection that closed under the transaction (its server stopped or restarted) is
    /// the database being unavailable, not a bug: [`TenantDbError::Closed`], or
    /// [`TenantDbError::ClusterUnavailable`] for a tenant on another cluster than the
    /// catalog's.
    fn classify(&self, error: TenantDbError) -> TenantDbError {
        match (error, &self.remote) {
            (TenantDbError::Query(error), Some(cluster)) if error.is_closed() => {
                crate::cluster::fleet::Unavailable {
                    cluster: cluster.clone(),
                    reason: error.to_string(),
                }
                .into()
            }
            (TenantDbError::Query(error), None) if error.is_closed() => TenantDbError::Closed,
            (error, _) => error,
        }
    }

    fn client(&self) -> Result<&Object, TenantDbError> {
        // `client` is taken in `Drop`, and when Postgres missed a deadline (the transaction
        // then answers `Closed` to anything more).
        self.client.as_ref().ok_or(TenantDbError::Closed)
    }

    /// Runs a statement with explicitly typed parameters (no prepare round trip).
    pub async fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, TenantDbError> {
        let outcome = self.query_typed_unclassified(sql, params).await;
        outcome.map_err(|error| self.classify(error))
    }

    async fn query_typed_unclassified(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, TenantDbError> {
        match self.pending_setup.take() {
            None => {
                let client = self.client()?;
                let rows = within(self.deadline, client.query_typed(sql, params)).await;
                Ok(self.answered(rows)??)
            }
            Some(setup) => {
                self.in_transaction = true;
                let client = self.client()?;
                let outcome = within(self.deadline, async {
                    tokio::join!(
                        send_setup(client, Some(&setup)),
                        client.query_typed(sql, params)
                    )
                })
                .await;
                let (setup_result, rows) = self.answered(outcome)?;
                setup_result?;
                Ok(rows?)
            }
        }
    }

    /// Publishes `changes` to every node when the transaction commits (nothing if it rolls
    /// back), in one statement; no round trip when there is nothing to publish.
    pub async fn notify(&mut self, changes: &[crate::notify::Change]) -> Result<(), TenantDbError> {
        let notifications = crate::notify::Notifications::new(changes);
        if !notifications.is_empty() {
            self.query_typed(crate::notify::NOTIFY, &notifications.params())
                .await?;
        }
        Ok(())
    }

    /// The tenant this transaction works for.
    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// Runs one statement as the session user (the pool's login role) instead of the tenant
    /// role, then returns to the tenant role: for the few catalog writes that must commit or
    /// roll back together with the tenant's change, such as marking the tenant's mail outbox
    /// as pending. The role switch, the statement and the switch back are pipelined: one
    /// round trip (with the tenant switch too, when this is the first statement).
    ///
    /// The statement can reach only what the login role itself is granted — `search_path`
    /// still names the tenant schema, and the data plane's login role is `NOINHERIT`, so it
    /// has no right on tenant tables — so name catalog tables schema-qualified. If any part
    /// fails the transaction is aborted, so nothing can run afterwards under the wrong role.
    pub async fn query_as_session_user(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, TenantDbError> {
        let outcome = self.query_as_session_user_unclassified(sql, params).await;
        outcome.map_err(|error| self.classify(error))
    }

    async fn query_as_session_user_unclassified(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, TenantDbError> {
        let setup = self.pending_setup.take();
        self.in_transaction = true;
        let role = self.role.as_str();
        let restore_params: [(&(dyn ToSql + Sync), Type); 1] = [(&role, Type::TEXT)];
        let client = self.client()?;
        let outcome = within(self.deadline, async {
            tokio::join!(
                send_setup(client, setup.as_deref()),
                client.query_typed("SELECT set_config('role', 'none', true)", &[]),
                client.query_typed(sql, params),
                client.query_typed("SELECT set_config('role', $1, true)", &restore_params),
            )
        })
        .await;
        let (setup_result, reset, rows, restore) = self.answered(outcome)?;
        setup_result?;
        reset?;
        let rows = rows?;
        restore?;
        Ok(rows)
    }

    /// Runs the last statement and commits, pipelined (with the request's audit event, see
    /// [`commit`](Self::commit)).
    pub async fn query_then_commit(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, TenantDbError> {
        let outcome = self.query_then_commit_unclassified(sql, params).await;
        outcome.map_err(|error| self.classify(error))
    }

    async fn query_then_commit_unclassified(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, TenantDbError> {
        let setup = self.pending_setup.take();
        self.in_transaction = true;
        let intent = self.unwritten_audit();
        let client = self.client()?;
        let outcome = within(self.deadline, async {
            tokio::join!(
                send_setup(client, setup.as_deref()),
                client.query_typed(sql, params),
                write_audit(client, intent.as_deref()),
                client.batch_execute("COMMIT"),
            )
        })
        .await;
        let (setup_result, rows, audited, commit) = self.answered(outcome)?;
        // After COMMIT (which is a ROLLBACK when the transaction had failed) the connection is
        // outside any transaction, whatever the statements returned.
        commit?;
        self.in_transaction = false;
        setup_result?;
        let rows = rows?;
        audit_committed(intent.as_deref(), audited?);
        Ok(rows)
    }

    /// Commits. In an audited request's first transaction that changed something, the
    /// request's audit event goes into the audit outbox in the same commit (pipelined: no
    /// extra round trip); if that insert fails, nothing commits.
    pub async fn commit(mut self) -> Result<(), TenantDbError> {
        let outcome = self.commit_unclassified().await;
        outcome.map_err(|error| self.classify(error))
    }

    async fn commit_unclassified(&mut self) -> Result<(), TenantDbError> {
        if self.pending_setup.take().is_some() {
            return Ok(()); // nothing was sent: the connection is clean
        }
        let intent = self.unwritten_audit();
        let client = self.client()?;
        let outcome = within(self.deadline, async {
            tokio::join!(
                write_audit(client, intent.as_deref()),
                client.batch_execute("COMMIT"),
            )
        })
        .await;
        let (audited, commit) = self.answered(outcome)?;
        commit?;
        self.in_transaction = false;
        audit_committed(intent.as_deref(), audited?);
        Ok(())
    }

    fn unwritten_audit(&self) -> Option<Arc<AuditIntent>> {
        self.audit.clone().filter(|intent| !intent.written())
    }

    pub async fn rollback(mut self) -> Result<(), TenantDbError> {
        self.finish("ROLLBACK").await
    }

    async fn finish(&mut self, statement: &str) -> Result<(), TenantDbError> {
        let outcome = self.finish_unclassified(statement).await;
        outcome.map_err(|error| self.classify(error))
    }

    async fn finish_unclassified(&mut self, statement: &str) -> Result<(), TenantDbError> {
        if self.pending_setup.take().is_some() {
            return Ok(()); // nothing was sent: the connection is clean
        }
        let client = self.client()?;
        let outcome = within(self.deadline, client.batch_execute(statement)).await;
        self.answered(outcome)??;
        self.in_transaction = false;
        Ok(())
    }

    /// What [`within`] returned. Past the deadline Postgres is taken to be hung: the
    /// connection is closed rather than returned to the pool (it may be mid-statement), and the
    /// caller gets [`TenantDbError::Timeout`] — a 503 — instead of waiting as long as the hang.
    fn answered<T>(&mut self, outcome: Option<T>) -> Result<T, TenantDbError> {
        match outcome {
            Some(outcome) => Ok(outcome),
            None => {
                if let Some(client) = self.client.take() {
                    drop(Object::take(client));
                }
                self.in_transaction = false;
                Err(TenantDbError::Timeout(self.deadline))
            }
        }
    }
}

/// Sends the tenant switch when it has not gone out yet (with the transaction's first
/// statement). Its failure on a live connection is [`TenantDbError::Setup`].
async fn send_setup(client: &Object, setup: Option<&str>) -> Result<(), TenantDbError> {
    match setup {
        Some(setup) => client.batch_execute(setup).await.map_err(|error| {
            if error.is_closed() {
                TenantDbError::Query(error)
            } else {
                TenantDbError::Setup(error)
            }
        }),
        None => Ok(()),
    }
}

/// `work`'s outcome, or `None` when it took longer than `deadline`.
async fn within<T>(deadline: Duration, work: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(deadline, work).await.ok()
}

/// Sends the audit outbox write (see [`crate::events::store::OUTBOX_WRITE`]). `Ok(false)` when there is nothing
/// to write or the transaction changed nothing.
async fn write_audit(
    client: &Object,
    intent: Option<&AuditIntent>,
) -> Result<bool, tokio_postgres::Error> {
    let Some(intent) = intent else {
        return Ok(false);
    };
    let (event_id, tenant_id, event) = intent.write_params();
    let [id_type, tenant_type, event_type] = AuditIntent::WRITE_TYPES;
    let params: [(&(dyn ToSql + Sync), Type); 3] = [
        (&event_id, id_type),
        (&tenant_id, tenant_type),
        (&event, event_type),
    ];
    let rows = client
        .query_typed(crate::events::store::OUTBOX_WRITE, &params)
        .await?;
    let written = match rows.first() {
        Some(row) => row.try_get::<_, bool>("written")?,
        None => false,
    };
    Ok(written)
}

/// Marks the intent written once its insert has committed.
fn audit_committed(intent: Option<&AuditIntent>, inserted: bool) {
    if let (Some(intent), true) = (intent, inserted) {
        intent.mark_written();
    }
}

impl Drop for TenantTransaction {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if !self.in_transaction {
            // Back to the pool, clean; or closed, when it has served its uses.
            let uses = Object::metrics(&client).recycle_count + 1;
            if self.max_uses.is_some_and(|max| uses >= max) {
                drop(Object::take(client));
            }
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(client));
                    }
                });
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}
