//! The rules of the users admin. Callers have passed the guard already; here are the rules
//! about owners, the last owner and oneself, and the transactions that keep each change whole.

use serde::{Deserialize, Serialize};
use shared::account_mail::{self, TenantSite};
use shared::email::Email;
use shared::secret_token::{SecretToken, USER_TOKEN_PREFIX};
use shared::tenant_context::TenantTransaction;
use uuid::Uuid;

use super::store::{self, Target, UserView};
use super::{UsersError, OWNER};
use crate::authz::conditions::Conditions;
use crate::authz::{self, store as authz_store};
use crate::identity::store as identity_store;
use crate::mail::OutgoingMail;
use crate::privacy::ErasedUserRecords;
use crate::records::store as records;
use crate::sessions::store::{self as sessions, Revoke};
use crate::state::DataPlane;
use crate::tenancy::{Principal, RequestContext};

/// How long an invitation link works.
pub const INVITATION_DAYS: i64 = 7;
/// Most roles one request may name (there are far fewer roles; this bounds the work).
const MAX_ROLES: usize = 64;

/// A user's status, as a list filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Invited,
    Pending,
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// One page of the user list.
pub struct PageRequest {
    pub status: Option<UserStatus>,
    /// The last id of the previous page.
    pub after: Option<Uuid>,
    pub limit: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UserPage)]
pub struct Page {
    pub users: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

pub async fn list(
    state: &DataPlane,
    context: &RequestContext,
    request: &PageRequest,
) -> Result<Page, UsersError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let status = request.status.map(UserStatus::as_str);
    let mut users = store::list(
        &mut transaction,
        status,
        request.after,
        request.limit.saturating_add(1),
    )
    .await?;
    transaction.commit().await?;
    let full = users.len() as i64 > request.limit;
    users.truncate(usize::try_from(request.limit).unwrap_or(0));
    let next_cursor = if full {
        users.last().map(|user| user.id)
    } else {
        None
    };
    Ok(Page { users, next_cursor })
}

pub async fn get(
    state: &DataPlane,
    context: &RequestContext,
    user_id: Uuid,
) -> Result<UserView, UsersError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let user = store::get(&mut transaction, user_id).await?;
    transaction.commit().await?;
    user.ok_or(UsersError::NotFound)
}

/// Role names as requested: trimmed, deduplicated, sorted, bounded.
pub fn role_list(roles: &[String]) -> Result<Vec<String>, UsersError> {
    if roles.len() > MAX_ROLES {
        return Err(UsersError::InvalidInput(format!(
            "at most {MAX_ROLES} roles"
        )));
    }
    let mut roles: Vec<String> = roles.iter().map(|role| role.trim().to_owned()).collect();
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// One role a user is to hold, and the conditions under which it grants.
#[derive(Debug, Clone)]
pub struct RoleAssignment {
    pub role: String,
    pub conditions: Option<Conditions>,
}

impl RoleAssignment {
    fn stored_conditions(&self) -> Option<serde_json::Value> {
        self.conditions
            .as_ref()
            .and_then(|conditions| serde_json::to_value(conditions).ok())
    }
}

/// Refuses `roles` unless `held` (the caller's permissions in force) covers every pattern they
/// grant, inherited ones included.
pub(crate) async fn check_can_grant(
    transaction: &mut TenantTransaction,
    held: &[String],
    roles: &[String],
) -> Result<(), UsersError> {
    if roles.is_empty() {
        return Ok(());
    }
    let wanted = authz_store::role_set_permissions(transaction, roles).await?;
    let held: Vec<&str> = held.iter().map(String::as_str).collect();
    let missing = authz::covered(&held, &wanted);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(UsersError::Escalation(
            missing.into_iter().map(str::to_owned).collect(),
        ))
    }
}

pub(crate) async fn check_roles_exist(
    transaction: &mut TenantTransaction,
    roles: &[String],
) -> Result<(), UsersError> {
    let existing = crate::roles::store::existing(transaction, roles).await?;
    let unknown: Vec<String> = roles
        .iter()
        .filter(|role| !existing.contains(role))
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(UsersError::UnknownRoles(unknown))
    }
}

async fn is_owner(transaction: &mut TenantTransaction, user_id: Uuid) -> Result<bool, UsersError> {
    let roles = identity_store::role_names(transaction, user_id).await?;
    Ok(roles.iter().any(|role| role == OWNER))
}

/// Longest display name an admin may give an invited user.
const MAX_DISPLAY_NAME: usize = 200;

