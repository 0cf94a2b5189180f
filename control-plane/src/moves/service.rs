//! The rules of a move: who may be moved where, the steps in order, resuming and cancelling
//! (see the module's documentation).

use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use serde::Serialize;
use serde_json::json;
use shared::tenant::{Tenant, TenantSlug, TenantStatus};

use super::store::{self, Compare::EveryRow, Compare::WrittenSince, MoveRow, Table};
use super::{MoveStep, Stage};
use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::provisioning::store::TenantLock;

/// How long a move waits for the target to answer before calling it unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the source is kept after the switch unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// How a move runs.
#[derive(Debug, Clone)]
pub struct MoveOptions {
    /// How long the source is kept after the switch.
    pub grace: Duration,
    /// Stop after this point, as a crash there would (tests).
    pub interrupt_after: Option<Stage>,
}

impl Default for MoveOptions {
    fn default() -> Self {
        Self {
            grace: DEFAULT_GRACE,
            interrupt_after: None,
        }
    }
}

/// What a move did, as the CLI and the API report it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"tenant": "acme", "source": "primary", "target": "eu-2", "step": "switched", "tables": 14, "rows": 100_412, "caught_up": 37, "freeze_ms": 310, "total_ms": 2210, "drop_after": "2026-12-06T14:31:00Z"}))]
pub struct MoveReport {
    pub tenant: String,
    pub source: String,
    pub target: String,
    /// Where the move stands now.
    pub step: MoveStep,
    /// Tables copied by this run (0 when it had nothing to copy).
    pub tables: usize,
    /// Rows this run wrote to the target before the freeze (the bulk copy, and a first
    /// catch-up with what was written during it).
    pub rows: u64,
    /// Rows written since, copied again in the freeze.
    pub caught_up: u64,
    /// How long the tenant's writes were refused, when this run lifted the freeze.
    pub freeze_ms: Option<u64>,
    /// How long this run took.
    pub total_ms: u64,
    /// When the source schema and role may be dropped (after the switch, until they are).
    #[serde(with = "time::serde::rfc3339::option")]
    pub drop_after: Option<time::OffsetDateTime>,
}

/// Moves tenant `slug` to cluster `to`, or finishes a move of it that was cut short. Reports
/// each stage through `progress`.
pub async fn move_tenant(
    control: &ControlPlane,
    slug: &TenantSlug,
    to: &str,
    options: &MoveOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<MoveReport, ControlError> {
    let tenant = crate::tenants::service::get(control, slug).await?;
    let lock = TenantLock::acquire(&control.pool, tenant.id).await?;
    let outcome = Move {
        control,
        tenant: &tenant,
        options,
        progress,
        started: Instant::now(),
    }
    .run(to)
    .await;
    lock.release().await;
    outcome
}

/// Cancels a move of tenant `slug` that has not switched: the tenant stays on its cluster,
/// its writes are accepted again and the target's copy is dropped.
pub async fn cancel(control: &ControlPlane, slug: &TenantSlug) -> Result<MoveReport, ControlError> {
    let tenant = crate::tenants::service::get(control, slug).await?;
    let lock = TenantLock::acquire(&control.pool, tenant.id).await?;
    let outcome = async {
        let started = Instant::now();
        let row = {
            let catalog = control.pool.get().await?;
            store::get(&catalog, tenant.id).await?
        };
        let Some(row) = row.filter(|row| matches!(row.step, MoveStep::Copying | MoveStep::Frozen))
        else {
            return Err(ControlError::NoMove(tenant.slug.to_string()));
        };
        cancel_move(control, &tenant, &row).await?;
        Ok(MoveReport {
            tenant: tenant.slug.to_string(),
            source: row.source,
            target: row.target,
            step: MoveStep::Cancelled,
            tables: 0,
            rows: 0,
            caught_up: 0,
            freeze_ms: None,
            total_ms: millis(started.elapsed()),
            drop_after: None,
        })
    }
    .await;
    lock.release().await;
    outcome
}

/// Drops the sources of switched moves whose grace has passed (the control plane's server runs
/// this periodically). Returns how many it finished.
pub async fn drop_due_sources(control: &ControlPlane) -> Result<usize, ControlError> {
    let due = store::due_cleanups(&control.pool.get().await?).await?;
    let mut finished = 0;
    for slug in due {
        let Ok(slug) = TenantSlug::parse(&slug) else {
            continue;
        };
        let tenant = crate::tenants::service::get(control, &slug).await?;
        let Ok(lock) = TenantLock::acquire(&control.pool, tenant.id).await else {
            continue; // a run of its own is finishing it
        };
        let outcome = async {
            let row = store::get(&control.pool.get().await?, tenant.id).await?;
            match row {
                Some(row) if row.step == MoveStep::Switched => {
                    drop_source(control, &tenant, &row).await.map(|()| 1)
                }
                _ => Ok(0),
            }
        }
        .await;
        lock.release().await;
        finished += outcome?;
    }
    Ok(finished)
}

/// Starts the periodic drop of moved tenants' sources.
pub fn spawn_source_drops(control: ControlPlane) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(30));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = drop_due_sources(&control).await {
                tracing::warn!(%error, "cannot drop the sources of moved tenants yet");
            }
        }
    });
}

