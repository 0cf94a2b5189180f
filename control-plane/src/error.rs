//! The control plane's domain errors, and their one mapping to HTTP answers.

use actix_web::http::StatusCode;
use shared::catalog::CatalogError;
use shared::envelope::EnvelopeError;
use shared::error::ApiError;
use shared::template::TemplateError;
use shared::tenant::{SlugError, TenantStatus};

use crate::provisioning::Step;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("invalid slug: {0}")]
    InvalidSlug(#[from] SlugError),
    #[error("invalid {field}: {message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },
    #[error("unknown plan '{0}'")]
    UnknownPlan(String),
    #[error("a tenant with slug '{0}' already exists")]
    SlugTaken(String),
    #[error("no tenant with slug '{0}'")]
    TenantNotFound(String),
    #[error("tenant is {from}; it cannot become {to}")]
    InvalidTransition {
        from: TenantStatus,
        to: TenantStatus,
    },
    #[error("tenant is {0}; only a provisioning or failed tenant can be provisioned (an active one needs nothing)")]
    NotProvisioning(TenantStatus),
    #[error("another provisioning or deletion of this tenant is running")]
    Busy,
    #[error("provisioning step {step} failed: {message}")]
    ProvisioningFailed { step: Step, message: String },
    #[error("provisioning stopped after step {0} as asked")]
    Interrupted(Step),
    #[error("an operator token named '{0}' already exists")]
    TokenNameTaken(String),
    #[error("domain '{0}' is already registered")]
    DomainTaken(String),
    #[error("domain '{0}' is not registered to this tenant")]
    DomainNotFound(String),
    #[error("no cluster named '{0}'")]
    ClusterNotFound(String),
    #[error("unknown cluster '{0}'")]
    UnknownCluster(String),
    #[error("a cluster named '{0}' is registered already")]
    ClusterExists(String),
    #[error("cluster '{name}' cannot be reached or prepared: {reason}")]
    ClusterUnreachable { name: String, reason: String },
    #[error("cluster '{0}' holds tenants, has a plan pinned to it or a move under way, is the default or is the catalog's own; it stays")]
    ClusterInUse(String),
    #[error("plan '{plan}' is not pinned to cluster '{cluster}'")]
    PlanNotPinned { plan: String, cluster: String },
    #[error("cluster '{0}' is drained; undrain it first")]
    ClusterDrained(String),
    #[error("cluster '{0}' is the default; make another cluster default first")]
    ClusterIsDefault(String),
    #[error("tenant is {0}; only an active tenant can be moved")]
    NotMovable(TenantStatus),
    #[error("the tenant is on cluster '{0}' already")]
    SameCluster(String),
    #[error("a move of this tenant to cluster '{0}' is under way: run it again with that target to finish it, or cancel it")]
    MoveInProgress(String),
    #[error("a template roll-out is running in this control plane; wait for it to finish")]
    RolloutRunning,
    #[error("tenant '{0}' has no move before its switch")]
    NoMove(String),
    #[error("the move stopped after {0:?} as asked")]
    MoveInterrupted(crate::moves::Stage),
    #[error("the copy of table '{0}' differs from the source; the move was cancelled")]
    MoveVerificationFailed(String),
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("no database connection available: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Sso(#[from] shared::sso::SsoConfigError),
}

/// A cluster's URL reference that leads nowhere is the operator's input to fix.
impl From<shared::cluster::UrlError> for ControlError {
    fn from(error: shared::cluster::UrlError) -> Self {
        Self::InvalidInput {
            field: "url",
            message: error.to_string(),
        }
    }
}

impl From<shared::tenant_context::TenantDbError> for ControlError {
    fn from(error: shared::tenant_context::TenantDbError) -> Self {
        match error {
            shared::tenant_context::TenantDbError::Pool(error) => Self::Pool(error),
            shared::tenant_context::TenantDbError::Query(error)
            | shared::tenant_context::TenantDbError::Setup(error) => Self::Db(error),
            shared::tenant_context::TenantDbError::Closed
            | shared::tenant_context::TenantDbError::Timeout(_) => Self::ProvisioningFailed {
                step: Step::SeedRoles,
                message: error.to_string(),
            },
            shared::tenant_context::TenantDbError::ClusterUnavailable(error) => {
                Self::ClusterUnreachable {
                    name: error.cluster,
                    reason: error.reason,
                }
            }
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        let message = error.to_string();
        match error {
            ControlError::InvalidSlug(_) => ApiError::bad_request("invalid_slug", message),
            ControlError::Sso(error) => error.into(),
            ControlError::InvalidInput { .. } => ApiError::bad_request("invalid_input", message),
            ControlError::UnknownPlan(_) => ApiError::bad_request("unknown_plan", message),
            ControlError::SlugTaken(_) => ApiError::conflict("slug_taken", message),
            ControlError::TenantNotFound(_) => ApiError::not_found("tenant_not_found", message),
            ControlError::InvalidTransition { .. } => {
                ApiError::conflict("invalid_transition", message)
            }
            ControlError::NotProvisioning(_) => ApiError::conflict("not_provisioning", message),
            ControlError::Busy => ApiError::conflict("tenant_busy", message),
            ControlError::TokenNameTaken(_) => ApiError::conflict("token_name_taken", message),
            ControlError::DomainTaken(_) => ApiError::conflict("domain_taken", message),
            ControlError::DomainNotFound(_) => ApiError::not_found("domain_not_found", message),
            ControlError::ClusterNotFound(_) => ApiError::not_found("cluster_not_found", message),
            ControlError::ClusterExists(_) => ApiError::conflict("cluster_exists", message),
            ControlError::UnknownCluster(_) => ApiError::bad_request("unknown_cluster", message),
            ControlError::ClusterUnreachable { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "cluster_unreachable",
                message,
            ),
            ControlError::ClusterInUse(_) => ApiError::conflict("cluster_in_use", message),
            ControlError::PlanNotPinned { .. } => ApiError::not_found("plan_not_pinned", message),
            ControlError::ClusterDrained(_) => ApiError::conflict("cluster_drained", message),
            ControlError::ClusterIsDefault(_) => ApiError::conflict("cluster_is_default", message),
            ControlError::NotMovable(_) => ApiError::conflict("tenant_not_movable", message),
            ControlError::SameCluster(_) => ApiError::conflict("same_cluster", message),
            ControlError::MoveInProgress(_) => ApiError::conflict("move_in_progress", message),
            ControlError::RolloutRunning => ApiError::conflict("rollout_running", message),
            ControlError::NoMove(_) => ApiError::conflict("no_move", message),
            ControlError::MoveInterrupted(_) | ControlError::MoveVerificationFailed(_) => {
                tracing::error!(error = %message, "a move did not finish");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "move_failed",
                    "the move did not finish; run it again to finish it, or cancel it",
                )
            }
            ControlError::ProvisioningFailed { .. } | ControlError::Interrupted(_) => {
                tracing::error!(error = %message, "provisioning did not finish");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "provisioning_failed",
                    "provisioning did not finish; the tenant is marked failed and can be retried",
                )
            }
            // No catalog connection in time, or Postgres unreachable: the shared 503, as on
            // the data plane.
            ControlError::Pool(error) => error.into(),
            ControlError::Db(_)
            | ControlError::Catalog(_)
            | ControlError::Template(_)
            | ControlError::Envelope(_) => ApiError::internal(&error),
        }
    }
}