/// An invited user's display name as given (absent: none), trimmed and checked.
pub fn display_name(input: Option<&str>) -> Result<String, UsersError> {
    let name = input.unwrap_or_default().trim().to_owned();
    if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
        return Err(UsersError::InvalidInput(format!(
            "display_name must be at most {MAX_DISPLAY_NAME} characters, without control characters"
        )));
    }
    Ok(name)
}

/// An invitation as an admin sends it.
pub struct NewInvitation {
    pub email: Email,
    pub display_name: String,
    pub roles: Vec<String>,
}

/// Creates an `invited` user with `roles`, a single-use invitation token and the mail that
/// carries it, in one transaction.
pub async fn invite(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    invitation: NewInvitation,
) -> Result<UserView, UsersError> {
    // Nobody hands out more than they hold, as it stands for this request.
    let held = &authz::in_force(state, context, caller).await?;
    let roles = role_list(&invitation.roles)?;
    let now = state.clock.now();
    let token = SecretToken::generate(&state.rng, USER_TOKEN_PREFIX)?;
    let tenant = &context.tenant.tenant;
    let site = TenantSite {
        scheme: &state.config.public_scheme,
        slug: tenant.slug.as_str(),
        base_domain: &state.config.base_domain,
        tenant_name: &tenant.name,
    };
    let valid_hours = u32::try_from(INVITATION_DAYS * 24).unwrap_or(u32::MAX);
    let text = account_mail::invitation(&site, token.as_str(), valid_hours, None);
    let mail = OutgoingMail::new(invitation.email.as_str(), text.subject, text.body_text)?;

    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    check_roles_exist(&mut transaction, &roles).await?;
    if roles.iter().any(|role| role == OWNER) && !is_owner(&mut transaction, caller.user_id).await?
    {
        return Err(UsersError::OwnerRequired);
    }
    check_can_grant(&mut transaction, held, &roles).await?;
    crate::quotas::reserve_user_seat(&mut transaction, &context.tenant.quotas).await?;
    let user_id = Uuid::now_v7();
    if !store::insert_invited(
        &mut transaction,
        user_id,
        &invitation.email,
        &invitation.display_name,
    )
    .await?
    {
        return Err(UsersError::UserExists);
    }
    let unconditional = vec![None; roles.len()];
    store::set_roles(&mut transaction, user_id, &roles, &unconditional).await?;
    store::insert_user_token(
        &mut transaction,
        token.digest(),
        user_id,
        "invitation",
        now + time::Duration::days(INVITATION_DAYS),
    )
    .await?;
    let user = store::get(&mut transaction, user_id)
        .await?
        .ok_or(UsersError::NotFound)?;
    crate::mail::enqueue(&mut transaction, tenant.id, &mail).await?;
    transaction.commit().await?;
    Ok(user)
}

/// A change to one user in progress: the transaction holds the active owners' rows and the
/// target's row locked.
pub(crate) struct Change {
    pub(crate) transaction: TenantTransaction,
    pub(crate) target: Target,
    caller_is_owner: bool,
    tenant_id: Uuid,
    permissions: crate::authz::cache::PermissionCache,
}

/// Opens a change to `user_id` by `actor` (the signed-in caller, or the user whose API key
/// acts): locks the active owners (always first, in id order, so concurrent changes cannot
/// deadlock), then the target; refuses an unknown user, and an owner target unless the actor
/// is an owner.
pub(crate) async fn begin_change(
    state: &DataPlane,
    context: &RequestContext,
    actor: Uuid,
    user_id: Uuid,
) -> Result<Change, UsersError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::lock_active_owners(&mut transaction).await?;
    let target = store::lock_user(&mut transaction, user_id)
        .await?
        .ok_or(UsersError::NotFound)?;
    let caller_is_owner = is_owner(&mut transaction, actor).await?;
    if target.is_owner() && !caller_is_owner {
        return Err(UsersError::OwnerRequired);
    }
    Ok(Change {
        transaction,
        target,
        caller_is_owner,
        tenant_id: context.tenant.tenant.id,
        permissions: state.permissions.clone(),
    })
}

impl Change {
    /// Refuses when the change would leave no active owner: the target is one, and no other
    /// active owner remains (counted after the owners' locks were taken).
    pub(crate) async fn keep_an_owner(&mut self) -> Result<(), UsersError> {
        if self.target.is_active_owner()
            && store::other_active_owners(&mut self.transaction, self.target.id).await? == 0
        {
            return Err(UsersError::LastOwner);
        }
        Ok(())
    }

