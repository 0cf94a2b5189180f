//! `cluster rebalance`: plans the moves that empty drained clusters and even out the tenant
//! counts of the others, and with `--apply` runs them one after another (`crate::moves`).
//!
//! The plan: every cluster that is not drained gets its share of the tenants (the total
//! divided evenly, the remainder going to those holding most now, so fewer tenants move);
//! drained clusters get none. Tenants leave the clusters above their share, smallest schema
//! first (a move's freeze grows with the tenant's size), and go to the clusters furthest below
//! theirs. Only active tenants move, and not those of a plan pinned to a cluster; others count
//! where they are. A cluster that does not
//! answer is left out of the plan altogether (neither source nor target), and said so.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use shared::tenant::{TenantSlug, TenantStatus};

use super::store::{self, ClusterRow};
use crate::context::ControlPlane;
use crate::error::ControlError;
use crate::moves::service::{MoveOptions, MoveReport};

/// How long planning waits for each cluster to say its tenants' sizes.
const SIZE_TIMEOUT: Duration = Duration::from_secs(5);

/// One move of the plan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlannedMove {
    pub tenant: String,
    pub from: String,
    pub to: String,
    /// The tenant's schema size on its cluster now.
    pub bytes: i64,
}

/// What rebalancing would do, or did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"moves": [{"tenant": "acme", "from": "primary", "to": "eu-2", "bytes": 1_204_224}], "before": {"primary": 3, "eu-2": 0}, "after": {"primary": 2, "eu-2": 1}, "unreachable": [], "applied": []}))]
pub struct Rebalance {
    pub moves: Vec<PlannedMove>,
    /// Tenants per cluster now (reachable clusters only).
    pub before: BTreeMap<String, i64>,
    /// Tenants per cluster once the moves are done.
    pub after: BTreeMap<String, i64>,
    /// Clusters that did not answer, left out of the plan.
    pub unreachable: Vec<String>,
    /// The moves run, in order, when applied (a failure stops the run: see the error).
    pub applied: Vec<MoveReport>,
}

/// A tenant as rebalancing weighs it.
struct Placed {
    slug: String,
    movable: bool,
    bytes: i64,
}

