//! Personal data rights (GDPR): a user exports what the tenant holds about them
//! (`GET /v1/me/export`); a tenant admin erases a user (`DELETE /v1/admin/users/{id}`, in the
//! users admin), which also strips their sign-in history of personal data and handles the
//! records they own by the tenant's policy (`GET/PUT /v1/settings/privacy`).
//!
//! Invariants:
//! - The export holds no secret: no password or backup-code hash, no TOTP secret, no token
//!   digest.
//! - An erasure is one transaction: the user, their sessions and tokens, their sign-in
//!   history's personal fields, throttling rows and mail to their address go together, or
//!   nothing does.

pub mod routes;
pub mod service;
pub mod store;

use serde::{Deserialize, Serialize};

/// To read and change the privacy policy.
pub const MANAGE: &str = "settings:manage";
/// The `settings` row holding the policy.
pub const SETTINGS_KEY: &str = "privacy";

/// What happens to the records an erased user owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasedUserRecords {
    /// They are kept, owned by the admin who erased the user (the tenant's data stays whole).
    #[default]
    Reassign,
    /// They are deleted with the user.
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyPolicy {
    #[serde(default)]
    pub erased_user_records: ErasedUserRecords,
}
