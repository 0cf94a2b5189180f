//! Authorisation: the one guard every protected route calls with the permission it needs.
//!
//! [`require`] admits a caller only when
//! - the request carries a valid access token whose session is live and unrestricted (a
//!   session that must first change its password or enrol in MFA is refused), and
//! - one of the caller's roles, **as stored now** in the tenant's `user_roles`, grants the
//!   permission through the tenant's `roles` table.
//!
//! Roles are read from the database, not from the token's `roles` claim: a demoted admin
//! loses admin rights at their next request, not when their access token expires. The token
//! claim is informational (and shows a role change at the next refresh).
//!
//! Permissions are `resource:action`. A granted pattern matches a required permission when
//! each half is equal or `*`; a resource covers its sub-resources (`records` covers
//! `records.invoices`, one collection); the action `manage` grants every action on its
//! resource (`users:manage` includes `users:read`). This is the single seam where effective
//! permissions are computed, so a later cache (moka, keyed by tenant and user, invalidated by
//! NOTIFY on role and user-role changes) goes here and nowhere else.

pub mod store;

use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

use uuid::Uuid;

use crate::state::DataPlane;
use crate::tenancy::{ApiKeyPrincipal, Principal, RequestContext};

/// Who a request acts for, on the endpoints open to API keys as well as to signed-in users
/// (records, telemetry). Admin endpoints use [`require`], which admits users only.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    User(&'a Principal),
    ApiKey(&'a ApiKeyPrincipal),
}

impl Caller<'_> {
    /// The signed-in user, if the caller is one.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Caller::User(principal) => Some(principal.user_id),
            Caller::ApiKey(_) => None,
        }
    }
}

fn missing(permission: &str) -> ApiError {
    ApiError::forbidden(
        "forbidden",
        format!("this needs the permission {permission}"),
    )
    .with_details(serde_json::json!({ "missing_permission": permission }))
}

/// Whether the granted pattern `granted` (e.g. `records:*`, `*:*`, `users:manage`) covers the
/// required permission `required` (e.g. `users:read`).
pub fn grants(granted: &str, required: &str) -> bool {
    let (Some((granted_resource, granted_action)), Some((resource, action))) =
        (granted.split_once(':'), required.split_once(':'))
    else {
        return false;
    };
    // A resource names a family: `records` covers `records.invoices` (one collection).
    let resource_matches = granted_resource == "*"
        || granted_resource == resource
        || resource
            .strip_prefix(granted_resource)
            .is_some_and(|rest| rest.starts_with('.'));
    let action_matches =
        granted_action == "*" || granted_action == "manage" || granted_action == action;
    resource_matches && action_matches
}

/// The caller, if their session is unrestricted and their roles grant `permission`
/// (`resource:action`); otherwise 401 (no valid token), 403 with the restriction's code, or
/// 403 `forbidden` naming the missing permission.
pub async fn require<'a>(
    state: &DataPlane,
    context: &'a RequestContext,
    permission: &str,
) -> Result<&'a Principal, ApiError> {
    let principal = context.authenticated()?;
    let permissions = store::effective_permissions(&state.tenant_db, context, principal.user_id)
        .await
        .map_err(|error| match error {
            TenantDbError::Pool(_) => ApiError::unavailable(
                "database_unavailable",
                "the database is busy or unavailable; retry shortly",
            ),
            other => ApiError::internal(&other),
        })?;
    if permissions
        .iter()
        .any(|granted| grants(granted, permission))
    {
        Ok(principal)
    } else {
        Err(missing(permission))
    }
}

/// The permission patterns `user_id` holds now (none unless the user is active): what an
/// API key they create may be scoped to.
pub async fn user_permissions(
    state: &DataPlane,
    context: &RequestContext,
    user_id: Uuid,
) -> Result<Vec<String>, ApiError> {
    store::effective_permissions(&state.tenant_db, context, user_id)
        .await
        .map_err(|error| match error {
            TenantDbError::Pool(_) => ApiError::unavailable(
                "database_unavailable",
                "the database is busy or unavailable; retry shortly",
            ),
            other => ApiError::internal(&other),
        })
}

/// Whether `user_id`, as their roles stand now, holds `permission` (false unless active).
pub async fn user_allows(
    state: &DataPlane,
    context: &RequestContext,
    user_id: Uuid,
    permission: &str,
) -> Result<bool, ApiError> {
    let permissions = user_permissions(state, context, user_id).await?;
    Ok(permissions
        .iter()
        .any(|granted| grants(granted, permission)))
}

/// The caller — an API key, or a user as [`require`] admits one — for the endpoints API keys
/// may use.
///
/// A key is admitted when one of its scopes grants `permission` **and** its creator, as their
/// roles and status stand now, holds it too: a key never outlives what its creator may do, so
/// demoting, disabling or deleting a user shrinks their keys at once.
pub async fn require_caller<'a>(
    state: &DataPlane,
    context: &'a RequestContext,
    permission: &str,
) -> Result<Caller<'a>, ApiError> {
    if let Some(key) = context.api_key.as_deref() {
        if !key.scopes.iter().any(|scope| grants(scope, permission)) {
            return Err(missing(permission));
        }
        let creator_holds = match key.created_by {
            Some(creator) => user_allows(state, context, creator, permission).await?,
            None => false,
        };
        return if creator_holds {
            Ok(Caller::ApiKey(key))
        } else {
            Err(ApiError::forbidden(
                "forbidden",
                format!(
                    "this needs the permission {permission}, which the key's creator no longer holds"
                ),
            )
            .with_details(serde_json::json!({ "missing_permission": permission })))
        };
    }
    require(state, context, permission).await.map(Caller::User)
}

#[cfg(test)]
mod tests {
    use super::grants;

    #[test]
    fn wildcards_and_manage_grant_what_they_should_and_nothing_more() {
        assert!(grants("*:*", "users:manage"));
        assert!(grants("users:manage", "users:manage"));
        assert!(grants("users:manage", "users:read"));
        assert!(grants("records:*", "records:delete"));
        assert!(grants("*:read", "users:read"));
        assert!(!grants("users:read", "users:manage"));
        assert!(!grants("records:*", "users:read"));
        assert!(!grants("settings:manage", "users:read"));
        assert!(!grants("users", "users:read"));
        assert!(!grants("*", "users:read"));
        assert!(!grants("users:read", "users"));
        assert!(grants("records:read", "records.invoices:read"));
        assert!(grants("records.invoices:*", "records.invoices:delete"));
        assert!(!grants("records.invoices:read", "records.orders:read"));
        assert!(!grants("records.invoices:read", "records:read"));
        assert!(!grants("records:read", "recordsx:read"));
    }
}
