//! The SCIM `Groups` resource, and the tenant admin's mapping of groups to roles.
//!
//! A group is a name, an optional `externalId` and users as members (groups in groups are not
//! kept: `members` of type `Group` are refused). A group a tenant admin mapped to a role gives
//! that role to its members: every change of membership, mapping or existence brings the
//! members' group-managed roles in line in the same transaction
//! (`store::sync_group_roles`) and tells every node to forget the tenant's cached permissions
//! once it commits.

use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::filter::Filter;
use super::patch::{self, Operation};
use super::schema::{self, GROUP_TYPE};
use super::store::{self, GroupRow};
use super::{bounded_name, narrowing, patched, timestamp, ScimError};
use crate::authz::{self, store as authz_store};
use crate::state::DataPlane;
use crate::tenancy::{Principal, RequestContext};
use crate::users::{service as users, UsersError, OWNER};

/// The most members one request may name.
const MAX_MEMBERS: usize = 10_000;

/// The group's SCIM document; `base` is the service's URL.
pub fn resource(row: &GroupRow, base: &str) -> Value {
    let mut document = json!({
        "schemas": [schema::GROUP.id],
        "id": row.id.to_string(),
        "displayName": row.display_name,
        "meta": {
            "resourceType": "Group",
            "created": timestamp(row.created_at),
            "lastModified": timestamp(row.updated_at),
            "location": format!("{base}/Groups/{}", row.id),
        },
    });
    if let Some(external_id) = &row.external_id {
        document["externalId"] = json!(external_id);
    }
    if let Some(members) = row.members.as_array().filter(|members| !members.is_empty()) {
        let members: Vec<Value> = members
            .iter()
            .map(|member| {
                let id = member["value"].as_str().unwrap_or_default();
                json!({
                    "value": id,
                    "$ref": format!("{base}/Users/{id}"),
                    "type": "User",
                })
            })
            .collect();
        document["members"] = Value::Array(members);
    }
    document
}

/// What a group document sets.
struct Fields {
    display_name: String,
    external_id: Option<String>,
    members: Vec<Uuid>,
}

impl Fields {
    fn of(document: &Value) -> Result<Self, ScimError> {
        let display_name = bounded_name(document, "displayName")?
            .ok_or_else(|| ScimError::InvalidValue("displayName is required".to_owned()))?;
        let external_id = bounded_name(document, "externalId")?;
        let listed = document["members"].as_array().cloned().unwrap_or_default();
        if listed.len() > MAX_MEMBERS {
            return Err(ScimError::InvalidValue(format!(
                "at most {MAX_MEMBERS} members per request"
            )));
        }
        let mut members = Vec::with_capacity(listed.len());
        for member in &listed {
            if member["type"].as_str().is_some_and(|kind| kind != "User") {
                return Err(ScimError::InvalidValue(
                    "members must be users: groups in groups are not kept".to_owned(),
                ));
            }
            let value = member["value"].as_str().unwrap_or_default();
            let id = Uuid::parse_str(value).map_err(|_| unknown_member(value))?;
            members.push(id);
        }
        members.sort();
        members.dedup();
        Ok(Self {
            display_name,
            external_id,
            members,
        })
    }
}

fn unknown_member(value: &str) -> ScimError {
    let shown: String = value.chars().take(64).collect();
    ScimError::InvalidValue(format!("member {shown:?} is not a user of this tenant"))
}

fn taken() -> ScimError {
    ScimError::Uniqueness("another group has this displayName".to_owned())
}

/// Refuses members that are not this tenant's users.
async fn check_members(
    transaction: &mut shared::tenant_context::TenantTransaction,
    members: &[Uuid],
) -> Result<(), ScimError> {
    let existing = store::existing_users(transaction, members).await?;
    match members.iter().find(|member| !existing.contains(member)) {
        Some(unknown) => Err(unknown_member(&unknown.to_string())),
        None => Ok(()),
    }
}

