//! Tenant administration: users, roles, API keys and the audit log (`/v1/admin/*`), and the
//! tenant's settings (`/v1/settings/*`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{path, query, resource_path, Client, Error, Secret};

/// A user as tenant admins see it.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    /// `invited`, `pending`, `active` or `disabled`.
    pub status: String,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub roles: Vec<String>,
    /// The conditions of conditional assignments, by role name.
    pub role_conditions: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_cursor: Option<Uuid>,
}

/// A list filter on users' status.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Invited,
    Pending,
    Active,
    Disabled,
}

impl UserStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// `/v1/admin/users`.
pub struct Users<'c> {
    pub(crate) client: &'c Client,
}

impl Users<'_> {
    fn user_path(id: Uuid, rest: &[&str]) -> String {
        resource_path("/v1/admin/users", &id.to_string(), rest)
    }

    /// Invites `email` with `roles`: the user is `invited` and gets a mail to activate.
    pub async fn invite(&self, email: &str, roles: &[&str]) -> Result<User, Error> {
        self.client
            .post("/v1/admin/users/invitations")
            .json(&serde_json::json!({ "email": email, "roles": roles }))
            .ok()
            .await
    }

    pub async fn get(&self, id: Uuid) -> Result<User, Error> {
        self.client.get(Self::user_path(id, &[])).ok().await
    }

    pub async fn list(
        &self,
        status: Option<UserStatus>,
        limit: Option<u32>,
        cursor: Option<Uuid>,
    ) -> Result<UserPage, Error> {
        let query = query(&[
            ("status", status.map(|status| status.as_str().to_owned())),
            ("limit", limit.map(|limit| limit.to_string())),
            ("cursor", cursor.map(|cursor| cursor.to_string())),
        ]);
        self.client
            .get(format!("/v1/admin/users{query}"))
            .ok()
            .await
    }

    /// Signs the user out everywhere and refuses their sign-ins until enabled.
    pub async fn disable(&self, id: Uuid) -> Result<User, Error> {
        self.client
            .post(Self::user_path(id, &["disable"]))
            .ok()
            .await
    }

    pub async fn enable(&self, id: Uuid) -> Result<User, Error> {
        self.client
            .post(Self::user_path(id, &["enable"]))
            .ok()
            .await
    }

    /// Replaces the user's roles. Each entry is a role name, or
    /// `{"role": …, "conditions": {…}}` for a conditional assignment.
    pub async fn set_roles(&self, id: Uuid, roles: &[Value]) -> Result<User, Error> {
        self.client
            .put(Self::user_path(id, &["roles"]))
            .json(&serde_json::json!({ "roles": roles }))
            .ok()
            .await
    }

    /// Removes the user's MFA (they enrol again).
    pub async fn reset_mfa(&self, id: Uuid) -> Result<User, Error> {
        self.client.delete(Self::user_path(id, &["mfa"])).ok().await
    }

    /// Deletes the user (erasure: their personal data goes).
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        self.client.delete(Self::user_path(id, &[])).done().await
    }
}

/// A role as tenant admins see it.
#[derive(Debug, Clone, Deserialize)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    /// The roles this one includes directly.
    pub includes: Vec<String>,
    pub built_in: bool,
    /// Everything the role grants, its inclusions resolved (on a single role's answer).
    #[serde(default)]
    pub effective_permissions: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Deserialize)]
struct RoleList {
    roles: Vec<Role>,
}

/// `/v1/admin/roles`.
pub struct Roles<'c> {
    pub(crate) client: &'c Client,
}

impl Roles<'_> {
    pub async fn list(&self) -> Result<Vec<Role>, Error> {
        let list: RoleList = self.client.get("/v1/admin/roles").ok().await?;
        Ok(list.roles)
    }

    pub async fn get(&self, name: &str) -> Result<Role, Error> {
        self.client.get(path("/v1/admin/roles", &[name])).ok().await
    }

    /// Creates a custom role granting `permissions` and including `includes`.
    pub async fn create(
        &self,
        name: &str,
        description: &str,
        permissions: &[&str],
        includes: &[&str],
    ) -> Result<Role, Error> {
        self.client
            .post("/v1/admin/roles")
            .json(&serde_json::json!({
                "name": name, "description": description,
                "permissions": permissions, "includes": includes,
            }))
            .ok()
            .await
    }

    /// Replaces a custom role's definition.
    pub async fn update(
        &self,
        name: &str,
        description: &str,
        permissions: &[&str],
        includes: &[&str],
    ) -> Result<Role, Error> {
        self.client
            .put(path("/v1/admin/roles", &[name]))
            .json(&serde_json::json!({
                "description": description, "permissions": permissions, "includes": includes,
            }))
            .ok()
            .await
    }

    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        self.client
            .delete(path("/v1/admin/roles", &[name]))
            .done()
            .await
    }
}

