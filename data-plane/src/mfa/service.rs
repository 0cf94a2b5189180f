//! The rules of TOTP MFA: enrolment, backup codes, turning it off, and the second step of a
//! sign-in. Every database step runs in the tenant's transaction; password checks (argon2)
//! run between transactions.

use serde::Serialize;
use shared::secret_token::{token_digest, well_formed};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::codes::{self, OneTimeCode, TotpCode, BACKUP_CODE_KEY_PURPOSE};
use super::store;
use super::totp::TotpSecret;
use super::{MfaError, CHALLENGE_PREFIX, MAX_CHALLENGE_FAILURES};
use crate::identity::passwords::{Password, Verdict};
use crate::identity::service::{self as identity, Client, NewSignIn, TokenResponse};
use crate::identity::store::{self as users, Attempt};
use crate::identity::IdentityError;
use crate::state::DataPlane;
use crate::tenancy::data_keys::TenantDataKeys;
use crate::tenancy::{Principal, RequestContext};
use shared::tenant_context::TenantTransaction;

/// What `GET /v1/me/mfa` shows.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MfaStatus {
    pub totp_enabled: bool,
    pub backup_codes_remaining: i64,
    /// Whether the tenant's policy requires MFA of this user.
    pub required: bool,
}

pub async fn status(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
) -> Result<MfaStatus, MfaError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let totp = store::totp_state(&mut transaction, principal.user_id)
        .await?
        .ok_or(MfaError::Identity(IdentityError::InvalidCredentials))?;
    let remaining = store::backup_codes_remaining(&mut transaction, principal.user_id).await?;
    let policy = users::policy(&mut transaction).await?;
    let roles = users::role_names(&mut transaction, principal.user_id).await?;
    transaction.commit().await?;
    Ok(MfaStatus {
        totp_enabled: totp.enabled,
        backup_codes_remaining: if totp.enabled { remaining } else { 0 },
        required: identity::mfa_required(&policy, &roles),
    })
}

/// What `POST /v1/me/mfa/totp/setup` answers, once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpSetup {
    /// The shared secret, base32.
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    pub secret: Zeroizing<String>,
    /// The `otpauth://totp/…` URI authenticator apps read.
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    pub otpauth_uri: Zeroizing<String>,
    /// The URI as a QR code (SVG).
    pub qr_svg: String,
}

fn expose<S: serde::Serializer>(
    secret: &Zeroizing<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret)
}

/// Makes a new pending secret (replacing any earlier pending one). It signs nothing until
/// `enable` proves the user's authenticator has it.
pub async fn setup(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
) -> Result<TotpSetup, MfaError> {
    let tenant_id = context.tenant.tenant.id;
    let data_keys = state.data_keys.for_tenant(tenant_id).await?;
    let (version, data_key) = data_keys.current()?;
    let secret = TotpSecret::generate(&state.rng)?;
    let sealed = data_key.seal(
        &state.rng,
        &TotpSecret::sealing_context(tenant_id, principal.user_id),
        secret.as_bytes(),
    )?;
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let user = users::user_by_id(&mut transaction, principal.user_id)
        .await?
        .ok_or(MfaError::Identity(IdentityError::InvalidCredentials))?;
    if !store::set_pending_secret(&mut transaction, user.id, &sealed, version, now).await? {
        return Err(MfaError::AlreadyEnabled);
    }
    transaction.commit().await?;
    let enrolment = secret.enrolment(context.tenant.tenant.slug.as_str(), user.email.as_str())?;
    Ok(TotpSetup {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
        qr_svg: enrolment.qr_svg,
    })
}

/// Backup codes, shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BackupCodes {
    pub backup_codes: Vec<String>,
}

/// Opens the user's stored secret.
fn open_secret(
    data_keys: &TenantDataKeys,
    context: &RequestContext,
    user_id: uuid::Uuid,
    sealed: &(Vec<u8>, i32),
) -> Result<TotpSecret, MfaError> {
    let (sealed, version) = sealed;
    let context = TotpSecret::sealing_context(context.tenant.tenant.id, user_id);
    let bytes = data_keys.version(*version)?.open(&context, sealed)?;
    Ok(TotpSecret::from_bytes(bytes))
}

/// What checking a TOTP code found.
enum Checked {
    Accepted,
    Wrong,
    Replayed,
}

/// Checks `code` against the user's secret and, when valid, records its step so it cannot be
/// used again.
async fn check_totp(
    transaction: &mut TenantTransaction,
    secret: &TotpSecret,
    user_id: uuid::Uuid,
    code: &TotpCode,
    now: OffsetDateTime,
) -> Result<Checked, MfaError> {
    let Some(step) = secret.check(code.as_str(), now)? else {
        return Ok(Checked::Wrong);
    };
    Ok(if store::accept_step(transaction, user_id, step).await? {
        Checked::Accepted
    } else {
        Checked::Replayed
    })
}

