//! The end of every SSO flow: an identity the IdP vouched for becomes a Tenantry user (just in
//! time on the first sign-in), and gets a session and tokens exactly as after a password
//! sign-in, with `amr` = the provider kind and `idp` = the provider's name.
//!
//! Rules:
//! - A subject already linked to a user signs in as that user; their name and the roles the
//!   provider manages (the values of its `role_mapping`) follow the IdP at every sign-in.
//! - An unlinked subject whose address belongs to an existing user is linked only when the
//!   provider's `link_existing_users` is on **and** the IdP says the address is verified;
//!   otherwise the sign-in is refused (409 `sso_account_exists`): a tenant that did not opt in
//!   must not let an IdP take over password accounts.
//! - Otherwise a new active user is created with the mapped roles, or the default role.
//! - SSO never grants `owner` (refused at configuration) and never signs in a disabled user.

use shared::email::Email;
use uuid::Uuid;

use super::store::{self, ProviderRow};
use super::{Destination, Outcome, SignedIn, SsoError};
use crate::authz::store as authz_store;
use crate::identity::service::{self as identity, Client, NewSignIn, TokenResponse};
use crate::identity::store::{self as users, Attempt};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use shared::tenant_context::TenantTransaction;

/// Who the IdP says signed in, after every check of its answer passed.
#[derive(Debug, Clone)]
pub struct ExternalIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// What the IdP sent, as it sent it (OIDC claims and userinfo; SAML NameID and
    /// attributes): shown to an admin testing the provider, never stored otherwise.
    pub received: serde_json::Value,
}

/// An admin's test sign-in through `provider`: what the IdP sent and what the provider's
/// mapping makes of it, kept for the admin's result page. Nobody is signed in and no user is
/// made or changed.
pub async fn record_test(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    identity: &ExternalIdentity,
) -> Result<uuid::Uuid, SsoError> {
    let mut roles = mapped_roles(provider, &identity.groups);
    if roles.is_empty() {
        roles.push(provider.settings.users.default_role.clone());
    }
    let email = identity
        .email
        .as_deref()
        .and_then(|email| Email::parse(email).ok());
    let result = serde_json::json!({
        "received": identity.received,
        "mapped": {
            "subject": identity.subject,
            "email": email.as_ref().map(Email::as_str),
            "email_problem": if email.is_none() {
                Some("no usable email address: a sign-in would be refused")
            } else {
                None
            },
            "name": identity.name,
            "groups": identity.groups,
            "roles": roles,
        },
    });
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let id = store::insert_test_result(&mut transaction, provider.id, &result, state.clock.now())
        .await?;
    transaction.commit().await?;
    Ok(id)
}