/// Commits a change of groups, telling every node to forget the tenant's permissions when
/// roles may have moved (`roles_moved`).
async fn commit(
    state: &DataPlane,
    context: &RequestContext,
    mut transaction: shared::tenant_context::TenantTransaction,
    roles_moved: bool,
) -> Result<(), ScimError> {
    let tenant_id = context.tenant.tenant.id;
    if roles_moved {
        authz_store::notify_changed(&mut transaction, tenant_id, None).await?;
    }
    transaction.commit().await?;
    if roles_moved {
        state.permissions.invalidate_tenant(tenant_id);
    }
    Ok(())
}

pub async fn create(
    state: &DataPlane,
    context: &RequestContext,
    mut document: Value,
    base: &str,
) -> Result<Value, ScimError> {
    patch::clean(&mut document, &GROUP_TYPE)?;
    let fields = Fields::of(&document)?;
    let now = state.clock.now();
    let id = Uuid::now_v7();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    check_members(&mut transaction, &fields.members).await?;
    if !store::insert_group(
        &mut transaction,
        id,
        &fields.display_name,
        fields.external_id.as_deref(),
        now,
    )
    .await?
    {
        return Err(taken());
    }
    store::set_members(&mut transaction, id, &fields.members, now).await?;
    let row = store::group(&mut transaction, id)
        .await?
        .ok_or(ScimError::NotFound("Group"))?;
    // A new group is mapped to no role yet: nobody's roles move.
    commit(state, context, transaction, false).await?;
    Ok(resource(&row, base))
}

pub async fn get(
    state: &DataPlane,
    context: &RequestContext,
    id: Uuid,
    base: &str,
) -> Result<Value, ScimError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let row = store::group(&mut transaction, id)
        .await?
        .ok_or(ScimError::NotFound("Group"))?;
    transaction.commit().await?;
    Ok(resource(&row, base))
}

/// Replaces group `id` with `document` (PUT): members it leaves out are removed.
pub async fn replace(
    state: &DataPlane,
    context: &RequestContext,
    id: Uuid,
    mut document: Value,
    base: &str,
) -> Result<Value, ScimError> {
    patch::clean(&mut document, &GROUP_TYPE)?;
    write(state, context, id, Some(document), &[], base).await
}

/// Applies a PATCH's `operations` to group `id`, all or nothing.
pub async fn patch(
    state: &DataPlane,
    context: &RequestContext,
    id: Uuid,
    operations: &[Operation],
    base: &str,
) -> Result<Value, ScimError> {
    write(state, context, id, None, operations, base).await
}

/// Writes group `id`: `document` when given, else its current document with `operations`
/// applied; the group's row is locked first, so concurrent PATCHes apply one after another.
async fn write(
    state: &DataPlane,
    context: &RequestContext,
    id: Uuid,
    document: Option<Value>,
    operations: &[Operation],
    base: &str,
) -> Result<Value, ScimError> {
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    if !store::lock_group(&mut transaction, id).await? {
        return Err(ScimError::NotFound("Group"));
    }
    let current = store::group(&mut transaction, id)
        .await?
        .ok_or(ScimError::NotFound("Group"))?;
    let document = match document {
        Some(document) => document,
        None => patched(resource(&current, base), &GROUP_TYPE, operations)?,
    };
    let fields = Fields::of(&document)?;
    check_members(&mut transaction, &fields.members).await?;
    if !store::update_group(
        &mut transaction,
        id,
        &fields.display_name,
        fields.external_id.as_deref(),
        now,
    )
    .await?
    {
        return Err(taken());
    }
    let before = store::member_ids(&mut transaction, id).await?;
    store::set_members(&mut transaction, id, &fields.members, now).await?;
    let roles_moved = current.role.is_some() && before != fields.members;
    if roles_moved {
        let mut touched = before;
        touched.extend(&fields.members);
        touched.sort();
        touched.dedup();
        store::sync_group_roles(&mut transaction, &touched, None).await?;
    }
    let row = store::group(&mut transaction, id)
        .await?
        .ok_or(ScimError::NotFound("Group"))?;
    commit(state, context, transaction, roles_moved).await?;
    Ok(resource(&row, base))
}

