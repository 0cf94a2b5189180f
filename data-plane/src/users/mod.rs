//! Users admin: tenant admins list, invite, disable, re-enable and delete the tenant's users,
//! change their roles and reset their MFA (`/v1/admin/users`).
//!
//! Invariants:
//! - Every route declares its permission (`users:read` to look, `users:manage` to change),
//!   which the route guard checks before its handler runs.
//! - Only an owner may grant or remove the `owner` role or act on an owner at all.
//! - Nobody grants a role (or a looser condition on one) whose permissions, inherited ones
//!   included, are not all covered by their own permissions in force.
//! - Every change to a user tells every node (NOTIFY on commit) to forget the user's cached
//!   permissions; the node making the change forgets them before it answers.
//! - A tenant always keeps an active owner: every change that could remove the last one locks
//!   the active owners' rows first and counts again afterwards, so two concurrent demotions
//!   cannot both pass.
//! - Nobody disables or deletes themself through the admin API.
//! - Disabling or deleting a user ends every session of theirs in the same transaction; the
//!   NOTIFY sent on commit makes every node refuse their access tokens at once.
//! - An invitation's user, roles, token and mail are committed together or not at all.

pub mod routes;
pub mod service;
pub mod store;

use shared::envelope::EnvelopeError;
use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

use crate::mail::{EnqueueError, InvalidMail};
use crate::quotas::QuotaError;

/// To list and read users.
pub const READ: &str = "users:read";
/// To invite, change and delete users.
pub const MANAGE: &str = "users:manage";
/// The role that only its holders may grant, remove or act on.
pub const OWNER: &str = "owner";

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("no such user")]
    NotFound,
    #[error("a user with this email address already exists")]
    UserExists,
    #[error("unknown roles: {}", .0.join(", "))]
    UnknownRoles(Vec<String>),
    #[error("only an owner may grant or remove the owner role or change an owner")]
    OwnerRequired,
    #[error("you cannot grant permissions you do not hold yourself: {}", .0.join(", "))]
    Escalation(Vec<String>),
    #[error("this is the tenant's last active owner; make another owner first")]
    LastOwner,
    #[error("you cannot {0} yourself")]
    SelfAction(&'static str),
    #[error("sign in again (within the last ten minutes) to erase your account")]
    RecentSignInRequired,
    #[error("no other active owner could keep your records; ask an admin to erase your account")]
    NoHeir,
    #[error("{0}")]
    InvalidInput(String),
    #[error("cannot mail this address: {0}")]
    InvalidMail(#[from] InvalidMail),
    #[error(transparent)]
    Quota(#[from] QuotaError),
    #[error(transparent)]
    Db(#[from] TenantDbError),
    /// The caller's permissions could not be loaded (what they may hand out).
    #[error("permission lookup: {0}")]
    Permissions(#[from] ApiError),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    #[error(transparent)]
    Random(#[from] EnvelopeError),
}

impl From<UsersError> for ApiError {
    fn from(error: UsersError) -> Self {
        let message = error.to_string();
        match error {
            UsersError::NotFound => ApiError::not_found("user_not_found", message),
            UsersError::UserExists => ApiError::conflict("user_exists", message),
            UsersError::UnknownRoles(roles) => ApiError::bad_request("unknown_role", message)
                .with_details(serde_json::json!({ "unknown_roles": roles })),
            UsersError::OwnerRequired => ApiError::forbidden("owner_required", message),
            UsersError::Escalation(missing) => ApiError::forbidden("privilege_escalation", message)
                .with_details(serde_json::json!({ "missing_permissions": missing })),
            UsersError::LastOwner => ApiError::conflict("last_owner", message),
            UsersError::SelfAction(_) => ApiError::forbidden("self_action", message),
            UsersError::RecentSignInRequired => {
                ApiError::forbidden("recent_sign_in_required", message)
            }
            UsersError::NoHeir => ApiError::conflict("no_heir", message),
            UsersError::InvalidInput(_) => ApiError::bad_request("invalid_input", message),
            UsersError::InvalidMail(_) => ApiError::bad_request("invalid_email", message),
            UsersError::Quota(error) => error.into(),
            UsersError::Permissions(error) => error,
            UsersError::Db(error) => error.into(),
            UsersError::Enqueue(error) => error.into(),
            UsersError::Random(_) => ApiError::internal(&error),
        }
    }
}

impl From<tokio_postgres::Error> for UsersError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}
