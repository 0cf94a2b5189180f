//! Moving a tenant to another cluster while it is served (docs/scale-out.md, "Moving a
//! tenant").
//!
//! `control-plane tenant move <slug> --to <cluster>` (and `POST /v1/tenants/{slug}/move`):
//!
//! 1. **prepare**: the tenant's role and an empty schema at the tenant's template version on
//!    the target (the same migrations provisioning runs). The tenant is served from the source
//!    as usual.
//! 2. **copy**: every table from one source snapshot into the target in one transaction
//!    (`COPY … (FORMAT binary)`), while the tenant still takes writes on the source; then the
//!    **full comparison**, still taking writes: each table's rows on both sides, read in
//!    primary-key order as key and md5 of their text, streamed and merged; rows new or
//!    changed since the copy are copied again and rows deleted since removed. A copy cut short
//!    left nothing (one transaction); a copy run again over a complete one compares instead.
//! 3. **freeze**: the catalog marks the tenant `moving` (every node then refuses its writes
//!    with 503 `tenant_moving` and serves its reads), and the source is fenced: the tenant's
//!    role loses the right to change its tables, and a `SHARE` lock on each table waits for
//!    the transactions that changed them before to end. From then on the source cannot change,
//!    whatever a node that has not heard of the freeze yet tries.
//! 4. **catch up and verify**: the same merge, reading of each row only its key and whether a
//!    transaction from the full comparison's snapshot on wrote it (`store::Compare`): those
//!    rows and the keys on one side only are all that can differ. They are copied again or
//!    removed in one target transaction, and the sequences follow; a table without a primary
//!    key is copied whole again. Then each table's row count on both sides, and the hashes of
//!    the rows the catch-up touched, must agree; a difference cancels the move (the tenant
//!    stays on the source, unfrozen).
//! 5. **switch**: one catalog transaction places the tenant on the target, lifts the freeze
//!    and announces it (`NOTIFY`): nodes route to the target within milliseconds. The
//!    tenant's pending mail mark moves with it.
//! 6. **drop**: after a grace period (`--grace-seconds`, default 60: nodes that had not heard of
//!    the switch finish their reads), the source schema and role are dropped, by a later run
//!    of the same command or by the control plane's server.
//!
//! Every run holds the tenant's lock (as provisioning and deletion do), and every step is
//! idempotent, so a move killed anywhere is finished by running it again. Until the switch
//! the catalog names the source, which stays the only copy that takes writes (and takes none
//! while frozen); after it, the target. `--cancel` before the switch puts everything back.

pub mod routes;
pub mod service;
pub mod store;

use serde::Serialize;

/// Where a move stands, as the catalog records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MoveStep {
    /// The target is being prepared and copied; the tenant is served from the source as usual.
    Copying,
    /// The tenant's writes are refused; the target catches up with the fenced source.
    Frozen,
    /// The tenant is served from the target; the source waits for its grace period.
    Switched,
    /// The source is gone.
    Done,
    /// The tenant stayed on the source.
    Cancelled,
}

impl MoveStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Copying => "copying",
            Self::Frozen => "frozen",
            Self::Switched => "switched",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Copying,
            Self::Frozen,
            Self::Switched,
            Self::Done,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|step| step.as_str() == text)
    }

    /// Whether a move at this step is under way (a new move of the tenant must wait for it).
    pub fn under_way(self) -> bool {
        matches!(self, Self::Copying | Self::Frozen | Self::Switched)
    }
}

impl std::fmt::Display for MoveStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Points after which a test can stop a move, as a crash there would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The target's schema is ready.
    Prepared,
    /// The target holds the bulk copy; the tenant still takes writes.
    Copied,
    /// Writes are frozen and the source fenced.
    Fenced,
    /// The target has caught up with the source, verified.
    Verified,
    /// The catalog names the target.
    Switched,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Self::Prepared,
        Self::Copied,
        Self::Fenced,
        Self::Verified,
        Self::Switched,
    ];
}