/// The roles `groups` map to under the provider's `role_mapping`.
fn mapped_roles(provider: &ProviderRow, groups: &[String]) -> Vec<String> {
    let mut roles: Vec<String> = groups
        .iter()
        .filter_map(|group| provider.settings.users.role_mapping.get(group).cloned())
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

fn limited(text: &str, max: usize) -> String {
    text.chars()
        .filter(|character| !character.is_control())
        .take(max)
        .collect()
}

/// How a checked answer of the IdP ends, by where its sign-in was to go: an admin's test
/// keeps the result; an application gets a one-time code; otherwise a session opens (its
/// tokens answered as JSON, or the console signed in).
pub async fn conclude(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    identity: ExternalIdentity,
    client: Client<'_>,
    destination: Destination,
) -> Result<Outcome, SsoError> {
    match destination {
        Destination::Console(landing) if landing.test => {
            let result_id = record_test(state, context, provider, &identity).await?;
            Ok(Outcome::Tested { result_id, landing })
        }
        Destination::App(app) => {
            let (transaction, admitted) = admit(state, context, provider, identity, client).await?;
            let redirect = super::handoff::issue_code(state, transaction, &admitted, &app).await?;
            state
                .permissions
                .invalidate_user(context.tenant.tenant.id, admitted.user.id)
                .await;
            Ok(Outcome::HandedOff { redirect })
        }
        Destination::Console(landing) => Ok(Outcome::SignedIn(SignedIn {
            tokens: complete(state, context, provider, identity, client).await?,
            landing: Some(landing),
        })),
        Destination::Tokens => Ok(Outcome::SignedIn(SignedIn {
            tokens: complete(state, context, provider, identity, client).await?,
            landing: None,
        })),
    }
}

/// A user the IdP's answer admitted: found, linked or made, roles synced, active.
pub struct Admitted {
    pub user: users::UserRow,
    pub provider_id: Uuid,
}

/// Signs the user in: a new session and its tokens.
async fn complete(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    identity: ExternalIdentity,
    client: Client<'_>,
) -> Result<TokenResponse, SsoError> {
    let (mut transaction, admitted) = admit(state, context, provider, identity, client).await?;
    let policy = users::policy(&mut transaction).await?;
    let sign_in = NewSignIn {
        user: &admitted.user,
        policy: &policy,
        amr: vec![provider.settings.provider.name().to_owned()],
        idp: Some(&provider.name),
        client,
        now: state.clock.now(),
    };
    let tokens = identity::open_session(state, context, transaction, sign_in).await?;
    state
        .permissions
        .invalidate_user(context.tenant.tenant.id, admitted.user.id)
        .await;
    Ok(tokens)
}

/// Finds, links or makes the user the IdP vouches for (roles synced from their groups) and
/// records the successful attempt, in the transaction it returns uncommitted (whoever opens
/// the session or leaves the code commits it).
async fn admit(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    identity: ExternalIdentity,
    client: Client<'_>,
) -> Result<(TenantTransaction, Admitted), SsoError> {
    let kind = provider.settings.provider.name();
    let email = identity
        .email
        .as_deref()
        .and_then(|email| Email::parse(email).ok())
        .ok_or(SsoError::NoEmail)?;
    let name = identity.name.as_deref().map(|name| limited(name, 200));
    let groups: Vec<String> = identity
        .groups
        .iter()
        .take(200)
        .map(|group| limited(group, 200))
        .collect();
    let now = state.clock.now();
    let tenant_id = context.tenant.tenant.id;
    let attempt = |user_id, outcome| Attempt {
        email: email.as_str(),
        user_id,
        method: kind,
        outcome,
        ip: client.ip,
        user_agent: client.user_agent,
    };

    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let managed: Vec<String> = {
        let mut managed: Vec<String> = provider
            .settings
            .users
            .role_mapping
            .values()
            .cloned()
            .collect();
        managed.sort();
        managed.dedup();
        managed
    };
    let mapped = mapped_roles(provider, &groups);

    let linked = store::linked_user(&mut transaction, provider.id, &identity.subject).await?;
    let user_id = match linked {
        Some(user_id) => {
            if !managed.is_empty() {
                store::sync_roles(&mut transaction, user_id, &managed, &mapped).await?;
            }
            user_id
        }
        None => match users::user_by_email(&mut transaction, &email).await? {
            Some(existing) => {
                if !(provider.settings.users.link_existing_users && identity.email_verified) {
                    users::record_attempt(
                        &mut transaction,
                        &attempt(Some(existing.id), "sso_account_exists"),
                    )
                    .await?;
                    transaction.commit().await?;
                    return Err(SsoError::AccountExists);
                }
                if !managed.is_empty() {
                    store::sync_roles(&mut transaction, existing.id, &managed, &mapped).await?;
                }
                existing.id
            }
            None => {
                // A just-in-time user takes a seat like an invited one (docs/limits.md).
                crate::quotas::reserve_user_seat(&mut transaction, &context.tenant.quotas).await?;
                let user_id = Uuid::now_v7();
                let display_name = name.clone().unwrap_or_default();
                if !store::insert_sso_user(
                    &mut transaction,
                    user_id,
                    email.as_str(),
                    &display_name,
                    identity.email_verified,
                    now,
                )
                .await?
                {
                    return Err(SsoError::AccountExists);
                }
                let wanted = if mapped.is_empty() {
                    vec![provider.settings.users.default_role.clone()]
                } else {
                    mapped.clone()
                };
                store::sync_roles(&mut transaction, user_id, &wanted, &wanted).await?;
                user_id
            }
        },
    };
    store::link_identity(
        &mut transaction,
        provider.id,
        &identity.subject,
        user_id,
        &groups,
        now,
    )
    .await?;
    let user = users::user_by_id(&mut transaction, user_id)
        .await?
        .ok_or(SsoError::AccountExists)?;
    if user.status == "disabled" {
        users::record_attempt(&mut transaction, &attempt(Some(user.id), "disabled")).await?;
        transaction.commit().await?;
        return Err(SsoError::AccountDisabled);
    }
    if let Some(name) = &name {
        users::set_display_name(&mut transaction, user.id, name).await?;
    }
    if user.status != "active" {
        // An invited or unverified user whose address the IdP vouches for (linking needs a
        // verified address) is now active.
        store::activate(&mut transaction, user.id, now).await?;
    }
    users::record_attempt(&mut transaction, &attempt(Some(user.id), "success")).await?;
    authz_store::notify_changed(&mut transaction, tenant_id, Some(user.id)).await?;
    Ok((
        transaction,
        Admitted {
            user,
            provider_id: provider.id,
        },
    ))
}

/// Records an SSO sign-in the IdP's answer failed, for the audit log (the address is not
/// known yet: the provider's name stands in for it).
pub async fn record_refusal(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    outcome: &str,
    client: Client<'_>,
) -> Result<(), SsoError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let label = format!("sso:{}", provider.name);
    users::record_attempt(
        &mut transaction,
        &Attempt {
            email: &label,
            user_id: None,
            method: provider.settings.provider.name(),
            outcome,
            ip: client.ip,
            user_agent: client.user_agent,
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// A test result of `provider` kept for its admin, while it is kept.
pub async fn test_result(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    id: uuid::Uuid,
) -> Result<Option<serde_json::Value>, SsoError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let result = store::test_result(&mut transaction, id, provider.id, state.clock.now()).await?;
    transaction.commit().await?;
    Ok(result)
}
