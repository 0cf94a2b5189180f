//! The rules of the roles admin: names and permission strings checked at the edge, no cycles,
//! no escalation, built-ins read-only, every change announced.

use serde::{Deserialize, Serialize};
use shared::tenant_context::TenantTransaction;
use uuid::Uuid;

use super::store::{self, RoleView};
use super::RolesError;
use crate::authz::{self, store as authz_store};
use crate::state::DataPlane;
use crate::tenancy::{Principal, RequestContext};

const MAX_PERMISSIONS: usize = 100;
const MAX_INCLUDES: usize = 20;
const MAX_DESCRIPTION: usize = 500;
const ACTIONS: [&str; 7] = [
    "create", "read", "update", "delete", "execute", "manage", "*",
];

/// A role name: 2–63 characters, lower-case letters, digits, `_` and `-`, starting with a
/// letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(raw: &str) -> Result<Self, RolesError> {
        let valid = (2..=63).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(RolesError::InvalidInput(format!(
                "'{raw}' is not a role name: 2 to 63 lower-case letters, digits, '_' or '-', \
                 starting with a letter"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a permission pattern: `resource:action`, the resource `*` or dot-separated
/// lower-case segments (`records`, `records.invoices`), the action one of [`ACTIONS`].
pub fn parse_permission(raw: &str) -> Result<String, RolesError> {
    let invalid = || {
        RolesError::InvalidInput(format!(
            "'{raw}' is not a permission: resource:action, the resource `*` or lower-case \
             segments joined by '.', the action one of {}",
            ACTIONS.join(", ")
        ))
    };
    let (resource, action) = raw.split_once(':').ok_or_else(invalid)?;
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment.starts_with(|c: char| c.is_ascii_lowercase())
            && segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let resource_ok =
        resource == "*" || (resource.len() <= 128 && resource.split('.').all(segment_ok));
    if resource_ok && ACTIONS.contains(&action) {
        Ok(raw.to_owned())
    } else {
        Err(invalid())
    }
}

/// A custom role as an admin defines it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDefinition {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub includes: Vec<String>,
}

/// A checked definition.
struct Checked {
    description: String,
    permissions: Vec<String>,
    includes: Vec<String>,
}

fn check(definition: &RoleDefinition) -> Result<Checked, RolesError> {
    let description = definition.description.trim().to_owned();
    if description.chars().count() > MAX_DESCRIPTION || description.chars().any(char::is_control) {
        return Err(RolesError::InvalidInput(format!(
            "description must be at most {MAX_DESCRIPTION} characters, without control characters"
        )));
    }
    if definition.permissions.len() > MAX_PERMISSIONS {
        return Err(RolesError::InvalidInput(format!(
            "at most {MAX_PERMISSIONS} permissions"
        )));
    }
    if definition.includes.len() > MAX_INCLUDES {
        return Err(RolesError::InvalidInput(format!(
            "at most {MAX_INCLUDES} included roles"
        )));
    }
    let mut permissions = definition
        .permissions
        .iter()
        .map(|raw| parse_permission(raw.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    permissions.sort();
    permissions.dedup();
    let mut includes = definition
        .includes
        .iter()
        .map(|raw| RoleName::parse(raw.trim()).map(|name| name.0))
        .collect::<Result<Vec<_>, _>>()?;
    includes.sort();
    includes.dedup();
    if permissions.is_empty() && includes.is_empty() {
        return Err(RolesError::InvalidInput(
            "a role needs at least one permission or included role".into(),
        ));
    }
    Ok(Checked {
        description,
        permissions,
        includes,
    })
}

/// A role, with everything it grants.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(examples(json!({
    "name": "support-agent",
    "description": "Reads users and tickets; answers tickets",
    "permissions": ["records.tickets:read", "records.tickets:update", "users:read"],
    "includes": ["member"],
    "built_in": false,
    "created_at": "2026-12-06T10:20:00Z",
    "updated_at": "2026-12-06T10:20:00Z",
    "effective_permissions": [
        "records.tickets:read", "records.tickets:update", "records:create", "records:read",
        "records:update", "users:read"
    ]
})))]
pub struct RoleDetail {
    #[serde(flatten)]
    pub role: RoleView,
    /// Everything the role grants, its inclusions resolved.
    pub effective_permissions: Vec<String>,
}

pub async fn list(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<Vec<RoleView>, RolesError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let roles = store::list(&mut transaction).await?;
    transaction.commit().await?;
    Ok(roles)
}

pub async fn get(
    state: &DataPlane,
    context: &RequestContext,
    name: &RoleName,
) -> Result<RoleDetail, RolesError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let role = detail(&mut transaction, name).await?;
    transaction.commit().await?;
    Ok(role)
}