struct Move<'a> {
    control: &'a ControlPlane,
    tenant: &'a Tenant,
    options: &'a MoveOptions,
    progress: &'a (dyn Fn(&str) + Sync),
    started: Instant,
}

impl Move<'_> {
    async fn run(&self, to: &str) -> Result<MoveReport, ControlError> {
        let tenant = self.tenant;
        let existing = {
            let catalog = self.control.pool.get().await?;
            store::get(&catalog, tenant.id).await?
        };
        let row = match existing {
            Some(row) if row.step.under_way() => {
                if row.target != to {
                    return Err(ControlError::MoveInProgress(row.target));
                }
                (self.progress)(&format!("resuming the move at step {}", row.step));
                row
            }
            _ => self.start(to).await?,
        };
        let mut report = MoveReport {
            tenant: tenant.slug.to_string(),
            source: row.source.clone(),
            target: row.target.clone(),
            step: row.step,
            tables: 0,
            rows: 0,
            caught_up: 0,
            freeze_ms: None,
            total_ms: 0,
            drop_after: row.drop_after,
        };
        if matches!(row.step, MoveStep::Copying | MoveStep::Frozen) {
            self.copy_and_switch(&row, &mut report).await?;
        }
        let row = store::get(&self.control.pool.get().await?, tenant.id)
            .await?
            .ok_or_else(|| ControlError::NoMove(tenant.slug.to_string()))?;
        report.drop_after = row.drop_after;
        report.step = row.step;
        if row.step == MoveStep::Switched && row.drop_due {
            drop_source(self.control, tenant, &row).await?;
            (self.progress)(&format!(
                "dropped the source schema and role on {}",
                row.source
            ));
            report.step = MoveStep::Done;
        } else if let (MoveStep::Switched, Some(at)) = (row.step, row.drop_after) {
            (self.progress)(&format!(
                "the source on {} is kept until {at}; run the move again then, or let the \
                 control plane's server drop it",
                row.source
            ));
        }
        report.total_ms = millis(self.started.elapsed());
        Ok(report)
    }

    /// Checks the move may start and records it.
    async fn start(&self, to: &str) -> Result<MoveRow, ControlError> {
        let tenant = self.tenant;
        if tenant.status != TenantStatus::Active {
            return Err(ControlError::NotMovable(tenant.status));
        }
        if tenant.cluster == to {
            return Err(ControlError::SameCluster(to.to_owned()));
        }
        // Registered and not drained, as for a new tenant.
        crate::clusters::service::placement(self.control, Some(to), None).await?;
        let target = cluster_pool(self.control, to).await?;
        let reached = tokio::time::timeout(REACH_TIMEOUT, target.get()).await;
        if let Err(reason) = reached
            .map_err(|_| format!("no answer within {REACH_TIMEOUT:?}"))
            .and_then(|client| client.map(drop).map_err(|error| error.to_string()))
        {
            return Err(ControlError::ClusterUnreachable {
                name: to.to_owned(),
                reason,
            });
        }
        let catalog = self.control.pool.get().await?;
        store::start(&catalog, tenant.id, &tenant.cluster, to).await?;
        (self.progress)(&format!(
            "moving {} from {} to {}",
            tenant.slug, tenant.cluster, to
        ));
        store::get(&catalog, tenant.id)
            .await?
            .ok_or_else(|| ControlError::NoMove(tenant.slug.to_string()))
    }

    fn interrupt(&self, stage: Stage) -> Result<(), ControlError> {
        if self.options.interrupt_after == Some(stage) {
            return Err(ControlError::MoveInterrupted(stage));
        }
        Ok(())
    }

    /// Steps 1 to 5: prepare, copy, freeze and fence, catch up and verify, switch.
    async fn copy_and_switch(
        &self,
        row: &MoveRow,
        report: &mut MoveReport,
    ) -> Result<(), ControlError> {
        let tenant = self.tenant;
        let source_pool = cluster_pool(self.control, &row.source).await?;
        let target_pool = cluster_pool(self.control, &row.target).await?;
        let mut source = source_pool.get().await?;
        let mut target = target_pool.get().await?;

        // 1. The target's empty schema, at the tenant's version.
        let data_plane = self.control.config.role_prefix.data_plane_role();
        crate::provisioning::store::create_role_and_schema(&target, tenant, &data_plane, None)
            .await?;
        self.control
            .template
            .apply_up_to(
                &target,
                &tenant.schema,
                &tenant.role,
                tenant.template_version,
            )
            .await?;
        let tables = store::tables(&source, &tenant.schema).await?;
        (self.progress)(&format!(
            "prepared the schema on {} ({} tables)",
            row.target,
            tables.len()
        ));
        self.interrupt(Stage::Prepared)?;

        // 2. The bulk copy, while the tenant takes writes; then the full comparison, which
        // catches up with what was written during the copy, still taking writes.
        let schema = &tenant.schema;
        let copied = store::sync(&mut source, &mut target, schema, &tables, EveryRow).await?;
        report.tables = tables.len();
        (self.progress)(&format!(
            "copied {} rows in {} tables; the tenant still takes writes",
            copied.rows,
            tables.len()
        ));
        let compared = store::sync(&mut source, &mut target, schema, &tables, EveryRow).await?;
        report.rows = copied.rows + compared.rows;
        (self.progress)(&format!(
            "compared every row: {} rows written during the copy caught up; the tenant still \
             takes writes",
            compared.rows
        ));
        self.interrupt(Stage::Copied)?;

        // 3. Freeze and fence.
        store::freeze(&mut self.control.pool.get().await?, tenant).await?;
        let frozen = Instant::now();
        store::fence(&mut source, &tenant.schema, &tenant.role, &tables).await?;
        (self.progress)("froze the tenant's writes and fenced the source");
        self.interrupt(Stage::Fenced)?;

        // 4. Catch up with what was written since the full comparison (read by `xmin`: only
        // those rows need reading in full), verify.
        let since = WrittenSince(compared.xmin);
        let caught_up = store::sync(&mut source, &mut target, schema, &tables, since).await?;
        report.caught_up = caught_up.rows;
        (self.progress)(&format!(
            "caught up: {} rows written since the full comparison",
            caught_up.rows
        ));
        if let Err(error) = self
            .verify(&mut source, &mut target, &tables, &caught_up.touched)
            .await
        {
            tracing::error!(tenant = %tenant.slug, %error, "move verification failed; cancelling");
            cancel_move(self.control, tenant, row).await?;
            return Err(error);
        }
        (self.progress)("verified: every table has the same rows on both clusters");
        self.interrupt(Stage::Verified)?;

        // 5. Switch, and the mail mark follows.
        store::switch(
            &mut self.control.pool.get().await?,
            tenant,
            &row.target,
            self.options.grace.as_secs_f64(),
        )
        .await?;
        let freeze = frozen.elapsed();
        report.freeze_ms = Some(millis(freeze));
        store::move_mail_mark(&source, &target, tenant.id, &tenant.schema).await?;
        (self.progress)(&format!(
            "switched: {} is served from {} (writes were refused for {} ms)",
            tenant.slug,
            row.target,
            millis(freeze)
        ));
        crate::audit::lifecycle(
            self.control,
            tenant,
            "tenant.move",
            json!({
                "source": row.source,
                "target": row.target,
                "tables": report.tables,
                "rows": report.rows,
                "caught_up": report.caught_up,
                "freeze_ms": report.freeze_ms,
            }),
        )
        .await;
        self.interrupt(Stage::Switched)?;
        Ok(())
    }

    async fn verify(
        &self,
        source: &mut deadpool_postgres::Object,
        target: &mut deadpool_postgres::Object,
        tables: &[Table],
        touched: &[Option<Vec<String>>],
    ) -> Result<(), ControlError> {
        // Both sides at once: the freeze lasts as long as the slower.
        let (there, here) = tokio::join!(
            store::fingerprints(source, tables, touched),
            store::fingerprints(target, tables, touched)
        );
        let (there, here) = (there?, here?);
        match there.iter().zip(&here).find(|(a, b)| a != b) {
            None if there.len() == here.len() => Ok(()),
            differing => Err(ControlError::MoveVerificationFailed(
                differing.map_or_else(String::new, |(a, _)| a.0.clone()),
            )),
        }
    }
}

