//! The rules of signing in. Input arrives parsed; every database step runs in the tenant's
//! transaction; password hashing (tens of milliseconds of CPU by design) runs between
//! transactions so it never holds a pooled connection, and neither does waiting for it: a
//! request takes its place at the hashing gate (`PasswordHasher::admit`) before its first
//! database step, and is refused there, having touched nothing, when the node is busy.

use std::net::IpAddr;

use serde::Serialize;
use shared::email::Email;
use shared::secret_token::{token_digest, well_formed, SecretToken, USER_TOKEN_PREFIX};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::passwords::{Password, Verdict, MAX_PASSWORD_LENGTH};
use super::policy::{AuthPolicy, MfaRequirement};
use super::store::{self, Attempt, UserRow};
use super::IdentityError;
use crate::mfa;
use crate::sessions::store::{self as sessions, NewSession, Revoke};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use crate::tokens::access::{self, NewAccessToken, Restriction};
use crate::tokens::refresh::{self, Presented, REUSE_GRACE};

/// Where a request came from, for sessions and the attempt log.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
}

/// Tokens in OAuth 2.0's names.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(examples(json!({
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6ImsyMDI2MTIwNiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzYTViOS00YzJkLTdlMWYtYTNiNC1jNWQ2ZTdmOGE5YjAifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU",
    "refresh_token": "tnrt_t8P3qx1leczQr713u8L-I-NOKdh_AIcse3bfZ3Iiv6s",
    "token_type": "Bearer",
    "expires_in": 900
})))]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    pub refresh_token: Zeroizing<String>,
    pub token_type: &'static str,
    pub expires_in: u64,
    /// The session the tokens belong to, for the console's cookie (not sent to API clients:
    /// their tokens name it).
    #[serde(skip)]
    pub session_id: Uuid,
}

fn expose<S: serde::Serializer>(
    secret: &Zeroizing<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret)
}

/// Whether `policy` requires MFA of a user with `roles`.
pub fn mfa_required(policy: &AuthPolicy, roles: &[String]) -> bool {
    let is_admin = roles.iter().any(|role| role == "owner" || role == "admin");
    match policy.mfa {
        MfaRequirement::Optional => false,
        MfaRequirement::Admins => is_admin,
        MfaRequirement::All => true,
    }
}

/// Restrictions a session of `user` starts with under `policy`.
pub(crate) fn restrictions(
    policy: &AuthPolicy,
    user: &UserRow,
    roles: &[String],
    now: OffsetDateTime,
) -> Vec<Restriction> {
    let mut restrictions = Vec::new();
    if let (Some(days), Some(changed)) = (policy.password.max_age_days, user.password_changed_at) {
        if changed + time::Duration::days(i64::from(days)) < now {
            restrictions.push(Restriction::PasswordChange);
        }
    }
    if mfa_required(policy, roles) && !user.totp_enabled {
        restrictions.push(Restriction::MfaEnrollment);
    }
    restrictions
}

fn issuer(state: &DataPlane, context: &RequestContext) -> String {
    access::issuer(
        &state.config.public_scheme,
        context.tenant.tenant.slug.as_str(),
        &state.config.base_domain,
    )
}

struct NewTokens<'a> {
    user_id: Uuid,
    session_id: Uuid,
    roles: Vec<String>,
    amr: Vec<String>,
    idp: Option<String>,
    restrictions: Vec<Restriction>,
    refresh_token: Zeroizing<String>,
    now: OffsetDateTime,
    context: &'a RequestContext,
}

async fn token_response(
    state: &DataPlane,
    tokens: NewTokens<'_>,
) -> Result<TokenResponse, IdentityError> {
    let keys = state
        .signing_keys
        .for_tenant(&state.tenant_db, &state.data_keys, &tokens.context.scope)
        .await?;
    let issuer = issuer(state, tokens.context);
    let access_token = access::issue(
        &keys,
        NewAccessToken {
            user_id: tokens.user_id,
            tenant_id: tokens.context.tenant.tenant.id,
            session_id: tokens.session_id,
            roles: tokens.roles,
            amr: tokens.amr,
            idp: tokens.idp,
            restrictions: tokens.restrictions,
            issuer: &issuer,
            now: tokens.now,
            ttl: state.config.access_token_ttl,
        },
    )?;
    Ok(TokenResponse {
        access_token,
        refresh_token: tokens.refresh_token,
        token_type: "Bearer",
        expires_in: state.config.access_token_ttl.as_secs(),
        session_id: tokens.session_id,
    })
}

