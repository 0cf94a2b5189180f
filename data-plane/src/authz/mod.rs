//! Authorisation: what a route's declared [`Access`] admits. The route guard ([`guard`])
//! asks [`decide`] before any handler runs; a handler never checks a permission itself.
//!
//! A permission is granted to a user only when
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
pub mod guard;
pub mod store;

use std::sync::Arc;

use shared::error::ApiError;
use shared::routes::Access;
use uuid::Uuid;

use self::cache::EffectivePermissions;
use crate::state::DataPlane;
use crate::tenancy::{ApiKeyPrincipal, Principal, RequestContext};
use crate::tokens::access::Restriction;

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

/// Why a request is refused: the value [`decide`] returns, turned into the answer by
/// `From<Denial> for ApiError` (the one place that picks statuses and codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No valid credential (401).
    NoCredential,
    /// An API key on a route for people (403 `user_required`).
    UserRequired,
    /// The session must first lift a restriction (403 with the restriction's code).
    Restricted(Restriction),
    /// The caller's roles, or the key's scopes, do not grant the permission (403).
    Missing { permission: String },
    /// The key's scopes grant it, but its creator no longer holds it (403).
    CreatorLacks { permission: String },
    /// An operator route reached on the data plane (never declared so; 403).
    NotHere,
}

impl From<Denial> for ApiError {
    fn from(denial: Denial) -> Self {
        let missing = |permission: &str, message: String| {
            ApiError::forbidden("forbidden", message)
                .with_details(serde_json::json!({ "missing_permission": permission }))
        };
        match denial {
            Denial::NoCredential => ApiError::unauthorized(
                "sign in first: send an access token as `Authorization: Bearer …`",
            ),
            Denial::UserRequired => ApiError::forbidden(
                "user_required",
                "API keys cannot use this endpoint: it needs a signed-in user's access token",
            ),
            Denial::Restricted(Restriction::PasswordChange) => ApiError::forbidden(
                "password_change_required",
                "the password has expired: change it with POST /v1/me/password",
            ),
            Denial::Restricted(Restriction::MfaEnrollment) => ApiError::forbidden(
                "mfa_enrollment_required",
                "this tenant requires MFA: set it up under /v1/me/mfa",
            ),
            Denial::Missing { permission } => {
                let message = format!("this needs the permission {permission}");
                missing(&permission, message)
            }
            Denial::CreatorLacks { permission } => {
                let message = format!(
                    "this needs the permission {permission}, which the key's creator no longer holds"
                );
                missing(&permission, message)
            }
            Denial::NotHere => ApiError::forbidden("forbidden", "this route is not served here"),
        }
    }
}

/// Whether the request may go on to the handler of a route declared with `access`.
/// `parameter` gives the path parameters a permission's `{name}`s stand for. `Err` only when
/// the caller's permissions could not be loaded.
pub async fn decide(
    state: &DataPlane,
    context: &RequestContext,
    access: Access,
    parameter: impl Fn(&str) -> Option<String>,
) -> Result<Decision, ApiError> {
    let user = |restricted_ok: bool| -> Result<&Principal, Denial> {
        match (context.principal.as_deref(), context.api_key.is_some()) {
            (Some(principal), _) => match principal.restrictions.first() {
                Some(restriction) if !restricted_ok => Err(Denial::Restricted(*restriction)),
                _ => Ok(principal),
            },
            (None, true) => Err(Denial::UserRequired),
            (None, false) => Err(Denial::NoCredential),
        }
    };
    let refused = |denial| Ok(Decision::Refuse(denial));
    let caller = match access {
        Access::Public => return Ok(Decision::Admit),
        Access::Operator => return refused(Denial::NotHere),
        Access::RestrictedOk | Access::SignedIn => {
            return match user(access == Access::RestrictedOk) {
                Ok(_) => Ok(Decision::Admit),
                Err(denial) => refused(denial),
            };
        }
        Access::Permission(_) => match user(false) {
            Ok(principal) => Caller::User(principal),
            Err(denial) => return refused(denial),
        },
        Access::UserOrKey(_) => match (context.api_key.as_deref(), user(false)) {
            (Some(key), _) => Caller::ApiKey(key),
            (None, Ok(principal)) => Caller::User(principal),
            (None, Err(denial)) => return refused(denial),
        },
        Access::Caller => {
            return match (context.api_key.is_some(), user(false)) {
                (true, _) | (false, Ok(_)) => Ok(Decision::Admit),
                (false, Err(denial)) => refused(denial),
            };
        }
    };
    let permission = fill(access.permission().unwrap_or_default(), &parameter);
    if holds(state, context, caller, &permission).await? {
        return Ok(Decision::Admit);
    }
    refused(match caller {
        Caller::ApiKey(key) if key.scopes.iter().any(|scope| grants(scope, &permission)) => {
            Denial::CreatorLacks { permission }
        }
        _ => Denial::Missing { permission },
    })
}

/// What [`decide`] says of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Admit,
    Refuse(Denial),
}

/// `pattern` with each `{name}` replaced by the path parameter of that name.
fn fill(pattern: &str, parameter: &impl Fn(&str) -> Option<String>) -> String {
    let mut permission = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        permission.push_str(&rest[..open]);
        let name = &rest[open + 1..open + close];
        permission.push_str(&parameter(name).unwrap_or_default());
        rest = &rest[open + close + 1..];
    }
    permission.push_str(rest);
    permission
}

/// Whether `caller` holds `permission` for this request: for a user, through their roles in
/// force; for a key, through its scopes **and** its creator's roles in force (a key never
/// outlives what its creator may do). Besides [`decide`], services call it for the rights
/// that shape an answer rather than allow it (who may see sensitive fields).
pub async fn holds(
    state: &DataPlane,
    context: &RequestContext,
    caller: Caller<'_>,
    permission: &str,
) -> Result<bool, ApiError> {
    let held = holds_each(state, context, caller, &[permission]).await?;
    Ok(held.first().copied().unwrap_or(false))
}

/// [`holds`] for each of `wanted`, in order, with one look at the caller's permissions.
pub async fn holds_each(
    state: &DataPlane,
    context: &RequestContext,
    caller: Caller<'_>,
    wanted: &[&str],
) -> Result<Vec<bool>, ApiError> {
    // A key asks its creator's roles only for what its scopes grant.
    let (user, scoped): (Option<Uuid>, Vec<bool>) = match caller {
        Caller::User(principal) => (Some(principal.user_id), vec![true; wanted.len()]),
        Caller::ApiKey(key) => (
            key.created_by,
            wanted
                .iter()
                .map(|permission| key.scopes.iter().any(|scope| grants(scope, permission)))
                .collect(),
        ),
    };
    let Some(user) = user.filter(|_| scoped.contains(&true)) else {
        return Ok(vec![false; wanted.len()]);
    };
    let effective = permissions(state, context, user).await?;
    let now = state.clock.now();
    Ok(wanted
        .iter()
        .zip(scoped)
        .map(|(permission, scoped)| scoped && effective.allows(permission, context.source_ip, now))
        .collect())
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
