//! The SCIM `Users` resource: a tenant's users as a directory reads and writes them.
//!
//! A user's SCIM document is built from their row: `userName`, `externalId`, `displayName` and
//! `active` (their status) have columns; what else the directory sent (name, emails, phone
//! numbers, addresses, enterprise attributes) is kept as it sent it, cleaned against our
//! schema. A user no directory has written shows their address as `userName` and only email.
//! Writes go through the users admin's rules (`users::service`): owners, the last active
//! owner, sessions ended on deactivation, `max_users`.

use serde_json::{json, Map, Value};
use shared::email::Email;
use uuid::Uuid;

use super::filter::Filter;
use super::patch::{self, Operation};
use super::schema::{self, USER_TYPE};
use super::store::{self, UserFields, UserRow};
use super::{bounded_name, narrowing, patched, timestamp, ScimError};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use crate::users::{service as users, UsersError};

/// Attributes with a column of their own (or made by us), not kept among the directory's.
const COLUMN_ATTRIBUTES: &[&str] = &[
    "schemas",
    "id",
    "meta",
    "userName",
    "externalId",
    "displayName",
    "active",
    "groups",
];

/// The user's SCIM document; `base` is the service's URL (`https://…/scim/v2`).
pub fn resource(row: &UserRow, base: &str) -> Value {
    let mut document = match &row.attributes {
        Some(Value::Object(attributes)) => attributes.clone(),
        _ => {
            let mut attributes = Map::new();
            attributes.insert(
                "emails".to_owned(),
                json!([{ "value": row.email, "type": "work", "primary": true }]),
            );
            attributes
        }
    };
    let mut schemas = vec![json!(schema::USER.id)];
    if document.contains_key(schema::ENTERPRISE_USER.id) {
        schemas.push(json!(schema::ENTERPRISE_USER.id));
    }
    document.insert("schemas".to_owned(), Value::Array(schemas));
    document.insert("id".to_owned(), json!(row.id.to_string()));
    document.insert(
        "userName".to_owned(),
        json!(row.user_name.as_deref().unwrap_or(&row.email)),
    );
    if let Some(external_id) = &row.external_id {
        document.insert("externalId".to_owned(), json!(external_id));
    }
    if !row.display_name.is_empty() {
        document.insert("displayName".to_owned(), json!(row.display_name));
    }
    document.insert("active".to_owned(), json!(row.status == "active"));
    if let Some(groups) = row.groups.as_array().filter(|groups| !groups.is_empty()) {
        let groups: Vec<Value> = groups
            .iter()
            .map(|group| {
                let id = group["value"].as_str().unwrap_or_default();
                json!({
                    "value": id,
                    "display": group["display"],
                    "$ref": format!("{base}/Groups/{id}"),
                    "type": "direct",
                })
            })
            .collect();
        document.insert("groups".to_owned(), Value::Array(groups));
    }
    document.insert(
        "meta".to_owned(),
        json!({
            "resourceType": "User",
            "created": timestamp(row.created_at),
            "lastModified": timestamp(row.updated_at),
            "location": format!("{base}/Users/{}", row.id),
        }),
    );
    Value::Object(document)
}

/// What a user document sets: the columns and the rest.
struct Fields {
    user_name: String,
    external_id: Option<String>,
    display_name: String,
    email: Email,
    active: bool,
    attributes: Value,
}

/// The address a document gives its user: the primary email, else the first, else an
/// email-shaped `userName`, else `current` (the address the user has now).
fn email_of(document: &Value, user_name: &str, current: Option<&str>) -> Result<Email, ScimError> {
    let emails = document["emails"].as_array().cloned().unwrap_or_default();
    let chosen = emails
        .iter()
        .find(|email| email["primary"] == json!(true))
        .or_else(|| emails.first())
        .and_then(|email| email["value"].as_str());
    if let Some(address) = chosen {
        return Email::parse(address).map_err(|error| {
            ScimError::InvalidValue(format!("emails: {address:?} is not an address: {error}"))
        });
    }
    if let Ok(address) = Email::parse(user_name) {
        return Ok(address);
    }
    match current {
        Some(current) => Ok(Email::from_stored(current.to_owned())),
        None => Err(ScimError::InvalidValue(
            "a user needs an email address: send emails, or a userName that is one".to_owned(),
        )),
    }
}

impl Fields {
    /// The fields of a cleaned user document; `current`: the user's address now, if any.
    fn of(document: &Value, current: Option<&str>) -> Result<Self, ScimError> {
        let user_name = bounded_name(document, "userName")?
            .ok_or_else(|| ScimError::InvalidValue("userName is required".to_owned()))?;
        let external_id = bounded_name(document, "externalId")?;
        let display_name = users::display_name(document["displayName"].as_str())
            .map_err(|error| ScimError::InvalidValue(format!("displayName: {error}")))?;
        let email = email_of(document, &user_name, current)?;
        let active = match document.get("active") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(active)) => *active,
            Some(_) => return Err(ScimError::InvalidValue("active must be a boolean".into())),
        };
        let attributes: Map<String, Value> = document
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .filter(|(key, _)| !COLUMN_ATTRIBUTES.contains(&key.as_str()))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            user_name,
            external_id,
            display_name,
            email,
            active,
            attributes: Value::Object(attributes),
        })
    }

    fn columns(&self) -> UserFields<'_> {
        UserFields {
            email: self.email.as_str(),
            display_name: &self.display_name,
            user_name: &self.user_name,
            external_id: self.external_id.as_deref(),
            attributes: &self.attributes,
        }
    }
}