async fn new_backup_codes(
    state: &DataPlane,
    context: &RequestContext,
    transaction: &mut TenantTransaction,
    user_id: uuid::Uuid,
) -> Result<BackupCodes, MfaError> {
    let key = state.password_hasher.derived_key(BACKUP_CODE_KEY_PURPOSE);
    let fresh = codes::generate_backup_codes(&state.rng)?;
    let digests: Vec<Vec<u8>> = fresh
        .iter()
        .map(|code| codes::backup_code_digest(&key, context.tenant.tenant.id, user_id, code))
        .collect();
    store::replace_backup_codes(transaction, user_id, &digests).await?;
    Ok(BackupCodes {
        backup_codes: fresh.iter().map(|code| code.to_string()).collect(),
    })
}

/// Turns TOTP on with a code from the pending secret; returns the first backup codes.
pub async fn enable(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
    code: &TotpCode,
) -> Result<BackupCodes, MfaError> {
    let data_keys = state.data_keys.for_tenant(context.tenant.tenant.id).await?;
    let now = state.clock.now();
    let user_id = principal.user_id;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let totp = store::totp_state(&mut transaction, user_id)
        .await?
        .ok_or(MfaError::SetupRequired)?;
    if totp.enabled {
        return Err(MfaError::AlreadyEnabled);
    }
    let sealed = totp.sealed_secret.ok_or(MfaError::SetupRequired)?;
    let secret = open_secret(&data_keys, context, user_id, &sealed)?;
    match check_totp(&mut transaction, &secret, user_id, code, now).await? {
        Checked::Accepted => {}
        Checked::Wrong => return Err(MfaError::InvalidCode),
        Checked::Replayed => return Err(MfaError::CodeReused),
    }
    if !store::enable(&mut transaction, user_id, now).await? {
        return Err(MfaError::AlreadyEnabled);
    }
    let codes = new_backup_codes(state, context, &mut transaction, user_id).await?;
    transaction.commit().await?;
    Ok(codes)
}

/// Checks a current TOTP code of an enabled user in `transaction`.
async fn require_current_code(
    state: &DataPlane,
    context: &RequestContext,
    transaction: &mut TenantTransaction,
    user_id: uuid::Uuid,
    code: &TotpCode,
) -> Result<(), MfaError> {
    let data_keys = state.data_keys.for_tenant(context.tenant.tenant.id).await?;
    let totp = store::totp_state(transaction, user_id)
        .await?
        .filter(|totp| totp.enabled)
        .ok_or(MfaError::NotEnabled)?;
    let sealed = totp.sealed_secret.ok_or(MfaError::NotEnabled)?;
    let secret = open_secret(&data_keys, context, user_id, &sealed)?;
    match check_totp(transaction, &secret, user_id, code, state.clock.now()).await? {
        Checked::Accepted => Ok(()),
        Checked::Wrong => Err(MfaError::InvalidCode),
        Checked::Replayed => Err(MfaError::CodeReused),
    }
}

/// Replaces the backup codes; requires a current TOTP code.
pub async fn regenerate_backup_codes(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
    code: &TotpCode,
) -> Result<BackupCodes, MfaError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    require_current_code(state, context, &mut transaction, principal.user_id, code).await?;
    let codes = new_backup_codes(state, context, &mut transaction, principal.user_id).await?;
    transaction.commit().await?;
    Ok(codes)
}

/// How the user proves it is them before turning MFA off.
pub enum Proof {
    Password(Password),
    Code(TotpCode),
}

/// Turns TOTP off, unless the tenant's policy requires MFA of this user.
pub async fn disable(
    state: &DataPlane,
    context: &RequestContext,
    principal: &Principal,
    proof: &Proof,
) -> Result<(), MfaError> {
    let scope = &context.scope;
    let user_id = principal.user_id;
    let mut transaction = state.tenant_db.begin(scope).await?;
    let policy = users::policy(&mut transaction).await?;
    let roles = users::role_names(&mut transaction, user_id).await?;
    if identity::mfa_required(&policy, &roles) {
        return Err(MfaError::RequiredByPolicy);
    }
    let user = users::user_by_id(&mut transaction, user_id)
        .await?
        .ok_or(MfaError::NotEnabled)?;
    if !user.totp_enabled {
        return Err(MfaError::NotEnabled);
    }
    match proof {
        Proof::Code(code) => {
            require_current_code(state, context, &mut transaction, user_id, code).await?;
        }
        Proof::Password(password) => {
            // No transaction is held while argon2 runs or while it waits for a permit.
            transaction.commit().await?;
            let ticket = state.password_hasher.admit(context.tenant.tenant.id)?;
            let verdict = state
                .password_hasher
                .verify(&ticket, password, user.password_hash.clone())
                .await?;
            drop(ticket);
            if verdict == Verdict::Wrong {
                return Err(MfaError::WrongPassword);
            }
            transaction = state.tenant_db.begin(scope).await?;
        }
    }
    store::disable(&mut transaction, user_id, state.clock.now()).await?;
    transaction.commit().await?;
    Ok(())
}