/// Password sign-in. Unknown addresses, wrong passwords and users without a password all
/// answer `InvalidCredentials` after the same hashing work; failures count per address
/// (known or not) toward the tenant's lockout. A user with TOTP enabled gets an MFA
/// challenge instead of tokens (see `crate::mfa`).
pub async fn login(
    state: &DataPlane,
    context: &RequestContext,
    email: &Email,
    password: &Password,
    client: Client<'_>,
) -> Result<LoginOutcome, IdentityError> {
    let now = state.clock.now();
    let scope = &context.scope;
    let attempt = |user_id, outcome| Attempt {
        email: email.as_str(),
        user_id,
        method: "password",
        outcome,
        ip: client.ip,
        user_agent: client.user_agent,
    };

    let ticket = state.password_hasher.admit(context.tenant.tenant.id)?;
    let mut transaction = state.tenant_db.begin(scope).await?;
    // A domain bound to a provider that requires SSO never signs in with a password: refused
    // before any password work, and not counted toward the lockout.
    let sso_binding = crate::sso::store::domain_binding(&mut transaction, email.domain()).await?;
    if let Some(binding) = sso_binding.filter(|binding| binding.require_sso) {
        store::record_attempt(&mut transaction, &attempt(None, "sso_required")).await?;
        transaction.commit().await?;
        return Err(IdentityError::SsoRequired {
            provider: binding.provider_name,
        });
    }
    let policy = store::policy(&mut transaction).await?;
    if let Some(until) = store::locked_until(&mut transaction, email.as_str(), now).await? {
        store::record_attempt(&mut transaction, &attempt(None, "locked")).await?;
        transaction.commit().await?;
        let retry_after = (until - now).whole_seconds().max(1).unsigned_abs();
        return Err(IdentityError::Locked { retry_after });
    }
    let user = store::user_by_email(&mut transaction, email).await?;
    transaction.commit().await?;

    let stored_hash = user.as_ref().and_then(|user| user.password_hash.clone());
    let verdict = if password.as_str().chars().count() > MAX_PASSWORD_LENGTH {
        state
            .password_hasher
            .verify(&ticket, &Password::new(String::new()), None)
            .await?
    } else {
        state
            .password_hasher
            .verify(&ticket, password, stored_hash)
            .await?
    };

    // A hash made with weaker parameters than today's is re-made now, before the transaction
    // opens: argon2 never runs while a pooled connection is held.
    let rehashed = match (&user, verdict) {
        (Some(_), Verdict::Right { needs_rehash: true }) => {
            Some(state.password_hasher.hash(&ticket, password).await?)
        }
        _ => None,
    };
    drop(ticket);
    let mut transaction = state.tenant_db.begin(scope).await?;
    let user = match (user, verdict) {
        (Some(user), Verdict::Right { .. }) => user,
        (user, _) => {
            let user_id = user.map(|user| user.id);
            store::record_failure(&mut transaction, email.as_str(), &policy, now).await?;
            store::record_attempt(&mut transaction, &attempt(user_id, "invalid_credentials"))
                .await?;
            transaction.commit().await?;
            return Err(IdentityError::InvalidCredentials);
        }
    };
    let refused = match user.status.as_str() {
        "active" => None,
        "disabled" => Some(("disabled", IdentityError::AccountDisabled)),
        _ => Some(("email_not_verified", IdentityError::EmailNotVerified)),
    };
    if let Some((outcome, error)) = refused {
        store::record_attempt(&mut transaction, &attempt(Some(user.id), outcome)).await?;
        transaction.commit().await?;
        return Err(error);
    }
    if let Some(rehashed) = &rehashed {
        store::rehash(&mut transaction, user.id, rehashed).await?;
    }
    if user.totp_enabled {
        // Failures are cleared only when the second factor succeeds: otherwise each right
        // password would reset the count of wrong codes.
        let challenge = mfa_challenge(state, &mut transaction, user.id, client, now).await?;
        store::record_attempt(&mut transaction, &attempt(Some(user.id), "mfa_required")).await?;
        transaction.commit().await?;
        return Ok(LoginOutcome::MfaRequired(challenge));
    }
    store::clear_failures(&mut transaction, email.as_str()).await?;
    store::record_attempt(&mut transaction, &attempt(Some(user.id), "success")).await?;
    let session = NewSignIn {
        user: &user,
        policy: &policy,
        amr: vec!["pwd".to_owned()],
        idp: None,
        client,
        now,
    };
    Ok(LoginOutcome::Tokens(
        open_session(state, context, transaction, session).await?,
    ))
}

