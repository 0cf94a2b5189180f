//! The tenant model and the validated names that identify a tenant.
//!
//! Invariant: a [`TenantSlug`] only ever holds `[a-z0-9-]{3,40}`, starting with a letter and
//! not ending with a hyphen, never a reserved word. Schema and role names are derived from
//! a slug and nothing else, so they can be quoted and spliced into DDL safely (DDL cannot take
//! bind parameters); [`quote_ident`] is still applied everywhere they are used.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Words that may not be used as a slug: they name our own hosts, endpoints or roles, or
/// would confuse an operator reading a host name.
const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "auth",
    "billing",
    "console",
    "control",
    "dashboard",
    "data",
    "default",
    "docs",
    "help",
    "internal",
    "login",
    "mail",
    "metrics",
    "new",
    "null",
    "operator",
    "postgres",
    "public",
    "root",
    "signup",
    "sso",
    "static",
    "status",
    "support",
    "system",
    "tenant",
    "tenants",
    "tenantry",
    "test",
    "www",
];

/// Why a slug was refused. The message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("slug must be 3 to 40 characters long")]
    Length,
    #[error("slug may only contain lowercase letters, digits and hyphens")]
    Characters,
    #[error("slug must start with a letter and must not end with a hyphen or contain '--'")]
    Shape,
    #[error("slug '{0}' is reserved")]
    Reserved(String),
}

/// A tenant's slug: its stable, human-readable identifier and the first label of its host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        if !(3..=40).contains(&input.len()) {
            return Err(SlugError::Length);
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SlugError::Characters);
        }
        let starts_with_letter = input.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if !starts_with_letter || input.ends_with('-') || input.contains("--") {
            return Err(SlugError::Shape);
        }
        if RESERVED_SLUGS.contains(&input) {
            return Err(SlugError::Reserved(input.to_owned()));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The slug with hyphens turned into underscores. Injective, because a slug never
    /// contains an underscore.
    fn as_identifier_part(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantSlug {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        TenantSlug::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A Postgres identifier we generated ourselves (schema or role name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct PgIdentifier(String);

impl PgIdentifier {
    /// Wraps a name read back from the catalog, where only names we generated are stored.
    pub fn from_catalog(name: String) -> Self {
        Self(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier double-quoted for SQL.
    pub fn quoted(&self) -> String {
        quote_ident(&self.0)
    }
}

impl fmt::Display for PgIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Quotes a Postgres identifier (doubling embedded quotes), as `quote_ident` does.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The prefix every Postgres role of one Tenantry deployment starts with. Roles are
/// cluster-wide, so two deployments (or two test runs) on one server need different ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePrefix(String);

impl RolePrefix {
    pub fn parse(input: &str) -> Result<Self, String> {
        let valid_chars = input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let starts_with_letter = input.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if (1..=20).contains(&input.len()) && valid_chars && starts_with_letter {
            Ok(Self(input.to_owned()))
        } else {
            Err(format!(
                "role prefix '{input}' must be 1-20 characters of [a-z0-9_] starting with a letter"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The login role data-plane nodes connect as; a member of every tenant role.
    pub fn data_plane_role(&self) -> PgIdentifier {
        PgIdentifier(format!("{}_dataplane", self.0))
    }

    /// The role that owns a tenant's schema and runs its requests. At most 20 + 3 + 40 = 63
    /// bytes, Postgres' identifier limit.
    pub fn tenant_role(&self, slug: &TenantSlug) -> PgIdentifier {
        PgIdentifier(format!("{}_t_{}", self.0, slug.as_identifier_part()))
    }
}

/// The schema that holds one tenant's tables.
pub fn tenant_schema(slug: &TenantSlug) -> PgIdentifier {
    PgIdentifier(format!("tenant_{}", slug.as_identifier_part()))
}

/// Where a tenant is in its life. Only `Active` tenants are served; `Suspended` ones get a
/// clear 403; every other state is invisible to the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Provisioning,
    Failed,
    Active,
    Suspended,
    Deleting,
    Deleted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Failed => "failed",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Some(match input {
            "provisioning" => Self::Provisioning,
            "failed" => Self::Failed,
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: TenantSlug,
    pub name: String,
    pub status: TenantStatus,
    pub plan: String,
    pub schema: PgIdentifier,
    pub role: PgIdentifier,
    pub cluster: String,
    /// A move to another cluster has frozen the tenant's writes (503 `tenant_moving`); its
    /// reads are served.
    pub moving: bool,
    pub template: String,
    pub template_version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_slugs_are_accepted() {
        for slug in ["acme", "acme-corp", "a1b", "x".repeat(40).as_str()] {
            assert!(TenantSlug::parse(slug).is_ok(), "{slug}");
        }
    }

    #[test]
    fn bad_slugs_are_refused_with_a_reason() {
        assert_eq!(TenantSlug::parse("ab"), Err(SlugError::Length));
        assert_eq!(TenantSlug::parse(&"x".repeat(41)), Err(SlugError::Length));
        assert_eq!(TenantSlug::parse("Acme"), Err(SlugError::Characters));
        assert_eq!(TenantSlug::parse("ac_me"), Err(SlugError::Characters));
        assert_eq!(TenantSlug::parse("a\"; drop"), Err(SlugError::Characters));
        assert_eq!(TenantSlug::parse("1acme"), Err(SlugError::Shape));
        assert_eq!(TenantSlug::parse("acme-"), Err(SlugError::Shape));
        assert_eq!(TenantSlug::parse("ac--me"), Err(SlugError::Shape));
        assert!(matches!(
            TenantSlug::parse("admin"),
            Err(SlugError::Reserved(_))
        ));
        assert_eq!(TenantSlug::parse("acmé"), Err(SlugError::Characters));
    }

    #[test]
    fn derived_names_fit_postgres_identifiers() {
        let prefix = RolePrefix::parse(&"p".repeat(20)).unwrap();
        let slug = TenantSlug::parse(&format!("a{}", "-b".repeat(19))).unwrap();
        assert!(prefix.tenant_role(&slug).as_str().len() <= 63);
        assert_eq!(
            tenant_schema(&TenantSlug::parse("acme-corp").unwrap()).as_str(),
            "tenant_acme_corp"
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
