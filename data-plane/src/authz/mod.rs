//! Authorisation: the one guard every protected route calls with the permission it needs.
//!
//! [`require`] admits a caller only when
//! - the request carries a valid access token whose session is live and unrestricted (a
//!   session that must first change its password or enrol in MFA is refused), and
//! - one of the caller's role assignments, **as stored now** in the tenant's `user_roles`,
//!   grants the permission through its role (or a role it includes, transitively), and the
//!   assignment's conditions (source IP ranges, time windows) admit this request.
//!
//! Roles are read from the tenant's tables, not from the token's `roles` claim: a demoted
//! admin loses admin rights at their next request, not when their access token expires. The
//! claim is informational (and shows a role change at the next refresh). What the tables
//! grant is cached per (tenant, user) in [`cache::PermissionCache`], evicted on every node by
//! NOTIFY when a role, an assignment or the user's status changes, so the check costs no
//! query on a warm cache.
//!
//! Permissions are `resource:action`. A granted pattern matches a required permission when
//! each half is equal or `*`; a resource covers its sub-resources (`records` covers
//! `records.invoices`, one collection); the action `manage` grants every action on its
//! resource (`users:manage` includes `users:read`).
//!
//! Nobody hands out more than they hold: granting a role, or defining one, needs every
//! pattern it grants to be covered by the caller's own permissions in force ([`covered`]).

pub mod cache;
pub mod conditions;
pub mod store;

use std::sync::Arc;

use shared::error::ApiError;

use uuid::Uuid;

use self::cache::EffectivePermissions;
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
    match (granted.split_once(':'), required.split_once(':')) {
        (Some(granted), Some(required)) => split_grants(granted, required),
        _ => false,
    }
}

/// [`grants`] on patterns already split at the colon: `(resource, action)`.
pub fn split_grants(
    (granted_resource, granted_action): (&str, &str),
    (resource, action): (&str, &str),
) -> bool {
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

/// What `user_id`'s role assignments grant, from the cache or the tenant's tables.
pub async fn permissions(
    state: &DataPlane,
    context: &RequestContext,
    user_id: Uuid,
) -> Result<Arc<EffectivePermissions>, ApiError> {
    state
        .permissions
        .get_or_load(
            context.tenant.tenant.id,
            user_id,
            store::effective_permissions(&state.tenant_db, context, user_id),
        )
        .await
        .map_err(ApiError::from)
}

/// The caller, if their session is unrestricted and their roles grant `permission`
/// (`resource:action`) for this request; otherwise 401 (no valid token), 403 with the
/// restriction's code, or 403 `forbidden` naming the missing permission.
pub async fn require<'a>(
    state: &DataPlane,
    context: &'a RequestContext,
    permission: &str,
) -> Result<&'a Principal, ApiError> {
    let principal = context.authenticated()?;
    let permissions = permissions(state, context, principal.user_id).await?;
    if permissions.allows(permission, context.source_ip, state.clock.now()) {
        Ok(principal)
    } else {
        Err(missing(permission))
    }
}

/// The caller's permission patterns in force for this request: what they may hand out.
pub async fn in_force(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
) -> Result<Vec<String>, ApiError> {
    let permissions = permissions(state, context, principal.user_id).await?;
    Ok(permissions
        .in_force(context.source_ip, state.clock.now())
        .into_iter()
        .map(str::to_owned)
        .collect())
}

/// The patterns of `wanted` that `held` does not cover; empty when granting `wanted` gives
/// away nothing the holder lacks. A wanted wildcard needs a held wildcard at least as wide.
pub fn covered<'w>(held: &[&str], wanted: &'w [String]) -> Vec<&'w str> {
    wanted
        .iter()
        .filter(|pattern| !held.iter().any(|granted| grants(granted, pattern)))
        .map(String::as_str)
        .collect()
}

/// The caller — an API key, or a user as [`require`] admits one — for the endpoints API keys
/// may use.
///
/// A key is admitted when one of its scopes grants `permission` **and** its creator's
/// permissions, as they stand now and in force for this request, grant it too: a key never
/// outlives what its creator may do, so demoting, disabling or deleting a user shrinks their
/// keys at once (the creator's permissions come from the same NOTIFY-evicted cache).
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
            Some(creator) => permissions(state, context, creator).await?.allows(
                permission,
                context.source_ip,
                state.clock.now(),
            ),
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
    use super::{covered, grants};

    #[test]
    fn nobody_hands_out_a_pattern_wider_than_their_own() {
        let held = ["records:*", "users:read", "api_keys:manage"];
        let wanted = |patterns: &[&str]| -> Vec<String> {
            patterns.iter().map(|p| (*p).to_owned()).collect()
        };
        assert!(covered(
            &held,
            &wanted(&["records:read", "records.notes:*", "users:read"])
        )
        .is_empty());
        assert!(covered(&held, &wanted(&["api_keys:*", "records:manage"])).is_empty());
        assert_eq!(
            covered(&held, &wanted(&["users:manage", "records:read"])),
            ["users:manage"]
        );
        assert_eq!(covered(&held, &wanted(&["*:read"])), ["*:read"]);
        assert_eq!(covered(&held, &wanted(&["*:*"])), ["*:*"]);
        assert!(covered(&["*:*"], &wanted(&["*:*", "anything:delete"])).is_empty());
    }

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
