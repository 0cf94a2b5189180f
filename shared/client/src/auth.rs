//! Signing in and out, and the account flows that start without a session: activation of an
//! invitation, registration, email verification, password reset.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Client, Error, Secret};

/// Tokens in OAuth 2.0's names. `Debug` shows neither token.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub token_type: String,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
}

/// The second step of a sign-in with MFA: present `mfa_token` with a code to
/// [`Auth::verify_mfa`].
#[derive(Debug, Clone, Deserialize)]
pub struct MfaChallenge {
    pub mfa_token: Secret,
    pub expires_in: u64,
}

/// What a password sign-in answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LoginOutcome {
    Tokens(Tokens),
    MfaRequired(MfaChallenge),
}

impl LoginOutcome {
    /// The tokens, when the sign-in needed no second factor.
    pub fn tokens(self) -> Option<Tokens> {
        match self {
            Self::Tokens(tokens) => Some(tokens),
            Self::MfaRequired(_) => None,
        }
    }
}

/// Who an activation or verification made active.
#[derive(Debug, Clone, Deserialize)]
pub struct Activated {
    pub user_id: Uuid,
}

#[derive(Serialize)]
pub(crate) struct RefreshRequest<'a> {
    pub refresh_token: &'a str,
}

/// `/v1/auth/*`.
pub struct Auth<'c> {
    pub(crate) client: &'c Client,
}

impl Auth<'_> {
    /// `POST /v1/auth/login`: tokens, or an MFA challenge.
    pub async fn login(&self, email: &str, password: &str) -> Result<LoginOutcome, Error> {
        self.client
            .post("/v1/auth/login")
            .json(&serde_json::json!({ "email": email, "password": password }))
            .ok()
            .await
    }

    /// `POST /v1/auth/mfa/verify`: the challenge answered with a TOTP or backup code.
    pub async fn verify_mfa(&self, mfa_token: &str, code: &str) -> Result<Tokens, Error> {
        self.client
            .post("/v1/auth/mfa/verify")
            .json(&serde_json::json!({ "mfa_token": mfa_token, "code": code }))
            .ok()
            .await
    }

    /// `POST /v1/auth/refresh`: new tokens for a refresh token (which is then spent).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, Error> {
        self.client
            .post("/v1/auth/refresh")
            .json(&RefreshRequest { refresh_token })
            .ok()
            .await
    }

    /// `POST /v1/auth/sso/token`: the tokens for the one-time code an SSO sign-in an
    /// application started brought to its redirect URI, with the application's PKCE verifier
    /// and the same redirect URI (the code is spent whatever the answer).
    pub async fn exchange_sso_code(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<Tokens, Error> {
        self.client
            .post("/v1/auth/sso/token")
            .json(&serde_json::json!({
                "code": code,
                "code_verifier": code_verifier,
                "redirect_uri": redirect_uri,
            }))
            .ok()
            .await
    }

    /// `POST /v1/auth/logout`: ends the caller's session.
    pub async fn logout(&self) -> Result<(), Error> {
        self.client.post("/v1/auth/logout").done().await
    }

    /// `POST /v1/auth/activate`: an invited user sets their password.
    pub async fn activate(&self, token: &str, password: &str) -> Result<Activated, Error> {
        self.client
            .post("/v1/auth/activate")
            .json(&serde_json::json!({ "token": token, "password": password }))
            .ok()
            .await
    }

    /// `POST /v1/auth/register` (when the tenant allows self sign-up): always 202, whether or
    /// not the address has an account; the mail tells the owner.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<(), Error> {
        self.client
            .post("/v1/auth/register")
            .json(&serde_json::json!({
                "email": email, "password": password, "display_name": display_name,
            }))
            .done()
            .await
    }

    /// `POST /v1/auth/verify-email`: the token from the verification mail.
    pub async fn verify_email(&self, token: &str) -> Result<Activated, Error> {
        self.client
            .post("/v1/auth/verify-email")
            .json(&serde_json::json!({ "token": token }))
            .ok()
            .await
    }

    /// `POST /v1/auth/verify-email/resend`.
    pub async fn resend_verification(&self, email: &str) -> Result<(), Error> {
        self.client
            .post("/v1/auth/verify-email/resend")
            .json(&serde_json::json!({ "email": email }))
            .done()
            .await
    }

    /// `POST /v1/auth/password-reset`: always 202; a mail goes to an existing account.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), Error> {
        self.client
            .post("/v1/auth/password-reset")
            .json(&serde_json::json!({ "email": email }))
            .done()
            .await
    }

    /// `POST /v1/auth/password-reset/confirm`: the mailed token and the new password.
    pub async fn confirm_password_reset(&self, token: &str, password: &str) -> Result<(), Error> {
        self.client
            .post("/v1/auth/password-reset/confirm")
            .json(&serde_json::json!({ "token": token, "password": password }))
            .done()
            .await
    }
}