/// An API key as tenant admins see it: everything but its secret.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub allowed_ips: Option<Vec<String>>,
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub rotated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    pub use_count: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

/// A key just created or rotated: its view and the whole key, shown this once.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub view: ApiKey,
    /// `tnt_<prefix>_<secret>`.
    pub key: Secret,
}

/// What a new key may do, until when, and from where.
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Vec<String>>,
}

impl NewKey {
    pub fn new(name: &str, scopes: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            expires_at: None,
            allowed_ips: None,
        }
    }

    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    pub fn allowed_ips(mut self, ranges: &[&str]) -> Self {
        self.allowed_ips = Some(ranges.iter().map(|range| (*range).to_owned()).collect());
        self
    }
}

#[derive(Deserialize)]
struct KeyList {
    api_keys: Vec<ApiKey>,
}

/// `/v1/admin/api-keys`.
pub struct ApiKeys<'c> {
    pub(crate) client: &'c Client,
}

impl ApiKeys<'_> {
    fn key_path(id: Uuid, rest: &[&str]) -> String {
        resource_path("/v1/admin/api-keys", &id.to_string(), rest)
    }

    pub async fn create(&self, key: &NewKey) -> Result<CreatedKey, Error> {
        self.client.post("/v1/admin/api-keys").json(key).ok().await
    }

    pub async fn list(&self) -> Result<Vec<ApiKey>, Error> {
        let list: KeyList = self.client.get("/v1/admin/api-keys").ok().await?;
        Ok(list.api_keys)
    }

    pub async fn get(&self, id: Uuid) -> Result<ApiKey, Error> {
        self.client.get(Self::key_path(id, &[])).ok().await
    }

    /// A new secret for the key; the old one works for the server's default grace period.
    pub async fn rotate(&self, id: Uuid) -> Result<CreatedKey, Error> {
        self.client.post(Self::key_path(id, &["rotate"])).ok().await
    }

    /// A new secret for the key; the old one works for `grace_seconds` more (0: not at all).
    pub async fn rotate_with_grace(
        &self,
        id: Uuid,
        grace_seconds: i64,
    ) -> Result<CreatedKey, Error> {
        self.client
            .post(Self::key_path(id, &["rotate"]))
            .json(&serde_json::json!({ "grace_seconds": grace_seconds }))
            .ok()
            .await
    }

    pub async fn revoke(&self, id: Uuid) -> Result<(), Error> {
        self.client.delete(Self::key_path(id, &[])).done().await
    }
}

/// One audit event.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub occurred_at: String,
    pub request_id: String,
    pub actor: Value,
    pub action: String,
    pub resource: Value,
    /// `success`, `denied` or `failure`.
    pub result: String,
    pub ip: String,
    pub user_agent: String,
    pub http: Value,
    pub duration_ms: u32,
    pub metadata: Value,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

/// The audit log's filters (RFC 3339 times; ids as text).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub result: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl Client {
    /// `GET /v1/admin/audit`: a page of the tenant's audit log.
    pub async fn audit(&self, filter: &AuditQuery) -> Result<AuditPage, Error> {
        let query = query(&[
            ("from", filter.from.clone()),
            ("to", filter.to.clone()),
            ("actor", filter.actor.clone()),
            ("action", filter.action.clone()),
            ("resource_type", filter.resource_type.clone()),
            ("resource_id", filter.resource_id.clone()),
            ("result", filter.result.clone()),
            ("limit", filter.limit.map(|limit| limit.to_string())),
            ("cursor", filter.cursor.clone()),
        ]);
        self.get(format!("/v1/admin/audit{query}")).ok().await
    }

    /// `GET /v1/settings/{name}` (`auth-policy`, `cors`, `privacy`, `sso-redirects`).
    pub async fn setting(&self, name: &str) -> Result<Value, Error> {
        self.get(path("/v1/settings", &[name])).ok().await
    }

    /// `PUT /v1/settings/{name}`: replaces the setting; the saved value.
    pub async fn put_setting<T: Serialize + ?Sized>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<Value, Error> {
        self.put(path("/v1/settings", &[name]))
            .json(value)
            .ok()
            .await
    }

    /// `GET /v1/usage` (a key with `usage:read`, or a user): the tenant's usage and quotas.
    pub async fn usage(&self) -> Result<Value, Error> {
        self.get("/v1/usage").ok().await
    }
}