/// The second step of a sign-in: a challenge from `POST /v1/auth/login` and a TOTP or backup
/// code. Success spends the challenge and starts the session; a wrong code counts against the
/// challenge (dead after [`MAX_CHALLENGE_FAILURES`]) and against the address's lockout.
pub async fn verify(
    state: &DataPlane,
    context: &RequestContext,
    mfa_token: &str,
    code: &OneTimeCode,
    client: Client<'_>,
) -> Result<TokenResponse, MfaError> {
    if !well_formed(mfa_token, CHALLENGE_PREFIX) {
        return Err(MfaError::InvalidChallenge);
    }
    let digest = token_digest(mfa_token);
    let tenant_id = context.tenant.tenant.id;
    let data_keys = state.data_keys.for_tenant(tenant_id).await?;
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    // Locks are taken in one order everywhere: the user's row, then their challenges (disable
    // does the same), so concurrent requests wait for each other instead of deadlocking.
    let user_id = store::challenge_user(&mut transaction, &digest)
        .await?
        .ok_or(MfaError::InvalidChallenge)?;
    let totp = store::totp_state(&mut transaction, user_id)
        .await?
        .filter(|totp| totp.enabled)
        .ok_or(MfaError::InvalidChallenge)?;
    store::challenge_for_update(&mut transaction, &digest)
        .await?
        .filter(|challenge| {
            challenge.user_id == user_id
                && !challenge.used
                && challenge.expires_at > now
                && challenge.failures < MAX_CHALLENGE_FAILURES
        })
        .ok_or(MfaError::InvalidChallenge)?;
    let user = users::user_by_id(&mut transaction, user_id)
        .await?
        .filter(|user| user.status == "active")
        .ok_or(MfaError::InvalidChallenge)?;
    let policy = users::policy(&mut transaction).await?;
    let method = match code {
        OneTimeCode::Totp(_) => "totp",
        OneTimeCode::Backup(_) => "backup_code",
    };
    let attempt = |outcome| Attempt {
        email: user.email.as_str(),
        user_id: Some(user.id),
        method,
        outcome,
        ip: client.ip,
        user_agent: client.user_agent,
    };
    // A locked address cannot use challenges made before the lock to keep guessing.
    if let Some(until) = users::locked_until(&mut transaction, user.email.as_str(), now).await? {
        users::record_attempt(&mut transaction, &attempt("locked")).await?;
        transaction.commit().await?;
        let retry_after = (until - now).whole_seconds().max(1).unsigned_abs();
        return Err(IdentityError::Locked { retry_after }.into());
    }

    let checked = match code {
        OneTimeCode::Totp(code) => {
            let sealed = totp.sealed_secret.ok_or(MfaError::InvalidChallenge)?;
            let secret = open_secret(&data_keys, context, user.id, &sealed)?;
            check_totp(&mut transaction, &secret, user.id, code, now).await?
        }
        OneTimeCode::Backup(code) => {
            let key = state.password_hasher.derived_key(BACKUP_CODE_KEY_PURPOSE);
            let code_digest = code.digest(&key, tenant_id, user.id);
            let used = store::use_backup_code(&mut transaction, user.id, &code_digest, now).await?;
            if used {
                Checked::Accepted
            } else {
                Checked::Wrong
            }
        }
    };
    let refused = match checked {
        Checked::Accepted => None,
        Checked::Wrong => Some(("invalid_code", MfaError::SignInCodeInvalid)),
        Checked::Replayed => Some(("replayed_code", MfaError::SignInCodeReused)),
    };
    if let Some((outcome, error)) = refused {
        store::count_challenge_failure(&mut transaction, &digest).await?;
        users::record_failure(&mut transaction, user.email.as_str(), &policy, now).await?;
        users::record_attempt(&mut transaction, &attempt(outcome)).await?;
        transaction.commit().await?;
        return Err(error);
    }
    store::spend_challenge(&mut transaction, &digest, now).await?;
    users::clear_failures(&mut transaction, user.email.as_str()).await?;
    users::record_attempt(&mut transaction, &attempt("success")).await?;
    let second_factor = if method == "totp" {
        "otp"
    } else {
        "backup_code"
    };
    let sign_in = NewSignIn {
        user: &user,
        policy: &policy,
        amr: vec!["pwd".to_owned(), second_factor.to_owned()],
        idp: None,
        client,
        now,
    };
    Ok(identity::open_session(state, context, transaction, sign_in).await?)
}

#[cfg(test)]
mod tests {
    use crate::identity::policy::{AuthPolicy, MfaRequirement};
    use crate::identity::service::mfa_required;

    #[test]
    fn the_policy_requires_mfa_of_admins_or_of_everyone() {
        let policy = |mfa| AuthPolicy {
            mfa,
            ..AuthPolicy::default()
        };
        let admin = ["admin".to_owned()];
        let owner = ["owner".to_owned(), "member".to_owned()];
        let member = ["member".to_owned()];
        assert!(!mfa_required(&policy(MfaRequirement::Optional), &admin));
        assert!(mfa_required(&policy(MfaRequirement::Admins), &admin));
        assert!(mfa_required(&policy(MfaRequirement::Admins), &owner));
        assert!(!mfa_required(&policy(MfaRequirement::Admins), &member));
        assert!(mfa_required(&policy(MfaRequirement::All), &member));
    }
}
