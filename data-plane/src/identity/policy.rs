//! A tenant's authentication policy: password rules, lockout, session limits, MFA
//! requirement and self sign-up. Stored as JSON in the tenant's `settings` table under
//! `auth_policy`; absent fields take the defaults below, so a tenant that never changed
//! anything has a complete, sensible policy.

use serde::{Deserialize, Serialize};

use super::passwords::PasswordPolicy;

pub const SETTINGS_KEY: &str = "auth_policy";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthPolicy {
    pub password: PasswordPolicy,
    pub lockout: LockoutPolicy,
    pub sessions: SessionPolicy,
    pub mfa: MfaRequirement,
    /// Whether anyone may register with `POST /v1/auth/register`.
    pub self_signup: bool,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self {
            password: PasswordPolicy::default(),
            lockout: LockoutPolicy::default(),
            sessions: SessionPolicy::default(),
            mfa: MfaRequirement::Optional,
            self_signup: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutPolicy {
    /// Failed sign-ins for one address before it is locked.
    pub max_failures: u32,
    /// How long a lock lasts, and the window in which failures are counted.
    pub lockout_minutes: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lockout_minutes: 15,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SessionPolicy {
    /// A session not refreshed for this long ends.
    pub idle_timeout_minutes: u32,
    /// A session ends this long after sign-in, whatever its activity.
    pub absolute_lifetime_hours: u32,
    /// Live sessions per user; signing in beyond it ends the oldest.
    pub max_concurrent: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout_minutes: 7 * 24 * 60,
            absolute_lifetime_hours: 30 * 24,
            max_concurrent: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaRequirement {
    Optional,
    Admins,
    All,
}

impl AuthPolicy {
    /// Refuses settings that would lock everyone out or make no sense.
    pub fn validate(&self) -> Result<(), String> {
        self.password
            .validate()
            .map_err(|error| format!("password.{error}"))?;
        if !(1..=100).contains(&self.lockout.max_failures) {
            return Err("lockout.max_failures must be 1 to 100".to_owned());
        }
        if !(1..=24 * 60).contains(&self.lockout.lockout_minutes) {
            return Err("lockout.lockout_minutes must be 1 to 1440".to_owned());
        }
        if !(5..=365 * 24 * 60).contains(&self.sessions.idle_timeout_minutes) {
            return Err("sessions.idle_timeout_minutes must be 5 to 525600".to_owned());
        }
        if !(1..=365 * 24).contains(&self.sessions.absolute_lifetime_hours) {
            return Err("sessions.absolute_lifetime_hours must be 1 to 8760".to_owned());
        }
        if !(1..=1000).contains(&self.sessions.max_concurrent) {
            return Err("sessions.max_concurrent must be 1 to 1000".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_partial_policy_takes_the_defaults() {
        let policy: AuthPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(policy, AuthPolicy::default());
        let policy: AuthPolicy =
            serde_json::from_str(r#"{"lockout": {"max_failures": 3}, "mfa": "all"}"#).unwrap();
        assert_eq!(policy.lockout.max_failures, 3);
        assert_eq!(policy.lockout.lockout_minutes, 15);
        assert_eq!(policy.mfa, MfaRequirement::All);
        assert!(serde_json::from_str::<AuthPolicy>(r#"{"lockout": {"max_fail": 3}}"#).is_err());
    }
}
