//! The rules of the mailbox flows. Input arrives parsed; every database step runs in the
//! tenant's transaction; password hashing runs between transactions so it never holds a
//! pooled connection. A token and the mail that carries it are written in one transaction.

use shared::account_mail::{self, AccountMail, TenantSite};
use shared::email::Email;
use shared::secret_token::{token_digest, well_formed, SecretToken, USER_TOKEN_PREFIX};
use shared::tenant_context::TenantTransaction;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::store;
use super::AccountsError;
use crate::identity::passwords::Password;
use crate::identity::store as identity;
use crate::mail::{self, OutgoingMail};
use crate::sessions::store::{self as sessions, Revoke};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// Account mails sent per address and purpose within [`THROTTLE_WINDOW`]; further requests
/// are answered as usual and send nothing.
pub const MAILS_PER_HOUR: i64 = 3;
const THROTTLE_WINDOW: Duration = Duration::hours(1);
/// Longest display name accepted at registration, in characters.
const MAX_DISPLAY_NAME: usize = 200;

/// What a kind of account mail is, as recorded for the throttle (and, for the token mails,
/// the `user_tokens.purpose` of the token it carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    EmailVerification,
    PasswordReset,
    AlreadyRegistered,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::EmailVerification => "email_verification",
            Purpose::PasswordReset => "password_reset",
            Purpose::AlreadyRegistered => "already_registered",
        }
    }
}

fn site<'a>(state: &'a DataPlane, context: &'a RequestContext) -> TenantSite<'a> {
    TenantSite {
        scheme: &state.config.public_scheme,
        slug: context.tenant.tenant.slug.as_str(),
        base_domain: &state.config.base_domain,
        tenant_name: &context.tenant.tenant.name,
    }
}

/// Whether another mail of `purpose` may go to `email` now. Call with the address locked
/// ([`store::lock_address`]), so concurrent requests count each other's mails.
async fn may_mail(
    transaction: &mut TenantTransaction,
    email: &Email,
    purpose: Purpose,
    now: OffsetDateTime,
) -> Result<bool, AccountsError> {
    let sent = store::mails_sent_since(transaction, email, purpose.as_str(), now - THROTTLE_WINDOW)
        .await?;
    if sent >= MAILS_PER_HOUR {
        tracing::info!(
            purpose = purpose.as_str(),
            "account mail throttled for this address"
        );
        return Ok(false);
    }
    Ok(true)
}

/// Queues `message` to `email` in the caller's transaction and counts it for the throttle.
async fn queue_mail(
    transaction: &mut TenantTransaction,
    context: &RequestContext,
    email: &Email,
    purpose: Purpose,
    message: AccountMail,
    now: OffsetDateTime,
) -> Result<(), AccountsError> {
    let outgoing = OutgoingMail::new(email.as_str(), message.subject, message.body_text)?;
    store::record_mail_sent(
        transaction,
        email,
        purpose.as_str(),
        now,
        now - THROTTLE_WINDOW,
    )
    .await?;
    mail::enqueue(transaction, context.tenant.tenant.id, &outgoing).await?;
    tracing::info!(purpose = purpose.as_str(), "account mail queued");
    Ok(())
}

/// A mail that carries a new token: what it is for, how long the token is good for, and
/// its text.
struct TokenMail {
    purpose: Purpose,
    valid_hours: u32,
    text: fn(&TenantSite<'_>, &str, u32) -> AccountMail,
}

const VERIFICATION_MAIL: TokenMail = TokenMail {
    purpose: Purpose::EmailVerification,
    valid_hours: 24,
    text: account_mail::email_verification,
};

const RESET_MAIL: TokenMail = TokenMail {
    purpose: Purpose::PasswordReset,
    valid_hours: 1,
    text: account_mail::password_reset,
};

/// Makes a token for `user_id`, stores its digest, and queues the mail that carries it, in
/// the caller's transaction. The token's text lives only in the mail.
async fn mail_new_token(
    state: &DataPlane,
    transaction: &mut TenantTransaction,
    context: &RequestContext,
    (user_id, email): (Uuid, &Email),
    kind: &TokenMail,
    now: OffsetDateTime,
) -> Result<(), AccountsError> {
    let token = SecretToken::generate(&state.rng, USER_TOKEN_PREFIX)?;
    let expires_at = now + Duration::hours(i64::from(kind.valid_hours));
    store::insert_user_token(
        transaction,
        token.digest(),
        user_id,
        kind.purpose.as_str(),
        now,
        expires_at,
    )
    .await?;
    let message = (kind.text)(&site(state, context), token.as_str(), kind.valid_hours);
    queue_mail(transaction, context, email, kind.purpose, message, now).await
}

/// A registration as received.
pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub display_name: Option<String>,
}

