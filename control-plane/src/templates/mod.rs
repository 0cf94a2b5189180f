//! Rolling the tenant template's new versions over every tenant.
//!
//! Tenants behind the template's newest version are migrated with bounded concurrency on each
//! Postgres cluster (each cluster's tenants in a stream of their own, the clusters side by
//! side), and the report counts each cluster's tenants.
//! A failing tenant is recorded (`control.tenant_template_status`) and reported, and the roll
//! goes on; running again resumes, since only tenants still behind are picked. With a canary
//! group, the first tenants are migrated alone and any failure among them halts the roll.
//! Tenants still provisioning get the newest version when their provisioning resumes.

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use shared::tenant::Tenant;

use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::provisioning::apply_template;

mod store;

#[derive(Debug, Clone, Copy)]
pub struct RolloutOptions {
    pub concurrency: usize,
    /// Migrate this many tenants first and stop if any of them fails.
    pub canary: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantOutcome {
    pub slug: String,
    /// The cluster the tenant is placed on.
    pub cluster: String,
    pub from_version: i32,
    pub to_version: Option<i32>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub template: String,
    pub target_version: i32,
    pub behind: usize,
    pub migrated: Vec<TenantOutcome>,
    pub failed: Vec<TenantOutcome>,
    pub halted_by_canary: bool,
    /// Per cluster: tenants behind, migrated and failed.
    pub clusters: BTreeMap<String, ClusterProgress>,
}

/// One cluster's share of a roll.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterProgress {
    pub behind: usize,
    pub migrated: usize,
    pub failed: usize,
}

/// What a roll reports while it runs, for progress output.
pub enum Progress<'a> {
    Started {
        behind: usize,
        target_version: i32,
    },
    Tenant {
        done: usize,
        behind: usize,
        outcome: &'a TenantOutcome,
    },
}

pub async fn migrate_all(
    control: &ControlPlane,
    options: RolloutOptions,
    mut on_progress: impl FnMut(Progress<'_>),
) -> Result<RolloutReport, ControlError> {
    let target_version = control.template.latest_version();
    let tenants = tenants_behind(control, target_version).await?;
    let behind = tenants.len();
    on_progress(Progress::Started {
        behind,
        target_version,
    });

    let mut clusters: BTreeMap<String, ClusterProgress> = BTreeMap::new();
    for tenant in &tenants {
        clusters.entry(tenant.cluster.clone()).or_default().behind += 1;
    }
    let mut report = RolloutReport {
        template: control.template.name.clone(),
        target_version,
        behind,
        migrated: Vec::new(),
        failed: Vec::new(),
        halted_by_canary: false,
        clusters,
    };
    let canary_size = options.canary.unwrap_or(0).min(behind);
    let (canary, rest) = tenants.split_at(canary_size);
    let concurrency = options.concurrency.max(1);
    let mut done = 0;

    for (group, is_canary) in [(canary, true), (rest, false)] {
        // `concurrency` at a time on each cluster: one cluster's slowness or size does not
        // hold back the others, and none gets more than its share of connections.
        let mut by_cluster: BTreeMap<&str, Vec<&Tenant>> = BTreeMap::new();
        for tenant in group {
            by_cluster.entry(&tenant.cluster).or_default().push(tenant);
        }
        let mut outcomes = stream::select_all(by_cluster.into_values().map(|tenants| {
            stream::iter(tenants)
                .map(|tenant| migrate_one(control, tenant))
                .buffer_unordered(concurrency)
                .boxed()
        }));
        while let Some(outcome) = outcomes.next().await {
            done += 1;
            on_progress(Progress::Tenant {
                done,
                behind,
                outcome: &outcome,
            });
            let counts = report.clusters.entry(outcome.cluster.clone()).or_default();
            if outcome.error.is_some() {
                counts.failed += 1;
                report.failed.push(outcome);
            } else {
                counts.migrated += 1;
                report.migrated.push(outcome);
            }
        }
        if is_canary && !report.failed.is_empty() {
            report.halted_by_canary = true;
            break;
        }
    }
    Ok(report)
}

async fn tenants_behind(control: &ControlPlane, target: i32) -> Result<Vec<Tenant>, ControlError> {
    let client = control.pool.get().await?;
    store::tenants_behind(&client, &control.template.name, target).await
}

async fn migrate_one(control: &ControlPlane, tenant: &Tenant) -> TenantOutcome {
    let result = async {
        let version = apply_template(control, tenant).await?;
        // One catalog connection for both records: taking a second while holding one made
        // the roll-outs of a full pool wait on each other (12 of 10,000 tenants failed on a
        // pool timeout, docs/benchmarks.md).
        let client = control.pool.get().await?;
        store::set_template_version(&client, tenant.id, version).await?;
        store::record_status(&client, tenant.id, version, None).await?;
        Ok::<_, ControlError>(version)
    }
    .await;
    match result {
        Ok(version) => TenantOutcome {
            slug: tenant.slug.to_string(),
            cluster: tenant.cluster.clone(),
            from_version: tenant.template_version,
            to_version: Some(version),
            error: None,
        },
        Err(error) => {
            let message = error.to_string();
            tracing::warn!(tenant = %tenant.slug, error = %message, "template migration failed");
            if let Err(record_error) = record_status(
                control,
                tenant,
                control.template.latest_version(),
                Some(&message),
            )
            .await
            {
                tracing::error!(tenant = %tenant.slug, error = %record_error, "cannot record failure");
            }
            TenantOutcome {
                slug: tenant.slug.to_string(),
                cluster: tenant.cluster.clone(),
                from_version: tenant.template_version,
                to_version: None,
                error: Some(message),
            }
        }
    }
}

async fn record_status(
    control: &ControlPlane,
    tenant: &Tenant,
    target_version: i32,
    error: Option<&str>,
) -> Result<(), ControlError> {
    let client = control.pool.get().await?;
    store::record_status(&client, tenant.id, target_version, error).await
}

/// Where the template stands over the fleet, from the catalog (every control-plane process
/// sees the same): tenants by version, and the failures of the newest version's roll-outs.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub template: String,
    pub latest_version: i32,
    /// (version, served tenants at it), lowest first.
    pub versions: Vec<(i32, i64)>,
    pub behind: i64,
    /// (slug, error) of tenants whose migration to the newest version failed.
    pub failures: Vec<(String, String)>,
}

