//! Roles admin: tenant admins list the tenant's roles and define custom ones
//! (`/v1/admin/roles`). Assigning roles to users lives with the users admin
//! (`PUT /v1/admin/users/{id}/roles`).
//!
//! Invariants:
//! - Built-in roles (seeded by the template) are read-only.
//! - A role may include others; inclusion is transitive and never circular: role changes run
//!   one at a time per tenant (a table lock) and a change that would close a cycle is refused.
//! - Nobody defines a role that grants, with its inclusions, more than they hold themselves.
//! - A role still included by another cannot be deleted; deleting a role removes its
//!   assignments.
//! - A change to a role makes every node forget the tenant's cached permissions (NOTIFY on
//!   commit); this node forgets them before it answers.

pub mod routes;
pub mod service;
pub mod store;

use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

/// To list and read roles.
pub const READ: &str = "roles:read";
/// To create, change and delete custom roles.
pub const MANAGE: &str = "roles:manage";

#[derive(Debug, thiserror::Error)]
pub enum RolesError {
    #[error("no such role")]
    NotFound,
    #[error("a role with this name already exists")]
    Exists,
    #[error("built-in roles cannot be changed or deleted")]
    BuiltIn,
    #[error("unknown roles: {}", .0.join(", "))]
    UnknownRoles(Vec<String>),
    #[error("the role would include itself through {}", .0.join(", "))]
    Cycle(Vec<String>),
    #[error("the role is included by other roles: {}", .0.join(", "))]
    Included(Vec<String>),
    #[error("you cannot grant permissions you do not hold yourself: {}", .0.join(", "))]
    Escalation(Vec<String>),
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Db(#[from] TenantDbError),
    /// The caller's permissions could not be loaded (what they may hand out).
    #[error("permission lookup: {0}")]
    Permissions(#[from] ApiError),
}

impl From<tokio_postgres::Error> for RolesError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}

impl From<RolesError> for ApiError {
    fn from(error: RolesError) -> Self {
        let message = error.to_string();
        match error {
            RolesError::NotFound => ApiError::not_found("role_not_found", message),
            RolesError::Exists => ApiError::conflict("role_exists", message),
            RolesError::BuiltIn => ApiError::forbidden("built_in_role", message),
            RolesError::UnknownRoles(roles) => ApiError::bad_request("unknown_role", message)
                .with_details(serde_json::json!({ "unknown_roles": roles })),
            RolesError::Cycle(path) => ApiError::conflict("role_cycle", message)
                .with_details(serde_json::json!({ "through": path })),
            RolesError::Included(by) => ApiError::conflict("role_in_use", message)
                .with_details(serde_json::json!({ "included_by": by })),
            RolesError::Escalation(missing) => ApiError::forbidden("privilege_escalation", message)
                .with_details(serde_json::json!({ "missing_permissions": missing })),
            RolesError::InvalidInput(_) => ApiError::bad_request("invalid_role", message),
            RolesError::Db(error) => error.into(),
            RolesError::Permissions(error) => error,
        }
    }
}