fn display_name(raw: Option<&str>) -> Result<String, AccountsError> {
    let name = raw.unwrap_or_default().trim();
    if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
        return Err(AccountsError::InvalidInput(format!(
            "display_name must be at most {MAX_DISPLAY_NAME} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

/// Self-registration, when the tenant allows it: a new address gets a `pending` user and a
/// verification mail; a known one gets the "you already have an account" notice and nothing
/// else changes. The caller cannot tell which happened: the answer is the same, and the
/// password is hashed in both cases.
pub async fn register(
    state: &DataPlane,
    context: &RequestContext,
    registration: Registration,
) -> Result<(), AccountsError> {
    let scope = &context.scope;
    let email = &registration.email;
    let display_name = display_name(registration.display_name.as_deref())?;

    let ticket = state.password_hasher.admit(context.tenant.tenant.id)?;
    let mut transaction = state.tenant_db.begin(scope).await?;
    let policy = identity::policy(&mut transaction).await?;
    transaction.commit().await?;
    if !policy.self_signup {
        return Err(AccountsError::SelfSignupDisabled);
    }
    let failed = policy
        .password
        .violations(registration.password.as_str(), email.as_str());
    if !failed.is_empty() {
        return Err(AccountsError::WeakPassword(failed));
    }
    let hash = state
        .password_hasher
        .hash(&ticket, &registration.password)
        .await?;
    drop(ticket);

    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(scope).await?;
    // Before looking at the address: a full tenant refuses every registration alike, so the
    // refusal tells nothing about which addresses have accounts.
    crate::quotas::reserve_user_seat(&mut transaction, &context.tenant.quotas).await?;
    store::lock_address(&mut transaction, email).await?;
    if identity::user_by_email(&mut transaction, email)
        .await?
        .is_some()
    {
        if may_mail(&mut transaction, email, Purpose::AlreadyRegistered, now).await? {
            let notice = account_mail::already_registered(&site(state, context));
            queue_mail(
                &mut transaction,
                context,
                email,
                Purpose::AlreadyRegistered,
                notice,
                now,
            )
            .await?;
        }
        transaction.commit().await?;
        return Ok(());
    }
    let user_id = Uuid::now_v7();
    if !store::insert_pending_user(&mut transaction, user_id, email, &display_name, now).await? {
        // A directory's name for another user: nobody can register it, and the answer is
        // the same as for any address (nothing made, nothing sent).
        return Ok(());
    }
    identity::set_password(
        &mut transaction,
        user_id,
        &hash,
        now,
        policy.password.history,
        false,
    )
    .await?;
    // A new address has no sends in the window unless its earlier user was deleted; the
    // throttle still applies then.
    if may_mail(&mut transaction, email, Purpose::EmailVerification, now).await? {
        mail_new_token(
            state,
            &mut transaction,
            context,
            (user_id, email),
            &VERIFICATION_MAIL,
            now,
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}

/// Spends a verification token: its user's address is verified and a `pending` user becomes
/// `active`. Every other verification token of the user is spent with it.
pub async fn verify_email(
    state: &DataPlane,
    context: &RequestContext,
    token: &str,
) -> Result<Uuid, AccountsError> {
    if !well_formed(token, USER_TOKEN_PREFIX) {
        return Err(AccountsError::InvalidToken);
    }
    let digest = token_digest(token);
    let now = state.clock.now();
    let purpose = Purpose::EmailVerification.as_str();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let Some(user_id) =
        identity::take_user_token(&mut transaction, &digest, &[purpose], now).await?
    else {
        return Err(AccountsError::InvalidToken);
    };
    store::mark_email_verified(&mut transaction, user_id, now).await?;
    store::spend_user_tokens(&mut transaction, user_id, purpose, now).await?;
    transaction.commit().await?;
    Ok(user_id)
}

/// Mails a new verification token, but only to a `pending` user and within the throttle.
pub async fn resend_verification(
    state: &DataPlane,
    context: &RequestContext,
    email: &Email,
) -> Result<(), AccountsError> {
    mail_token_if(state, context, email, "pending", &VERIFICATION_MAIL).await
}

/// Mails a password-reset token, but only to an `active` user and within the throttle.
pub async fn request_password_reset(
    state: &DataPlane,
    context: &RequestContext,
    email: &Email,
) -> Result<(), AccountsError> {
    mail_token_if(state, context, email, "active", &RESET_MAIL).await
}

/// Mails `mail`'s new token to `email`, but only when the address is a user's whose status is
/// `status`, and within the throttle of the mail's purpose. The caller answers the same either
/// way, so nobody learns which addresses have accounts.
async fn mail_token_if(
    state: &DataPlane,
    context: &RequestContext,
    email: &Email,
    status: &str,
    mail: &TokenMail,
) -> Result<(), AccountsError> {
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::lock_address(&mut transaction, email).await?;
    let user = identity::user_by_email(&mut transaction, email)
        .await?
        .filter(|user| user.status == status);
    if let Some(user) = user {
        if may_mail(&mut transaction, email, mail.purpose, now).await? {
            mail_new_token(
                state,
                &mut transaction,
                context,
                (user.id, email),
                mail,
                now,
            )
            .await?;
        }
    }
    transaction.commit().await?;
    Ok(())
}

/// Sets a new password with a reset token. A password the policy or the history refuses
/// leaves the token usable; an accepted one spends every reset token of the user, ends every
/// session of theirs and clears the address's sign-in lockout.
pub async fn confirm_password_reset(
    state: &DataPlane,
    context: &RequestContext,
    token: &str,
    password: &Password,
) -> Result<(), AccountsError> {
    if !well_formed(token, USER_TOKEN_PREFIX) {
        return Err(AccountsError::InvalidToken);
    }
    let digest = token_digest(token);
    let purpose = Purpose::PasswordReset.as_str();
    let scope = &context.scope;

    let now = state.clock.now();
    let ticket = state.password_hasher.admit(context.tenant.tenant.id)?;
    let mut transaction = state.tenant_db.begin(scope).await?;
    let user = match store::live_token_user(&mut transaction, &digest, purpose, now).await? {
        Some(user_id) => identity::user_by_id(&mut transaction, user_id)
            .await?
            .filter(|user| user.status == "active"),
        None => None,
    };
    let Some(user) = user else {
        return Err(AccountsError::InvalidToken);
    };
    let policy = identity::policy(&mut transaction).await?;
    let history =
        identity::password_history(&mut transaction, user.id, policy.password.history).await?;
    transaction.commit().await?;

    let failed = state
        .password_hasher
        .refusals_of_new(
            &ticket,
            &policy.password,
            password,
            user.email.as_str(),
            history.into_iter().chain(user.password_hash.clone()),
        )
        .await?;
    if !failed.is_empty() {
        return Err(AccountsError::WeakPassword(failed));
    }
    let hash = state.password_hasher.hash(&ticket, password).await?;
    drop(ticket);

    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(scope).await?;
    if identity::take_user_token(&mut transaction, &digest, &[purpose], now).await? != Some(user.id)
    {
        return Err(AccountsError::InvalidToken); // spent or expired meanwhile
    }
    identity::set_password(
        &mut transaction,
        user.id,
        &hash,
        now,
        policy.password.history,
        false,
    )
    .await?;
    store::spend_user_tokens(&mut transaction, user.id, purpose, now).await?;
    sessions::revoke(
        &mut transaction,
        context.tenant.tenant.id,
        Revoke::AllOf {
            user_id: user.id,
            except: None,
        },
        "password_reset",
    )
    .await?;
    identity::clear_failures(&mut transaction, user.email.as_str()).await?;
    transaction.commit().await?;
    Ok(())
}
