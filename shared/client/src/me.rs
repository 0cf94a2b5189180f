//! The signed-in user's own account: `/v1/me`, sessions, password, MFA, export.

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{path, Client, Error, Secret};

/// `GET /v1/me`.
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub status: String,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub roles: Vec<String>,
    pub session_id: Uuid,
    /// How the session was authenticated (`pwd`, `otp`, `sso`, …).
    pub amr: Vec<String>,
    /// What the session must do first: `password_change`, `mfa_enrollment`.
    pub restrictions: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One of the user's live sessions.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: Vec<String>,
    /// The session this client's token belongs to.
    pub current: bool,
}

#[derive(Deserialize)]
struct Sessions {
    sessions: Vec<Session>,
}

/// A new TOTP secret, to confirm with [`MeApi::enable_totp`].
#[derive(Debug, Clone, Deserialize)]
pub struct TotpSetup {
    pub secret: Secret,
    pub otpauth_uri: Secret,
    pub qr_svg: String,
}

#[derive(Deserialize)]
struct BackupCodes {
    backup_codes: Vec<Secret>,
}

/// `/v1/me/*`.
pub struct MeApi<'c> {
    pub(crate) client: &'c Client,
}

impl MeApi<'_> {
    pub async fn get(&self) -> Result<Me, Error> {
        self.client.get("/v1/me").ok().await
    }

    /// `PATCH /v1/me`: changes the user's display name.
    pub async fn rename(&self, display_name: &str) -> Result<Me, Error> {
        self.client
            .patch("/v1/me")
            .json(&serde_json::json!({ "display_name": display_name }))
            .ok()
            .await
    }

    /// `POST /v1/me/erasure`: the user erases their account, typing their address to confirm
    /// (a sign-in of the last ten minutes is needed).
    pub async fn erase(&self, confirm_email: &str) -> Result<(), Error> {
        self.client
            .post("/v1/me/erasure")
            .json(&serde_json::json!({ "confirm_email": confirm_email }))
            .done()
            .await
    }

    pub async fn sessions(&self) -> Result<Vec<Session>, Error> {
        let sessions: Sessions = self.client.get("/v1/me/sessions").ok().await?;
        Ok(sessions.sessions)
    }

    /// Ends one of the user's sessions (signs that device out).
    pub async fn end_session(&self, id: Uuid) -> Result<(), Error> {
        self.client
            .delete(path("/v1/me/sessions", &[&id.to_string()]))
            .done()
            .await
    }

    /// Changes the password; the user's other sessions end.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<(), Error> {
        self.client
            .post("/v1/me/password")
            .json(&serde_json::json!({ "current_password": current, "new_password": new }))
            .done()
            .await
    }

    /// `GET /v1/me/mfa`: `totp_enabled`, `backup_codes_remaining`, `required`.
    pub async fn mfa(&self) -> Result<Value, Error> {
        self.client.get("/v1/me/mfa").ok().await
    }

    pub async fn setup_totp(&self) -> Result<TotpSetup, Error> {
        self.client.post("/v1/me/mfa/totp/setup").ok().await
    }

    /// Confirms the set-up secret with a code; the backup codes, shown this once.
    pub async fn enable_totp(&self, code: &str) -> Result<Vec<Secret>, Error> {
        let codes: BackupCodes = self
            .client
            .post("/v1/me/mfa/totp/enable")
            .json(&serde_json::json!({ "code": code }))
            .ok()
            .await?;
        Ok(codes.backup_codes)
    }

    /// New backup codes (the old ones are void), for a current code.
    pub async fn new_backup_codes(&self, code: &str) -> Result<Vec<Secret>, Error> {
        let codes: BackupCodes = self
            .client
            .post("/v1/me/mfa/backup-codes")
            .json(&serde_json::json!({ "code": code }))
            .ok()
            .await?;
        Ok(codes.backup_codes)
    }

    /// Turns TOTP off, proven with the password or a current code.
    pub async fn disable_totp(
        &self,
        password: Option<&str>,
        code: Option<&str>,
    ) -> Result<(), Error> {
        self.client
            .delete("/v1/me/mfa/totp")
            .json(&serde_json::json!({ "password": password, "code": code }))
            .done()
            .await
    }

    /// `GET /v1/me/export`: everything the tenant holds about the user (GDPR Art. 15/20).
    pub async fn export(&self) -> Result<Value, Error> {
        self.client.get("/v1/me/export").ok().await
    }
}