/// What a password sign-in answers: tokens, or the second step when the user has MFA.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(examples(
    json!({
        "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6ImsyMDI2MTIwNiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzYTViOS00YzJkLTdlMWYtYTNiNC1jNWQ2ZTdmOGE5YjAifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU",
        "refresh_token": "tnrt_t8P3qx1leczQr713u8L-I-NOKdh_AIcse3bfZ3Iiv6s",
        "token_type": "Bearer",
        "expires_in": 900
    }),
    json!({ "mfa_required": true, "mfa_token": "tnmf_iycz5rbS4qMRTWTsXNmPsHl59aBfSB2ova4wQMRLoYo", "expires_in": 300 })
))]
pub enum LoginOutcome {
    Tokens(TokenResponse),
    MfaRequired(MfaChallenge),
}

/// The second step of a sign-in with MFA: the single-use token to present with a code at
/// `POST /v1/auth/mfa/verify`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(examples(json!({
    "mfa_required": true,
    "mfa_token": "tnmf_iycz5rbS4qMRTWTsXNmPsHl59aBfSB2ova4wQMRLoYo",
    "expires_in": 300
})))]
pub struct MfaChallenge {
    pub mfa_required: bool,
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    pub mfa_token: Zeroizing<String>,
    pub expires_in: u64,
}

async fn mfa_challenge(
    state: &DataPlane,
    transaction: &mut shared::tenant_context::TenantTransaction,
    user_id: Uuid,
    client: Client<'_>,
    now: OffsetDateTime,
) -> Result<MfaChallenge, IdentityError> {
    let token = SecretToken::generate(&state.rng, mfa::CHALLENGE_PREFIX)
        .map_err(crate::tokens::TokenError::from)?;
    let lifetime = mfa::CHALLENGE_LIFETIME;
    let challenge = mfa::store::NewChallenge {
        digest: token.digest(),
        user_id,
        now,
        expires_at: now + lifetime,
        ip: client.ip,
        user_agent: client.user_agent,
    };
    mfa::store::insert_challenge(transaction, &challenge).await?;
    Ok(MfaChallenge {
        mfa_required: true,
        mfa_token: token.into_text(),
        expires_in: lifetime.unsigned_abs().as_secs(),
    })
}

/// A user who has proved who they are, about to get a session.
pub struct NewSignIn<'a> {
    pub user: &'a UserRow,
    pub policy: &'a AuthPolicy,
    /// How they proved it (`pwd`, `otp`, …), kept on the session and put in its tokens.
    pub amr: Vec<String>,
    /// The identity provider's name after an SSO sign-in.
    pub idp: Option<&'a str>,
    pub client: Client<'a>,
    pub now: OffsetDateTime,
}

/// Starts a session in `transaction` (ending the oldest beyond the policy's limit), commits
/// it and issues the first token pair. Used by password sign-in and by the MFA step.
pub async fn open_session(
    state: &DataPlane,
    context: &RequestContext,
    mut transaction: shared::tenant_context::TenantTransaction,
    sign_in: NewSignIn<'_>,
) -> Result<TokenResponse, IdentityError> {
    let NewSignIn {
        user,
        policy,
        amr,
        idp,
        client,
        now,
    } = sign_in;
    let roles = store::role_names(&mut transaction, user.id).await?;
    let session_id = sessions::create(
        &mut transaction,
        &NewSession {
            user_id: user.id,
            now,
            expires_at: now
                + time::Duration::hours(i64::from(policy.sessions.absolute_lifetime_hours)),
            amr: &amr,
            idp,
            ip: client.ip,
            user_agent: client.user_agent,
        },
    )
    .await?;
    sessions::revoke(
        &mut transaction,
        context.tenant.tenant.id,
        Revoke::Oldest {
            user_id: user.id,
            keep: i64::from(policy.sessions.max_concurrent),
        },
        "session_limit",
    )
    .await?;
    let refresh_token =
        refresh::rotate(&mut transaction, &state.rng, session_id, None, now).await?;
    let restrictions = restrictions(policy, user, &roles, now);
    transaction.commit().await?;

    token_response(
        state,
        NewTokens {
            user_id: user.id,
            session_id,
            roles,
            amr,
            idp: idp.map(str::to_owned),
            restrictions,
            refresh_token: refresh_token.into_text(),
            now,
            context,
        },
    )
    .await
}