    pub(crate) async fn finish(mut self) -> Result<UserView, UsersError> {
        let user = store::get(&mut self.transaction, self.target.id)
            .await?
            .ok_or(UsersError::NotFound)?;
        self.commit().await?;
        Ok(user)
    }

    /// Commits, telling every node to forget the user's cached permissions; this node forgets
    /// them before the change is answered, so the caller's next request sees it.
    pub(crate) async fn commit(mut self) -> Result<(), UsersError> {
        authz_store::notify_changed(&mut self.transaction, self.tenant_id, Some(self.target.id))
            .await?;
        self.transaction.commit().await?;
        self.permissions
            .invalidate_user(self.tenant_id, self.target.id)
            .await;
        Ok(())
    }
}

/// Disables the user and ends every session of theirs, on every node, on commit.
pub async fn disable(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    user_id: Uuid,
) -> Result<UserView, UsersError> {
    if user_id == caller.user_id {
        return Err(UsersError::SelfAction("disable"));
    }
    let mut change = begin_change(state, context, caller.user_id, user_id).await?;
    disable_in(&mut change, context).await?;
    change.finish().await
}

/// Disables `change`'s target (never the tenant's last active owner) and ends every session
/// of theirs; every node refuses their tokens once the change commits.
pub(crate) async fn disable_in(
    change: &mut Change,
    context: &RequestContext,
) -> Result<(), UsersError> {
    change.keep_an_owner().await?;
    let user_id = change.target.id;
    store::disable(&mut change.transaction, user_id).await?;
    sessions::revoke(
        &mut change.transaction,
        context.tenant.tenant.id,
        Revoke::AllOf {
            user_id,
            except: None,
        },
        "user_disabled",
    )
    .await?;
    Ok(())
}

/// Re-enables a disabled user (a no-op for any other status).
pub async fn enable(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    user_id: Uuid,
) -> Result<UserView, UsersError> {
    let mut change = begin_change(state, context, caller.user_id, user_id).await?;
    store::enable(&mut change.transaction, user_id).await?;
    change.finish().await
}

/// Makes `assignments` exactly the user's role assignments. The new roles apply to the guard
/// at once and show in the user's next access token. An assignment that is new, or whose
/// conditions changed, must be within the caller's own permissions (`held`).
pub async fn set_roles(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    user_id: Uuid,
    assignments: Vec<RoleAssignment>,
) -> Result<UserView, UsersError> {
    let held = &authz::in_force(state, context, caller).await?;
    let names: Vec<String> = assignments.iter().map(|a| a.role.clone()).collect();
    let roles = role_list(&names)?;
    // A role named twice is named once, unless the two disagree on conditions.
    let mut assignments = assignments;
    assignments.sort_by(|a, b| a.role.cmp(&b.role));
    if assignments
        .windows(2)
        .any(|pair| pair[0].role == pair[1].role && pair[0].conditions != pair[1].conditions)
    {
        return Err(UsersError::InvalidInput(
            "a role is named twice with different conditions".into(),
        ));
    }
    assignments.dedup_by(|a, b| a.role == b.role);
    let mut change = begin_change(state, context, caller.user_id, user_id).await?;
    check_roles_exist(&mut change.transaction, &roles).await?;
    let grants_owner = roles.iter().any(|role| role == OWNER);
    if grants_owner != change.target.is_owner() && !change.caller_is_owner {
        return Err(UsersError::OwnerRequired);
    }
    if !grants_owner {
        change.keep_an_owner().await?;
    }
    let current = store::assignments(&mut change.transaction, user_id).await?;
    let changed: Vec<String> = assignments
        .iter()
        .filter(|assignment| {
            !current.iter().any(|(role, conditions)| {
                *role == assignment.role && *conditions == assignment.stored_conditions()
            })
        })
        .map(|assignment| assignment.role.clone())
        .collect();
    check_can_grant(&mut change.transaction, held, &changed).await?;
    let (roles, conditions): (Vec<String>, Vec<Option<serde_json::Value>>) = assignments
        .iter()
        .map(|assignment| (assignment.role.clone(), assignment.stored_conditions()))
        .unzip();
    store::set_roles(&mut change.transaction, user_id, &roles, &conditions).await?;
    change.finish().await
}