pub async fn overview(control: &ControlPlane) -> Result<Overview, ControlError> {
    let client = control.pool.get().await?;
    let latest_version = control.template.latest_version();
    let versions = store::version_counts(&client, &control.template.name).await?;
    let behind = versions
        .iter()
        .filter(|(version, _)| *version < latest_version)
        .map(|(_, tenants)| tenants)
        .sum();
    let failures = store::failures(&client, latest_version, 50).await?;
    Ok(Overview {
        template: control.template.name.clone(),
        latest_version,
        versions,
        behind,
        failures,
    })
}

/// The roll-out this process runs in the background (the operator console starts one), as
/// it goes.
#[derive(Debug, Clone, Serialize)]
pub struct Progressing {
    pub target_version: i32,
    pub behind: usize,
    pub done: usize,
    pub failed: usize,
    pub finished: bool,
    pub halted_by_canary: bool,
}

/// This process's background roll-out, at most one at a time.
#[derive(Debug, Default)]
pub struct Rollouts {
    current: std::sync::Mutex<Option<Progressing>>,
}

impl Rollouts {
    /// The running or last finished roll-out of this process.
    pub fn current(&self) -> Option<Progressing> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Progressing>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Starts rolling the newest version over every tenant behind it, in the background; its
/// progress is [`Rollouts::current`]. Refused while one runs in this process.
pub fn start_in_background(
    control: &ControlPlane,
    options: RolloutOptions,
) -> Result<(), ControlError> {
    {
        let mut current = control.rollouts.lock();
        if current.as_ref().is_some_and(|running| !running.finished) {
            return Err(ControlError::RolloutRunning);
        }
        *current = Some(Progressing {
            target_version: control.template.latest_version(),
            behind: 0,
            done: 0,
            failed: 0,
            finished: false,
            halted_by_canary: false,
        });
    }
    let control = control.clone();
    tokio::spawn(async move {
        let rollouts = control.rollouts.clone();
        let report = migrate_all(&control, options, |progress| {
            let mut current = rollouts.lock();
            let Some(state) = current.as_mut() else {
                return;
            };
            match progress {
                Progress::Started { behind, .. } => state.behind = behind,
                Progress::Tenant { done, outcome, .. } => {
                    state.done = done;
                    if outcome.error.is_some() {
                        state.failed += 1;
                    }
                }
            }
        })
        .await;
        let mut current = rollouts.lock();
        if let Some(state) = current.as_mut() {
            state.finished = true;
            match report {
                Ok(report) => state.halted_by_canary = report.halted_by_canary,
                Err(error) => {
                    tracing::error!(%error, "template roll-out failed to run");
                    state.failed += 1;
                }
            }
        }
    });
    Ok(())
}