/// Exchanges a refresh token for a new pair (see `tokens::refresh` for the rotation rule).
pub async fn refresh(
    state: &DataPlane,
    context: &RequestContext,
    presented: &str,
    client: Client<'_>,
) -> Result<TokenResponse, IdentityError> {
    if !well_formed(presented, refresh::PREFIX) {
        return Err(IdentityError::InvalidRefreshToken);
    }
    let now = state.clock.now();
    let tenant_id = context.tenant.tenant.id;
    let digest = token_digest(presented);
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let session_id = match refresh::find_for_update(&mut transaction, &digest, now).await? {
        Presented::Unknown => return Err(IdentityError::InvalidRefreshToken),
        Presented::Used { ago, .. } if ago <= REUSE_GRACE => {
            return Err(IdentityError::RefreshAlreadyUsed)
        }
        Presented::Used { session_id, .. } => {
            if let Some(session) = sessions::get(&mut transaction, session_id).await? {
                let which = Revoke::One {
                    user_id: session.user_id,
                    session_id,
                };
                sessions::revoke(&mut transaction, tenant_id, which, "refresh_token_reuse").await?;
            }
            transaction.commit().await?;
            return Err(IdentityError::RefreshReused);
        }
        Presented::Live { session_id } => session_id,
    };
    let session = sessions::get(&mut transaction, session_id)
        .await?
        .ok_or(IdentityError::InvalidRefreshToken)?;
    let policy = store::policy(&mut transaction).await?;
    let idle_deadline = session.last_seen_at
        + time::Duration::minutes(i64::from(policy.sessions.idle_timeout_minutes));
    if session.revoked || session.expires_at <= now || idle_deadline <= now {
        return Err(IdentityError::InvalidRefreshToken);
    }
    let user = store::user_by_id(&mut transaction, session.user_id)
        .await?
        .filter(|user| user.status == "active");
    let Some(user) = user else {
        let which = Revoke::One {
            user_id: session.user_id,
            session_id,
        };
        sessions::revoke(&mut transaction, tenant_id, which, "user_inactive").await?;
        transaction.commit().await?;
        return Err(IdentityError::InvalidRefreshToken);
    };
    let roles = store::role_names(&mut transaction, user.id).await?;
    let refresh_token =
        refresh::rotate(&mut transaction, &state.rng, session_id, Some(&digest), now).await?;
    sessions::touch(&mut transaction, session_id, now, client.ip).await?;
    let restrictions = restrictions(&policy, &user, &roles, now);
    transaction.commit().await?;
    token_response(
        state,
        NewTokens {
            user_id: user.id,
            session_id,
            roles,
            amr: session.amr,
            idp: session.idp,
            restrictions,
            refresh_token: refresh_token.into_text(),
            now,
            context,
        },
    )
    .await
}

/// Sets the first password of an invited or newly created user, with the token mailed to
/// them (or returned by `tenant create --admin-email`). The token is spent only when the
/// password is accepted.
pub async fn activate(
    state: &DataPlane,
    context: &RequestContext,
    token: &str,
    password: &Password,
) -> Result<Uuid, IdentityError> {
    if !well_formed(token, USER_TOKEN_PREFIX) {
        return Err(IdentityError::InvalidToken);
    }
    let digest = token_digest(token);
    let now = state.clock.now();
    let scope = &context.scope;
    let ticket = state.password_hasher.admit(context.tenant.tenant.id)?;
    let mut transaction = state.tenant_db.begin(scope).await?;
    let target = store::activation_target(&mut transaction, &digest, now).await?;
    let policy = store::policy(&mut transaction).await?;
    transaction.commit().await?;
    let Some((user_id, email)) = target else {
        return Err(IdentityError::InvalidToken);
    };
    let failed = policy.password.violations(password.as_str(), &email);
    if !failed.is_empty() {
        return Err(IdentityError::WeakPassword(failed));
    }
    let hash = state.password_hasher.hash(&ticket, password).await?;
    drop(ticket);

    let mut transaction = state.tenant_db.begin(scope).await?;
    let purposes = ["activation", "invitation"];
    if store::take_user_token(&mut transaction, &digest, &purposes, now).await? != Some(user_id) {
        return Err(IdentityError::InvalidToken); // spent concurrently
    }
    store::set_password(
        &mut transaction,
        user_id,
        &hash,
        now,
        policy.password.history,
        true,
    )
    .await?;
    transaction.commit().await?;
    Ok(user_id)
}