/// Deletes group `id`; its members lose the role it gave them.
pub async fn delete(
    state: &DataPlane,
    context: &RequestContext,
    id: Uuid,
) -> Result<(), ScimError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    if !store::lock_group(&mut transaction, id).await? {
        return Err(ScimError::NotFound("Group"));
    }
    let role = store::group(&mut transaction, id)
        .await?
        .and_then(|group| group.role);
    let members = store::delete_group(&mut transaction, id)
        .await?
        .ok_or(ScimError::NotFound("Group"))?;
    if let Some(role) = &role {
        store::sync_group_roles(&mut transaction, &members, Some(role)).await?;
    }
    commit(state, context, transaction, role.is_some()).await
}

/// Every group `filter` matches, as SCIM documents, in creation order.
pub async fn matching(
    state: &DataPlane,
    context: &RequestContext,
    filter: Option<&Filter>,
    base: &str,
) -> Result<Vec<Value>, ScimError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let rows = store::groups(&mut transaction, &narrowing(filter, "displayName")).await?;
    transaction.commit().await?;
    Ok(rows
        .iter()
        .map(|row| resource(row, base))
        .filter(|document| filter.is_none_or(|filter| filter.matches(document, &GROUP_TYPE)))
        .collect())
}

/// A group as tenant admins see it: its name, the role it gives and how many members it has.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupMapping {
    pub id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    /// The role its members hold while they are members; none when not mapped.
    pub role: Option<String>,
    pub members: usize,
}

impl From<&GroupRow> for GroupMapping {
    fn from(row: &GroupRow) -> Self {
        Self {
            id: row.id,
            display_name: row.display_name.clone(),
            external_id: row.external_id.clone(),
            role: row.role.clone(),
            members: row.members.as_array().map_or(0, Vec::len),
        }
    }
}

/// Every directory group, with the role each gives.
pub async fn mappings(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<Vec<GroupMapping>, ScimError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let rows = store::groups(&mut transaction, &store::Narrowing::All).await?;
    transaction.commit().await?;
    Ok(rows.iter().map(GroupMapping::from).collect())
}

/// Maps group `id` to `role` (`None`: to none). The role must exist, must not be `owner`, and
/// must grant nothing beyond what `caller` holds; the members' roles follow at once.
pub async fn map_role(
    state: &DataPlane,
    context: &RequestContext,
    caller: &Principal,
    id: Uuid,
    role: Option<String>,
) -> Result<GroupMapping, ScimError> {
    if role.as_deref() == Some(OWNER) {
        return Err(ScimError::Users(UsersError::InvalidInput(
            "a group cannot give the owner role: owners are named by owners".to_owned(),
        )));
    }
    let held = authz::in_force(state, context, caller)
        .await
        .map_err(UsersError::from)?;
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    if !store::lock_group(&mut transaction, id).await? {
        return Err(ScimError::NotFound("Group"));
    }
    let roles: Vec<String> = role.iter().cloned().collect();
    users::check_roles_exist(&mut transaction, &roles).await?;
    users::check_can_grant(&mut transaction, &held, &roles).await?;
    let before = store::group(&mut transaction, id)
        .await?
        .ok_or(ScimError::NotFound("Group"))?;
    store::set_group_role(&mut transaction, id, role.as_deref(), now).await?;
    let members = store::member_ids(&mut transaction, id).await?;
    store::sync_group_roles(&mut transaction, &members, before.role.as_deref()).await?;
    let row = store::group(&mut transaction, id)
        .await?
        .ok_or(ScimError::NotFound("Group"))?;
    commit(state, context, transaction, true).await?;
    Ok(GroupMapping::from(&row))
}
