//! Operator accounts: people who sign in to the operator console with an email address and a
//! password (argon2id; a wrong address and a wrong password cost the same work and get the
//! same answer). A sign-in opens a console session of twelve hours, named by the digest of
//! the browser's cookie. Made with `control-plane operator account add`.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::Argon2;
use ring::rand::SecureRandom as _;
use shared::email::Email;
use shared::secret_token::{token_digest, SecretToken};
use zeroize::Zeroizing;

use super::store;
use crate::context::ControlPlane;
use crate::error::ControlError;

/// How long a console session lasts.
const SESSION_LIFETIME: time::Duration = time::Duration::hours(12);
/// Shortest operator password.
pub const MIN_PASSWORD_LENGTH: usize = 12;

/// A hash of a password nobody has, verified against when the address is unknown so that
/// both refusals take the same work (made once per process).
fn decoy_hash() -> String {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY
        .get_or_init(|| hash("no operator has this password").unwrap_or_default())
        .clone()
}

fn hash(password: &str) -> Result<String, ControlError> {
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| shared::envelope::EnvelopeError::Random)?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| ControlError::InvalidInput {
            field: "password",
            message: format!("cannot be hashed: {error}"),
        })
}

fn verify(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// Makes an account for `email` with `password`.
pub async fn add(
    control: &ControlPlane,
    email: &Email,
    password: Zeroizing<String>,
) -> Result<(), ControlError> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(ControlError::InvalidInput {
            field: "password",
            message: format!("must be at least {MIN_PASSWORD_LENGTH} characters"),
        });
    }
    let hashed = tokio::task::spawn_blocking(move || hash(&password))
        .await
        .unwrap_or_else(|_| Err(shared::envelope::EnvelopeError::Random.into()))?;
    let client = control.pool.get().await?;
    if !store::insert_account(&client, email.as_str(), &hashed).await? {
        return Err(ControlError::InvalidInput {
            field: "email",
            message: "an operator account with this address exists".to_owned(),
        });
    }
    Ok(())
}

/// Signs in: the new session cookie's secret, or `None` for a wrong address, password or
/// (when the account has two-factor on) code — one answer for all three.
pub async fn sign_in(
    control: &ControlPlane,
    email: &str,
    password: Zeroizing<String>,
    code: &str,
) -> Result<Option<Zeroizing<String>>, ControlError> {
    let email = Email::parse(email)
        .map(|email| email.as_str().to_owned())
        .ok();
    let client = control.pool.get().await?;
    let account = match &email {
        Some(email) => store::account_by_email(&client, email).await?,
        None => None,
    };
    drop(client);
    let stored = account
        .as_ref()
        .map_or_else(decoy_hash, |account| account.password_hash.clone());
    let right = tokio::task::spawn_blocking(move || verify(&password, &stored))
        .await
        .unwrap_or(false);
    let Some(account) = account.filter(|_| right) else {
        return Ok(None);
    };
    let account_id = account.id;
    if let Some(sealed) = &account.totp_secret {
        let Some(step) = code_step(control, account_id, sealed, code)? else {
            return Ok(None);
        };
        let client = control.pool.get().await?;
        if !store::accept_totp_step(&client, account_id, step, false).await? {
            return Ok(None);
        }
    }
    let secret = SecretToken::generate(&control.rng, shared::console::cookies::SESSION_PREFIX)?;
    let now = time::OffsetDateTime::now_utc();
    let client = control.pool.get().await?;
    store::insert_session(
        &client,
        secret.digest(),
        account_id,
        now,
        now + SESSION_LIFETIME,
    )
    .await?;
    Ok(Some(secret.into_text()))
}

/// The address of the operator a live session cookie stands for.
pub async fn session(control: &ControlPlane, secret: &str) -> Result<Option<String>, ControlError> {
    let client = control.pool.get().await?;
    store::session_account(
        &client,
        &token_digest(secret),
        time::OffsetDateTime::now_utc(),
    )
    .await
}

/// Ends the session a cookie names.
pub async fn sign_out(control: &ControlPlane, secret: &str) -> Result<(), ControlError> {
    let client = control.pool.get().await?;
    store::revoke_session(
        &client,
        &token_digest(secret),
        time::OffsetDateTime::now_utc(),
    )
    .await
}

fn totp_context(account_id: uuid::Uuid) -> Vec<u8> {
    format!("operator-totp:{account_id}").into_bytes()
}

/// The step of `code` under the account's sealed secret, if it is a current code.
fn code_step(
    control: &ControlPlane,
    account_id: uuid::Uuid,
    sealed: &[u8],
    code: &str,
) -> Result<Option<i64>, ControlError> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(None);
    }
    let secret = control.kek.open(&totp_context(account_id), sealed)?;
    let secret = shared::totp::TotpSecret::from_bytes(secret);
    secret
        .check(code, time::OffsetDateTime::now_utc())
        .map_err(|error| ControlError::InvalidInput {
            field: "code",
            message: error.to_string(),
        })
}

/// Whether the operator `email` has two-factor on.
pub async fn totp_enabled(control: &ControlPlane, email: &str) -> Result<bool, ControlError> {
    let client = control.pool.get().await?;
    Ok(store::totp_state(&client, email)
        .await?
        .is_some_and(|(_, enabled, _)| enabled))
}

/// A new pending TOTP secret for the operator `email` (two-factor off): what their app needs.
pub async fn setup_totp(
    control: &ControlPlane,
    email: &str,
) -> Result<shared::totp::Enrolment, ControlError> {
    let client = control.pool.get().await?;
    let (account_id, enabled, _) =
        store::totp_state(&client, email)
            .await?
            .ok_or_else(|| ControlError::InvalidInput {
                field: "account",
                message: "no such operator account".to_owned(),
            })?;
    let already = || ControlError::InvalidInput {
        field: "totp",
        message: "two-factor is on already".to_owned(),
    };
    if enabled {
        return Err(already());
    }
    let secret = shared::totp::TotpSecret::generate(&control.rng).map_err(|error| {
        ControlError::InvalidInput {
            field: "totp",
            message: error.to_string(),
        }
    })?;
    let sealed = control
        .kek
        .seal(&control.rng, &totp_context(account_id), secret.as_bytes())?;
    if !store::set_pending_totp(&client, account_id, &sealed).await? {
        return Err(already());
    }
    secret
        .enrolment("Tenantry operators", email)
        .map_err(|error| ControlError::InvalidInput {
            field: "totp",
            message: error.to_string(),
        })
}

/// Turns two-factor on with a code of the pending secret; whether the code was right.
pub async fn enable_totp(
    control: &ControlPlane,
    email: &str,
    code: &str,
) -> Result<bool, ControlError> {
    let client = control.pool.get().await?;
    let Some((account_id, false, Some(sealed))) = store::totp_state(&client, email).await? else {
        return Ok(false);
    };
    let Some(step) = code_step(control, account_id, &sealed, code)? else {
        return Ok(false);
    };
    store::accept_totp_step(&client, account_id, step, true).await
}
