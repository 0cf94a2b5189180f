//! The console's sessions: a browser signs in through the same services as an API client
//! (`identity::service::login`, `mfa::service::verify`), and the session they open is bound
//! to a cookie instead of being handed out as tokens. Each page request finds its session by
//! the cookie's digest and checks it as the API checks a token's: live, its user active,
//! within the tenant's idle timeout; roles and restrictions are read afresh.

use shared::error::ApiError;
use shared::secret_token::{token_digest, SecretToken};
use zeroize::Zeroizing;

use super::store;
use crate::identity::service::{self as identity, Client, LoginOutcome, TokenResponse};
use crate::identity::{store as users, IdentityError};
use crate::sessions::store::{self as sessions, Revoke};
use crate::state::DataPlane;
use crate::tenancy::registry::ServedTenant;
use crate::tenancy::{Principal, RequestContext};
use shared::console::cookies::SESSION_PREFIX;

/// Where a password sign-in ends in the console.
pub enum SignIn {
    /// Signed in: the session cookie's secret.
    Session(Zeroizing<String>),
    /// The user has MFA: the challenge to answer with a code.
    MfaRequired(Zeroizing<String>),
}

/// A password sign-in from the console.
pub async fn sign_in(
    state: &DataPlane,
    context: &RequestContext,
    email: &shared::email::Email,
    password: &crate::identity::passwords::Password,
    client: Client<'_>,
) -> Result<SignIn, IdentityError> {
    match identity::login(state, context, email, password, client).await? {
        LoginOutcome::Tokens(tokens) => Ok(SignIn::Session(bind(state, context, &tokens).await?)),
        LoginOutcome::MfaRequired(challenge) => Ok(SignIn::MfaRequired(challenge.mfa_token)),
    }
}

/// Binds a new cookie to the session `tokens` belong to; the cookie's secret.
pub async fn bind(
    state: &DataPlane,
    context: &RequestContext,
    tokens: &TokenResponse,
) -> Result<Zeroizing<String>, IdentityError> {
    let secret = SecretToken::generate(&state.rng, SESSION_PREFIX)
        .map_err(crate::tokens::TokenError::from)?;
    let mut transaction = state.tenant_db.begin(&context.tenant.scope).await?;
    store::insert(
        &mut transaction,
        secret.digest(),
        tokens.session_id,
        state.clock.now(),
    )
    .await?;
    transaction.commit().await?;
    Ok(secret.into_text())
}

/// The signed-in user a session cookie stands for, if its session is live. A session idle
/// for longer than the tenant allows is ended here; one seen more than a minute ago is
/// marked seen.
pub async fn principal(
    state: &DataPlane,
    tenant: &ServedTenant,
    secret: &str,
) -> Result<Option<Principal>, IdentityError> {
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(&tenant.scope).await?;
    let Some(session) = store::live_session(&mut transaction, &token_digest(secret), now).await?
    else {
        return Ok(None);
    };
    let policy = users::policy(&mut transaction).await?;
    let idle = time::Duration::minutes(i64::from(policy.sessions.idle_timeout_minutes));
    if session.last_seen_at + idle <= now {
        let which = Revoke::One {
            user_id: session.user_id,
            session_id: session.session_id,
        };
        sessions::revoke(&mut transaction, tenant.tenant.id, which, "idle_timeout").await?;
        transaction.commit().await?;
        return Ok(None);
    }
    let Some(user) = users::user_by_id(&mut transaction, session.user_id).await? else {
        return Ok(None);
    };
    let roles = users::role_names(&mut transaction, user.id).await?;
    if now - session.last_seen_at > time::Duration::minutes(1) {
        sessions::touch(&mut transaction, session.session_id, now, None).await?;
    }
    transaction.commit().await?;
    let restrictions = identity::restrictions(&policy, &user, &roles, now);
    Ok(Some(Principal {
        user_id: user.id,
        session_id: session.session_id,
        roles,
        amr: session.amr,
        restrictions,
    }))
}

/// What the sign-in page offers besides a password.
pub struct SignInOptions {
    /// Whether visitors may create accounts (a link to sign-up).
    pub self_signup: bool,
    /// The enabled SSO providers: name, and the name people know them by.
    pub providers: Vec<(String, String)>,
}

pub async fn sign_in_options(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<SignInOptions, ApiError> {
    let mut transaction = state.tenant_db.begin(&context.tenant.scope).await?;
    let policy = users::policy(&mut transaction).await?;
    transaction.commit().await?;
    let providers = crate::sso::admin::list(state, context)
        .await?
        .into_iter()
        .filter(|provider| provider.enabled)
        .map(|provider| {
            let shown = if provider.display_name.is_empty() {
                provider.name.clone()
            } else {
                provider.display_name
            };
            (provider.name, shown)
        })
        .collect();
    Ok(SignInOptions {
        self_signup: policy.self_signup,
        providers,
    })
}