async fn detail(
    transaction: &mut TenantTransaction,
    name: &RoleName,
) -> Result<RoleDetail, RolesError> {
    let role = store::get(transaction, name.as_str())
        .await?
        .ok_or(RolesError::NotFound)?;
    let mut effective_permissions =
        authz_store::role_set_permissions(transaction, std::slice::from_ref(&role.name)).await?;
    effective_permissions.sort();
    Ok(RoleDetail {
        role,
        effective_permissions,
    })
}

/// Creates (`create`) or replaces a custom role, refusing cycles and escalation.
pub async fn save(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    name: &RoleName,
    definition: &RoleDefinition,
    create: bool,
) -> Result<RoleDetail, RolesError> {
    // Nobody defines a role granting more than they hold, as it stands for this request.
    let held = &authz::in_force(state, context, caller).await?;
    let checked = check(definition)?;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::lock_roles(&mut transaction).await?;
    match store::get(&mut transaction, name.as_str()).await? {
        Some(_) if create => return Err(RolesError::Exists),
        Some(existing) if existing.built_in => return Err(RolesError::BuiltIn),
        None if !create => return Err(RolesError::NotFound),
        _ => {}
    }
    let existing = store::existing(&mut transaction, &checked.includes).await?;
    let unknown: Vec<String> = checked
        .includes
        .iter()
        .filter(|role| !existing.contains(role))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(RolesError::UnknownRoles(unknown));
    }
    // The roles the new inclusions reach: the role itself among them closes a cycle.
    let reached = store::reached_from(&mut transaction, &checked.includes).await?;
    if checked.includes.iter().any(|role| role == name.as_str())
        || reached.iter().any(|role| role == name.as_str())
    {
        return Err(RolesError::Cycle(checked.includes.clone()));
    }
    let mut wanted = authz_store::role_set_permissions(&mut transaction, &checked.includes).await?;
    wanted.extend(checked.permissions.iter().cloned());
    let held: Vec<&str> = held.iter().map(String::as_str).collect();
    let missing = authz::covered(&held, &wanted);
    if !missing.is_empty() {
        let mut missing: Vec<String> = missing.into_iter().map(str::to_owned).collect();
        missing.sort();
        missing.dedup();
        return Err(RolesError::Escalation(missing));
    }
    store::upsert(
        &mut transaction,
        name.as_str(),
        &checked.description,
        &checked.permissions,
        &checked.includes,
    )
    .await?;
    finish(state, context, transaction, name, !create).await
}

/// Commits a saved role; a change to an existing one (`announce`) makes every node forget the
/// tenant's cached permissions, this one before it answers.
async fn finish(
    state: &DataPlane,
    context: &RequestContext,
    mut transaction: TenantTransaction,
    name: &RoleName,
    announce: bool,
) -> Result<RoleDetail, RolesError> {
    let role = detail(&mut transaction, name).await?;
    let tenant_id = context.tenant.tenant.id;
    if announce {
        authz_store::notify_changed(&mut transaction, tenant_id, None).await?;
    }
    transaction.commit().await?;
    if announce {
        state.permissions.invalidate_tenant(tenant_id);
    }
    Ok(role)
}

/// Deletes a custom role and its assignments, unless another role includes it.
pub async fn delete(
    state: &DataPlane,
    context: &RequestContext,
    name: &RoleName,
) -> Result<(), RolesError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::lock_roles(&mut transaction).await?;
    let role = store::get(&mut transaction, name.as_str())
        .await?
        .ok_or(RolesError::NotFound)?;
    if role.built_in {
        return Err(RolesError::BuiltIn);
    }
    let including = store::including(&mut transaction, name.as_str()).await?;
    if !including.is_empty() {
        return Err(RolesError::Included(including));
    }
    store::delete(&mut transaction, name.as_str()).await?;
    let tenant_id: Uuid = context.tenant.tenant.id;
    authz_store::notify_changed(&mut transaction, tenant_id, None).await?;
    transaction.commit().await?;
    state.permissions.invalidate_tenant(tenant_id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_strings_are_checked() {
        for good in [
            "records:read",
            "records.invoices:*",
            "*:*",
            "*:read",
            "api_keys:manage",
        ] {
            assert_eq!(parse_permission(good).unwrap(), good);
        }
        for bad in [
            "records",
            "records:",
            ":read",
            "records:fly",
            "Records:read",
            "records..x:read",
            "records.:read",
            "records:read:x",
            "rec ords:read",
            "records';--:read",
            "*.x:read",
        ] {
            assert!(parse_permission(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn role_names_are_checked() {
        assert!(RoleName::parse("billing-admin").is_ok());
        assert!(RoleName::parse("auditor_2").is_ok());
        for bad in [
            "a",
            "Admin",
            "1role",
            "role name",
            "role;drop",
            "-x",
            &"x".repeat(64),
        ] {
            assert!(RoleName::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