/// Plans the moves; with `apply`, runs them, stopping at the first that fails.
pub async fn rebalance(
    control: &ControlPlane,
    apply: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Rebalance, ControlError> {
    let mut plan = plan(control).await?;
    if !apply {
        return Ok(plan);
    }
    for planned in plan.moves.clone() {
        progress(&format!(
            "moving {} from {} to {}",
            planned.tenant, planned.from, planned.to
        ));
        let slug = TenantSlug::parse(&planned.tenant)?;
        let report = crate::moves::service::move_tenant(
            control,
            &slug,
            &planned.to,
            &MoveOptions::default(),
            progress,
        )
        .await?;
        plan.applied.push(report);
    }
    Ok(plan)
}

async fn plan(control: &ControlPlane) -> Result<Rebalance, ControlError> {
    let (clusters, tenants, pinned) = {
        let catalog = control.pool.get().await?;
        let clusters = store::list(&catalog).await?;
        let tenants = store::live_tenants(&catalog).await?;
        let pinned = store::pinned_plans(&catalog).await?;
        (clusters, tenants, pinned)
    };
    let mut placed: BTreeMap<String, Vec<Placed>> = BTreeMap::new();
    let mut unreachable = Vec::new();
    let mut open = Vec::new();
    for cluster in &clusters {
        let on_it: Vec<_> = tenants
            .iter()
            .filter(|tenant| tenant.cluster == cluster.name)
            .collect();
        let schemas: Vec<String> = on_it
            .iter()
            .map(|tenant| tenant.schema.to_string())
            .collect();
        let Some(sizes) = schema_sizes(control, cluster, &schemas).await else {
            unreachable.push(cluster.name.clone());
            continue;
        };
        if !cluster.drained {
            open.push(cluster.name.clone());
        }
        let mut list: Vec<Placed> = on_it
            .iter()
            .map(|tenant| Placed {
                slug: tenant.slug.to_string(),
                // A tenant of a pinned plan stays on its plan's cluster.
                movable: tenant.status == TenantStatus::Active
                    && !pinned.contains_key(&tenant.plan),
                bytes: sizes.get(tenant.schema.as_str()).copied().unwrap_or(0),
            })
            .collect();
        // The cheapest moves first.
        list.sort_by(|a, b| (a.bytes, &a.slug).cmp(&(b.bytes, &b.slug)));
        placed.insert(cluster.name.clone(), list);
    }
    let before: BTreeMap<String, i64> = placed
        .iter()
        .map(|(name, list)| (name.clone(), list.len() as i64))
        .collect();
    let shares = shares(&before, &open);

    // Surplus: what each cluster must give, smallest first; deficits: what each must take.
    let mut leaving: Vec<(String, Placed)> = Vec::new();
    for (name, list) in placed {
        let share = shares.get(&name).copied().unwrap_or(0);
        let surplus = (list.len() as i64 - share).max(0) as usize;
        leaving.extend(
            list.into_iter()
                .filter(|tenant| tenant.movable)
                .take(surplus)
                .map(|tenant| (name.clone(), tenant)),
        );
    }
    leaving.sort_by(|a, b| (a.1.bytes, &a.1.slug).cmp(&(b.1.bytes, &b.1.slug)));
    let mut after = before.clone();
    let mut moves = Vec::new();
    for (from, tenant) in leaving {
        // The cluster furthest below its share takes it (ties: by name).
        let target = open
            .iter()
            .filter(|name| **name != from)
            .map(|name| (shares[name] - after[name], name))
            .filter(|(missing, _)| *missing > 0)
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
            .map(|(_, name)| name.clone());
        let Some(to) = target else {
            continue;
        };
        *after.entry(from.clone()).or_default() -= 1;
        *after.entry(to.clone()).or_default() += 1;
        moves.push(PlannedMove {
            tenant: tenant.slug,
            from,
            to,
            bytes: tenant.bytes,
        });
    }
    Ok(Rebalance {
        moves,
        before,
        after,
        unreachable,
        applied: Vec::new(),
    })
}

/// Each open cluster's share of all the tenants: the total split evenly, the remainder going
/// to those holding most now (so fewer tenants move). Drained clusters' share is 0.
fn shares(counts: &BTreeMap<String, i64>, open: &[String]) -> BTreeMap<String, i64> {
    let total: i64 = counts.values().sum();
    let Some(each) = total.checked_div(open.len() as i64) else {
        return BTreeMap::new();
    };
    let mut remainder = total - each * open.len() as i64;
    let mut by_count: Vec<&String> = open.iter().collect();
    by_count.sort_by(|a, b| counts[*b].cmp(&counts[*a]).then_with(|| a.cmp(b)));
    by_count
        .into_iter()
        .map(|name| {
            let extra = i64::from(remainder > 0);
            remainder -= extra;
            (name.clone(), each + extra)
        })
        .collect()
}

/// The size of each of `schemas` on `cluster`, or `None` when it does not answer in time.
async fn schema_sizes(
    control: &ControlPlane,
    cluster: &ClusterRow,
    schemas: &[String],
) -> Option<BTreeMap<String, i64>> {
    let query = async {
        let pool = control
            .clusters
            .pool(control, &cluster.name, cluster.url.as_ref())?;
        store::schema_sizes(&pool.get().await?, schemas).await
    };
    tokio::time::timeout(SIZE_TIMEOUT, query).await.ok()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs
            .iter()
            .map(|(name, count)| ((*name).to_owned(), *count))
            .collect()
    }

    #[test]
    fn shares_split_evenly_with_the_remainder_where_tenants_are() {
        let open = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let shares = shares(&counts(&[("a", 7), ("b", 1), ("c", 0)]), &open);
        assert_eq!(shares, counts(&[("a", 3), ("b", 3), ("c", 2)]));
        // A drained cluster's tenants count towards the others' shares.
        let shares = super::shares(&counts(&[("a", 2), ("d", 4)]), &open[..2]);
        assert_eq!(shares, counts(&[("a", 3), ("b", 3)]));
        assert!(super::shares(&counts(&[("a", 2)]), &[]).is_empty());
    }
}