/// Clears the user's TOTP enrolment, backup codes and pending MFA challenges, so they can
/// sign in with their password and enrol again.
pub async fn reset_mfa(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    user_id: Uuid,
) -> Result<UserView, UsersError> {
    let mut change = begin_change(state, context, caller.user_id, user_id).await?;
    store::clear_mfa(&mut change.transaction, user_id).await?;
    change.finish().await
}

/// Erases the user: ends their sessions on every node, strips their sign-in history and other
/// traces of their address of personal data, and deletes them.
pub async fn delete(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    user_id: Uuid,
) -> Result<(), UsersError> {
    if user_id == caller.user_id {
        return Err(UsersError::SelfAction("delete"));
    }
    delete_as(state, context, caller.user_id, user_id).await
}

/// Erases `user_id` on `actor`'s behalf (an admin, or the user whose key a directory uses):
/// the records they own pass to `actor` when the tenant keeps them (to the longest-standing
/// other owner when a directory erases the very user whose key it uses).
pub(crate) async fn delete_as(
    state: &DataPlane,
    context: &RequestContext,
    actor: Uuid,
    user_id: Uuid,
) -> Result<(), UsersError> {
    let mut change = begin_change(state, context, actor, user_id).await?;
    change.keep_an_owner().await?;
    let user = store::get(&mut change.transaction, user_id)
        .await?
        .ok_or(UsersError::NotFound)?;
    let heir = if actor == user_id {
        store::senior_other_owner(&mut change.transaction, user_id).await?
    } else {
        Some(actor)
    };
    erase(state, context, change, &user, heir).await
}

/// How recent a sign-in must be for its user to erase themselves.
pub const ERASURE_SIGN_IN_WINDOW: time::Duration = time::Duration::minutes(10);

/// The signed-in user erases themselves (`confirm_email`: their address, typed), as an
/// admin's `delete` would: the same erasure, in one transaction. It needs a sign-in of the
/// last ten minutes (a stolen long-lived session cannot), and another active owner when the
/// user is one; the records they own go by the tenant's privacy policy (kept: to the
/// longest-standing other owner).
pub async fn erase_self(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    confirm_email: &str,
) -> Result<(), UsersError> {
    let mut change = begin_change(state, context, caller.user_id, caller.user_id).await?;
    let user = store::get(&mut change.transaction, caller.user_id)
        .await?
        .ok_or(UsersError::NotFound)?;
    if !user
        .email
        .as_str()
        .eq_ignore_ascii_case(confirm_email.trim())
    {
        return Err(UsersError::InvalidInput(
            "type your email address to confirm the erasure".to_owned(),
        ));
    }
    let signed_in_at = sessions::get(&mut change.transaction, caller.session_id)
        .await?
        .map(|session| session.created_at);
    if signed_in_at.is_none_or(|at| at + ERASURE_SIGN_IN_WINDOW < state.clock.now()) {
        return Err(UsersError::RecentSignInRequired);
    }
    change.keep_an_owner().await?;
    let heir = store::senior_other_owner(&mut change.transaction, caller.user_id).await?;
    erase(state, context, change, &user, heir).await
}

/// The erasure of `change`'s target `user`, whose records pass to `heir` when the tenant
/// keeps them (none: refused, nothing changed); commits.
async fn erase(
    state: &DataPlane,
    context: &RequestContext,
    mut change: Change,
    user: &UserView,
    heir: Option<Uuid>,
) -> Result<(), UsersError> {
    let user_id = change.target.id;
    // Announce the sessions' end before the rows go, so every node drops its cached entry.
    sessions::revoke(
        &mut change.transaction,
        context.tenant.tenant.id,
        Revoke::AllOf {
            user_id,
            except: None,
        },
        "user_deleted",
    )
    .await?;
    // Erasure: what is kept about the address outside the user's own rows loses its
    // personal data in the same transaction (see `privacy`).
    crate::privacy::store::forget_address(&mut change.transaction, user_id, user.email.as_str())
        .await?;
    // The records they own go or pass to the heir, by the tenant's privacy policy.
    let policy = crate::privacy::store::policy(&mut change.transaction).await?;
    match policy.erased_user_records {
        ErasedUserRecords::Delete => {
            records::delete_owned_by(&mut change.transaction, user_id).await?;
        }
        ErasedUserRecords::Reassign => {
            let heir = heir.ok_or(UsersError::NoHeir)?;
            let now = state.clock.now();
            records::reassign_owned_by(&mut change.transaction, user_id, heir, now).await?;
        }
    }
    store::delete(&mut change.transaction, user_id).await?;
    change.commit().await
}