/// Puts a move that has not switched back: the source takes writes again, the target's copy
/// is dropped, the move is recorded as cancelled.
async fn cancel_move(
    control: &ControlPlane,
    tenant: &Tenant,
    row: &MoveRow,
) -> Result<(), ControlError> {
    let source = cluster_pool(control, &row.source).await?.get().await?;
    store::unfence(&source, &tenant.schema, &tenant.role).await?;
    let target = cluster_pool(control, &row.target).await?.get().await?;
    crate::tenants::store::drop_schema_and_role(&target, &tenant.schema, &tenant.role).await?;
    store::finish(&mut control.pool.get().await?, tenant, MoveStep::Cancelled).await?;
    crate::audit::lifecycle(
        control,
        tenant,
        "tenant.move.cancel",
        json!({"source": row.source, "target": row.target}),
    )
    .await;
    Ok(())
}

/// Step 6: drops the source's schema and role, and records the move as done.
async fn drop_source(
    control: &ControlPlane,
    tenant: &Tenant,
    row: &MoveRow,
) -> Result<(), ControlError> {
    let source = cluster_pool(control, &row.source).await?.get().await?;
    crate::tenants::store::drop_schema_and_role(&source, &tenant.schema, &tenant.role).await?;
    store::finish(&mut control.pool.get().await?, tenant, MoveStep::Done).await
}

/// The control plane's pool to cluster `name` (the catalog connection that asks where it is
/// is given back first).
async fn cluster_pool(control: &ControlPlane, name: &str) -> Result<Pool, ControlError> {
    let catalog = control.pool.get().await?;
    Ok(control.clusters.named(control, &catalog, name).await?.pool)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
