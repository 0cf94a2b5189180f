//! SCIM 2.0 provisioning (RFC 7643, RFC 7644) at `/scim/v2`: a tenant's directory (Okta, Entra
//! ID, Google, JumpCloud, …) creates, changes, deactivates and removes the tenant's users and
//! groups, and tenant admins map groups to roles.
//!
//! Invariants:
//! - A directory authenticates with an API key whose scopes grant `scim:manage` (made by a
//!   tenant admin, shown once, revocable on every node like any key); every SCIM route
//!   declares that permission and the route guard checks it.
//! - SCIM users are the tenant's users: one row per person, whatever made it (an invitation,
//!   a sign-up, SSO or SCIM). A user's `userName` is what the directory set, else their address;
//!   a directory-set name is unique without case and is never another user's address.
//! - Every user has an email address: the primary one the directory sends, else its first one,
//!   else an email-shaped `userName`; a new user without one is refused (`invalidValue`).
//! - Deactivation (`active: false`) and deletion end every session of the user in the same
//!   transaction, and the NOTIFY sent on commit makes every node refuse their tokens at once.
//!   The tenant's last active owner is never deactivated nor deleted, and only a key made by
//!   an owner may change an owner.
//! - Users created by SCIM count against `max_users`, under the same lock as invitations.
//! - A group mapped to a role by a tenant admin (`PUT /v1/admin/scim/groups/{id}/role`, never
//!   `owner`, never beyond the admin's own permissions) gives its members that role; the
//!   directory changes who is a member, never what a group grants. Roles mapped to some group
//!   are managed by the groups: a user holds one exactly while in a group mapped to it.
//! - A request is all or nothing: a PATCH whose third operation fails changes nothing.
//! - Every error under `/scim/v2`, the guard's and the rate limiter's included, is a SCIM
//!   error document (`response::reshape`).

pub mod filter;
pub mod groups;
pub mod patch;
pub mod response;
pub mod routes;
pub mod schema;
pub mod store;
pub mod users;

use shared::error::ApiError;
use shared::tenant_context::TenantDbError;

use self::filter::Filter;
use self::store::Narrowing;
use crate::users::UsersError;

/// The permission a directory's key needs (and its maker holds).
pub const MANAGE: &str = "scim:manage";

/// Why a SCIM request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Uniqueness(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    InvalidSyntax(String),
    #[error("{}", .0.message)]
    Patch(#[from] patch::PatchError),
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Db(#[from] TenantDbError),
}

/// The longest name (`userName`, a group's `displayName`) or `externalId` we keep.
const MAX_NAME: usize = 256;

/// A SCIM timestamp (`meta.created`, `meta.lastModified`): RFC 3339.
fn timestamp(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `document[attribute]` as a name: a string of at most [`MAX_NAME`] characters without
/// control characters, trimmed; absent, null or empty: `None`.
fn bounded_name(
    document: &serde_json::Value,
    attribute: &str,
) -> Result<Option<String>, ScimError> {
    match document.get(attribute) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(value)) => {
            let value = value.trim();
            if value.chars().count() > MAX_NAME || value.chars().any(char::is_control) {
                return Err(ScimError::InvalidValue(format!(
                    "{attribute} must be at most {MAX_NAME} characters, without control \
                     characters"
                )));
            }
            Ok((!value.is_empty()).then(|| value.to_owned()))
        }
        Some(_) => Err(ScimError::InvalidValue(format!(
            "{attribute} must be a string"
        ))),
    }
}

/// What a list filter's equality lets the store narrow to.
fn narrowing(filter: Option<&Filter>, name_attribute: &str) -> Narrowing {
    let Some(filter) = filter else {
        return Narrowing::All;
    };
    match filter {
        Filter::Compare {
            path,
            op: filter::CompareOp::Eq,
            value: serde_json::Value::String(value),
        } if path.urn.is_none() && path.sub_attribute.is_none() => {
            let attribute = path.attribute.as_str();
            if attribute.eq_ignore_ascii_case("id") {
                uuid::Uuid::parse_str(value).map_or(Narrowing::Id(uuid::Uuid::nil()), Narrowing::Id)
            } else if attribute.eq_ignore_ascii_case(name_attribute) {
                Narrowing::Name(value.clone())
            } else if attribute.eq_ignore_ascii_case("externalId") {
                Narrowing::ExternalId(value.clone())
            } else {
                Narrowing::All
            }
        }
        Filter::And(left, right) => match narrowing(Some(left), name_attribute) {
            Narrowing::All => narrowing(Some(right), name_attribute),
            narrowed => narrowed,
        },
        _ => Narrowing::All,
    }
}

/// A resource's current document with a PATCH's `operations` applied and cleaned, all or
/// nothing: what a PATCH writes.
fn patched(
    mut document: serde_json::Value,
    resource_type: &schema::ResourceType,
    operations: &[patch::Operation],
) -> Result<serde_json::Value, ScimError> {
    patch::apply(&mut document, resource_type, operations)?;
    patch::clean(&mut document, resource_type)?;
    Ok(document)
}

impl From<tokio_postgres::Error> for ScimError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}

impl From<ScimError> for ApiError {
    fn from(error: ScimError) -> Self {
        let message = error.to_string();
        match error {
            ScimError::NotFound(_) => ApiError::not_found("not_found", message),
            ScimError::Uniqueness(_) => ApiError::conflict("uniqueness", message),
            ScimError::InvalidValue(_) => ApiError::bad_request("invalid_value", message),
            ScimError::InvalidFilter(_) => ApiError::bad_request("invalid_filter", message),
            ScimError::InvalidSyntax(_) => ApiError::bad_request("invalid_syntax", message),
            ScimError::Patch(error) => ApiError::bad_request(error.kind.code(), message),
            ScimError::Users(error) => error.into(),
            // A write that raced another to the same name or address (an invitation, say)
            // after our check: the database's unique index decided, and it is the same 409.
            ScimError::Db(TenantDbError::Query(error))
                if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                ApiError::conflict(
                    "uniqueness",
                    "another user has this userName or email address, or another group this \
                     displayName",
                )
            }
            ScimError::Db(error) => error.into(),
        }
    }
}