/// The user a key acts for: its maker (or the signed-in admin calling).
pub fn actor(context: &RequestContext) -> Result<Uuid, shared::error::ApiError> {
    match context.caller()? {
        crate::authz::Caller::User(principal) => Ok(principal.user_id),
        crate::authz::Caller::ApiKey(key) => key
            .created_by
            .ok_or_else(|| crate::authz::Denial::NoCredential.into()),
    }
}

/// Creates a user from a directory's document.
pub async fn create(
    state: &DataPlane,
    context: &RequestContext,
    mut document: Value,
    base: &str,
) -> Result<Value, ScimError> {
    patch::clean(&mut document, &USER_TYPE)?;
    let fields = Fields::of(&document, None)?;
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::lock_names(
        &mut transaction,
        &[fields.user_name.clone(), fields.email.as_str().to_owned()],
    )
    .await?;
    if store::name_taken(
        &mut transaction,
        &fields.user_name,
        fields.email.as_str(),
        None,
    )
    .await?
    {
        return Err(taken());
    }
    crate::quotas::reserve_user_seat(&mut transaction, &context.tenant.quotas)
        .await
        .map_err(UsersError::from)?;
    let id = Uuid::now_v7();
    store::insert_user(&mut transaction, id, &fields.columns(), fields.active, now).await?;
    let row = store::user(&mut transaction, id)
        .await?
        .ok_or(ScimError::NotFound("User"))?;
    transaction.commit().await?;
    Ok(resource(&row, base))
}

fn taken() -> ScimError {
    ScimError::Uniqueness("another user has this userName or email address".to_owned())
}

pub async fn get(
    state: &DataPlane,
    context: &RequestContext,
    id: Uuid,
    base: &str,
) -> Result<Value, ScimError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let row = store::user(&mut transaction, id)
        .await?
        .ok_or(ScimError::NotFound("User"))?;
    transaction.commit().await?;
    Ok(resource(&row, base))
}

/// Replaces user `id` with `document` (PUT): what it leaves out is cleared.
pub async fn replace(
    state: &DataPlane,
    context: &RequestContext,
    actor: Uuid,
    id: Uuid,
    mut document: Value,
    base: &str,
) -> Result<Value, ScimError> {
    patch::clean(&mut document, &USER_TYPE)?;
    write(state, context, actor, id, Some(document), &[], base).await
}

/// Applies a PATCH's `operations` to user `id`, all or nothing.
pub async fn patch(
    state: &DataPlane,
    context: &RequestContext,
    actor: Uuid,
    id: Uuid,
    operations: &[Operation],
    base: &str,
) -> Result<Value, ScimError> {
    write(state, context, actor, id, None, operations, base).await
}

/// Writes user `id` under the users admin's rules: `document` (cleaned) when given, else their
/// current document with `operations` applied. The user's row is locked before it is read, so
/// concurrent PATCHes apply one after another and none is lost.
async fn write(
    state: &DataPlane,
    context: &RequestContext,
    actor: Uuid,
    id: Uuid,
    document: Option<Value>,
    operations: &[Operation],
    base: &str,
) -> Result<Value, ScimError> {
    let now = state.clock.now();
    let mut change = users::begin_change(state, context, actor, id)
        .await
        .map_err(not_found)?;
    let current = store::user(&mut change.transaction, id)
        .await?
        .ok_or(ScimError::NotFound("User"))?;
    let document = match document {
        Some(document) => document,
        None => patched(resource(&current, base), &USER_TYPE, operations)?,
    };
    let fields = Fields::of(&document, Some(&current.email))?;
    store::lock_names(
        &mut change.transaction,
        &[fields.user_name.clone(), fields.email.as_str().to_owned()],
    )
    .await?;
    if store::name_taken(
        &mut change.transaction,
        &fields.user_name,
        fields.email.as_str(),
        Some(id),
    )
    .await?
    {
        return Err(taken());
    }
    store::update_user(&mut change.transaction, id, &fields.columns(), now).await?;
    match (fields.active, current.status == "active") {
        (false, true) => users::disable_in(&mut change, context).await?,
        (true, false) => store::activate(&mut change.transaction, id, now).await?,
        _ => {}
    }
    let row = store::user(&mut change.transaction, id)
        .await?
        .ok_or(ScimError::NotFound("User"))?;
    change.commit().await?;
    Ok(resource(&row, base))
}

fn not_found(error: UsersError) -> ScimError {
    match error {
        UsersError::NotFound => ScimError::NotFound("User"),
        error => ScimError::Users(error),
    }
}

/// Deletes user `id` as the users admin would (their sessions end, their data is erased).
pub async fn delete(
    state: &DataPlane,
    context: &RequestContext,
    actor: Uuid,
    id: Uuid,
) -> Result<(), ScimError> {
    users::delete_as(state, context, actor, id)
        .await
        .map_err(not_found)
}

/// Every user `filter` matches, as SCIM documents, in creation order.
pub async fn matching(
    state: &DataPlane,
    context: &RequestContext,
    filter: Option<&Filter>,
    base: &str,
) -> Result<Vec<Value>, ScimError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let rows = store::users(&mut transaction, &narrowing(filter, "userName")).await?;
    transaction.commit().await?;
    Ok(rows
        .iter()
        .map(|row| resource(row, base))
        .filter(|document| filter.is_none_or(|filter| filter.matches(document, &USER_TYPE)))
        .collect())
}