/// Changes the caller's password; every other session of theirs ends.
pub async fn change_password(
    state: &DataPlane,
    context: &RequestContext,
    principal: &crate::tenancy::Principal,
    current: &Password,
    new: &Password,
) -> Result<(), IdentityError> {
    let scope = &context.scope;
    let ticket = state.password_hasher.admit(context.tenant.tenant.id)?;
    let mut transaction = state.tenant_db.begin(scope).await?;
    let user = store::user_by_id(&mut transaction, principal.user_id)
        .await?
        .ok_or(IdentityError::InvalidCredentials)?;
    let policy = store::policy(&mut transaction).await?;
    let history =
        store::password_history(&mut transaction, user.id, policy.password.history).await?;
    transaction.commit().await?;

    if state
        .password_hasher
        .verify(&ticket, current, user.password_hash.clone())
        .await?
        == Verdict::Wrong
    {
        return Err(IdentityError::InvalidCredentials);
    }
    let failed = state
        .password_hasher
        .refusals_of_new(
            &ticket,
            &policy.password,
            new,
            user.email.as_str(),
            history.into_iter().chain(user.password_hash.clone()),
        )
        .await?;
    if !failed.is_empty() {
        return Err(IdentityError::WeakPassword(failed));
    }
    let hash = state.password_hasher.hash(&ticket, new).await?;
    drop(ticket);
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(scope).await?;
    store::set_password(
        &mut transaction,
        user.id,
        &hash,
        now,
        policy.password.history,
        false,
    )
    .await?;
    sessions::revoke(
        &mut transaction,
        context.tenant.tenant.id,
        Revoke::AllOf {
            user_id: user.id,
            except: Some(principal.session_id),
        },
        "password_changed",
    )
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// What `GET /v1/me` shows.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: Email,
    pub display_name: String,
    pub status: String,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub roles: Vec<String>,
    pub session_id: Uuid,
    pub amr: Vec<String>,
    pub restrictions: Vec<Restriction>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The signed-in user's new display name (1 to 200 characters, no control characters); the
/// user as `me` shows them. An SSO user's name follows their IdP again at their next SSO
/// sign-in.
pub async fn rename(
    state: &DataPlane,
    context: &RequestContext,
    principal: &crate::tenancy::Principal,
    display_name: &str,
) -> Result<Me, IdentityError> {
    let name = crate::users::service::display_name(Some(display_name))
        .map_err(|error| IdentityError::InvalidInput(error.to_string()))?;
    if name.is_empty() {
        return Err(IdentityError::InvalidInput(
            "display_name must not be empty".to_owned(),
        ));
    }
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::set_display_name(&mut transaction, principal.user_id, &name).await?;
    transaction.commit().await?;
    me(state, context, principal).await
}

pub async fn me(
    state: &DataPlane,
    context: &RequestContext,
    principal: &crate::tenancy::Principal,
) -> Result<Me, IdentityError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let user = store::user_by_id(&mut transaction, principal.user_id)
        .await?
        .ok_or(IdentityError::InvalidCredentials)?;
    let roles = store::role_names(&mut transaction, user.id).await?;
    transaction.commit().await?;
    Ok(Me {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        status: user.status,
        email_verified: user.email_verified,
        mfa_enabled: user.totp_enabled,
        roles,
        session_id: principal.session_id,
        amr: principal.amr.clone(),
        restrictions: principal.restrictions.clone(),
        created_at: user.created_at,
    })
}
