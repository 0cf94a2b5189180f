//! The rules of the records API. Callers have passed the guard already and say what else the
//! caller may do ([`Rights`]); here are the transactions that keep each write whole: the
//! collection's settings read under a key-share lock, the record locked, `If-Match` checked,
//! sensitive fields sealed, the version bumped and the tenant's storage total moved — or
//! nothing at all.
//!
//! Permission lookups and data-key loads take a pool connection of their own, so they all
//! happen before a transaction starts, never while one holds a connection.

use serde::Serialize;
use serde_json::{Map, Value};
use shared::error::ApiError;
use time::OffsetDateTime;
use uuid::Uuid;

use super::document::{self, Document};
use super::names::{CollectionName, FieldName};
use super::query::{Cursor, ListQuery, Sort};
use super::store::{
    self, Access, Collection, ListScope, NewRecord, Replacement, RowLock, StoredRecord,
};
use super::RecordsError;
use crate::authz::{self, Caller};
use crate::state::DataPlane;
use crate::tenancy::data_keys::TenantDataKeys;
use crate::tenancy::RequestContext;

/// What the caller may do beyond the permission its route required, resolved before any
/// transaction starts.
#[derive(Debug, Clone, Copy)]
pub struct Rights {
    /// The signed-in user; `None` for an API key (which owns nothing it creates).
    pub user_id: Option<Uuid>,
    /// Holds `sensitive.<collection>:read`.
    pub read_sensitive: bool,
    /// Holds `records.<collection>:manage` (sees every record of an `owner` collection).
    pub manage: bool,
}

/// A record as a caller sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(examples(json!({
    "id": "0193a5d4-8e2f-7a6b-9c1d-2e3f4a5b6c7d",
    "collection": "invoices",
    "data": { "customer": "Globex", "amount": 1250.5, "currency": "EUR", "paid": false },
    "version": 1,
    "owner_id": "0193a5b9-4c2d-7e1f-a3b4-c5d6e7f8a9b0",
    "created_at": "2026-12-06T10:30:00Z",
    "updated_at": "2026-12-06T10:30:00Z"
})))]
pub struct RecordView {
    pub id: Uuid,
    pub collection: String,
    pub data: Map<String, Value>,
    pub version: i64,
    pub owner_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A record just written, with its sensitive fields in clear (to show only to callers
/// allowed to read them).
pub struct Written {
    pub record: StoredRecord,
    pub secret: Map<String, Value>,
    pub collection: Collection,
}

impl Written {
    pub fn view(self, read_sensitive: bool) -> RecordView {
        let secret = read_sensitive.then_some(self.secret);
        view(self.record, secret, &self.collection.sensitive_fields)
    }
}

/// The view of a stored record: its clear fields (never one the collection now calls
/// sensitive), plus the opened sensitive ones when given.
pub fn view(
    record: StoredRecord,
    secret: Option<Map<String, Value>>,
    sensitive_fields: &[FieldName],
) -> RecordView {
    let mut data = record.data;
    for field in sensitive_fields {
        data.remove(field.as_str());
    }
    if let Some(secret) = secret {
        data.extend(secret);
    }
    RecordView {
        id: record.id,
        collection: record.collection,
        data,
        version: record.version,
        owner_id: record.owner_id,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

/// `If-Match`: `*` (the record must exist) or strong entity tags `"<version>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    Any,
    Versions(Vec<i64>),
}

impl Precondition {
    /// Parses the header's value (several headers joined by commas). Weak tags (`W/"3"`)
    /// are valid but never match: `If-Match` compares strongly (RFC 9110, 13.1.1).
    pub fn parse(header: &str) -> Result<Self, RecordsError> {
        if header.trim() == "*" {
            return Ok(Self::Any);
        }
        let mut versions = Vec::new();
        for tag in header.split(',').map(str::trim) {
            let (weak, tag) = match tag.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, tag),
            };
            let version = tag
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .filter(|inner| !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|inner| inner.parse::<i64>().ok())
                .ok_or(RecordsError::InvalidPrecondition)?;
            if !weak {
                versions.push(version);
            }
        }
        Ok(Self::Versions(versions))
    }

    fn check(&self, current: i64) -> Result<(), RecordsError> {
        match self {
            Self::Any => Ok(()),
            Self::Versions(versions) if versions.contains(&current) => Ok(()),
            Self::Versions(_) => Err(RecordsError::VersionMismatch { current }),
        }
    }
}

/// The entity tag of a record version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Now, at the microsecond precision Postgres stores, so what a write returns is what a
/// later read returns.
pub(super) fn now(state: &DataPlane) -> OffsetDateTime {
    let now = state.clock.now();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

pub(super) async fn data_keys(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<std::sync::Arc<TenantDataKeys>, RecordsError> {
    Ok(state.data_keys.for_tenant(context.tenant.tenant.id).await?)
}

fn quota_exceeded(context: &RequestContext, used: i64, needed: i64) -> RecordsError {
    RecordsError::QuotaExceeded {
        limit: context.tenant.quotas.max_storage_bytes,
        used,
        needed,
    }
}

/// Splits `document` by the collection's sensitive fields and seals the sensitive part with
/// the tenant's current data key: (clear part, sealed part, its key version, sensitive part).
#[allow(clippy::type_complexity)]
pub(super) fn seal_document(
    state: &DataPlane,
    context: &RequestContext,
    keys: &TenantDataKeys,
    collection: &Collection,
    id: Uuid,
    document: Document,
) -> Result<(Value, Option<Vec<u8>>, Option<i32>, Map<String, Value>), RecordsError> {
    let (clear, secret) = document.split(&collection.sensitive_fields);
    let (version, key) = keys.current()?;
    let sealed = document::seal(
        key,
        &state.rng,
        context.tenant.tenant.id,
        &collection.name,
        id,
        &secret,
    )?;
    let key_version = sealed.as_ref().map(|_| version);
    Ok((Value::Object(clear), sealed, key_version, secret))
}

/// Opens a stored record's sensitive fields (empty when it has none).
pub(super) fn open_sealed(
    context: &RequestContext,
    keys: &TenantDataKeys,
    collection: &CollectionName,
    record: &StoredRecord,
) -> Result<Map<String, Value>, RecordsError> {
    match &record.sealed {
        None => Ok(Map::new()),
        Some((sealed, version)) => document::open(
            keys.version(*version)?,
            context.tenant.tenant.id,
            collection,
            record.id,
            sealed,
        ),
    }
}

/// What `caller` may do in collection `name` beyond the permission its route required: read
/// its sensitive fields, see every record of an `owner` collection. Asked of the caller's
/// permissions (cached; a key's scopes and its creator's roles) before any transaction.
pub async fn rights(
    state: &DataPlane,
    context: &RequestContext,
    caller: Caller<'_>,
    name: &CollectionName,
) -> Result<Rights, ApiError> {
    let sensitive = name.sensitive_read_permission();
    let manage = name.permission("manage");
    let held = authz::holds_each(state, context, caller, &[&sensitive, &manage]).await?;
    let (read_sensitive, manage) = match held.as_slice() {
        [read_sensitive, manage] => (*read_sensitive, *manage),
        _ => (false, false),
    };
    Ok(Rights {
        user_id: caller.user_id(),
        read_sensitive,
        manage,
    })
}

/// The record `id` of collection `name` as the caller may see it: not found when the
/// collection is `owner` and the record is someone else's (unless the caller manages it).
pub async fn read(
    state: &DataPlane,
    context: &RequestContext,
    rights: &Rights,
    name: &CollectionName,
    id: Uuid,
) -> Result<RecordView, RecordsError> {
    let (record, collection) = get(state, context, name, id).await?;
    if !visible(&collection, &record, rights) {
        return Err(RecordsError::NotFound);
    }
    views(
        state,
        context,
        &collection,
        vec![record],
        rights.read_sensitive,
    )
    .await?
    .pop()
    .ok_or(RecordsError::NotFound)
}

/// A page of collection `name`'s records as the caller may see them (only their own in an
/// `owner` collection, unless they manage it); empty before the collection's first write.
pub async fn read_page(
    state: &DataPlane,
    context: &RequestContext,
    rights: &Rights,
    name: &CollectionName,
    query: &ListQuery,
) -> Result<Page, RecordsError> {
    let Some(collection) = super::collections::collection(state, context, name).await? else {
        return Ok(Page {
            records: Vec::new(),
            next_cursor: None,
        });
    };
    check_filter(&collection, query)?;
    let only_owner =
        (collection.access == Access::Owner && !rights.manage).then_some(rights.user_id);
    let read_sensitive = rights.read_sensitive && !collection.sensitive_fields.is_empty();
    list(
        state,
        context,
        &collection,
        only_owner,
        query,
        read_sensitive,
    )
    .await
}

/// The collections the caller may read: all of them with `records:read`, else those whose
/// own read permission they hold; 403 when that is none.
pub async fn readable_collections(
    state: &DataPlane,
    context: &RequestContext,
    caller: Caller<'_>,
) -> Result<Vec<Collection>, ApiError> {
    let collections = super::collections::collections(state, context).await?;
    // `records:read` first, then each collection's own read permission: one look in all.
    let each: Vec<String> = collections
        .iter()
        .map(|collection| collection.name.permission("read"))
        .collect();
    let wanted: Vec<&str> = std::iter::once("records:read")
        .chain(each.iter().map(String::as_str))
        .collect();
    let held = authz::holds_each(state, context, caller, &wanted).await?;
    if held.first().copied().unwrap_or(false) {
        return Ok(collections);
    }
    let readable: Vec<Collection> = collections
        .into_iter()
        .zip(held.into_iter().skip(1))
        .filter_map(|(collection, readable)| readable.then_some(collection))
        .collect();
    if readable.is_empty() {
        return Err(authz::Denial::Missing {
            permission: "records:read".to_owned(),
        }
        .into());
    }
    Ok(readable)
}

fn visible(collection: &Collection, record: &StoredRecord, rights: &Rights) -> bool {
    rights.manage || is_visible_to_owner(collection, record, rights.user_id)
}

/// Creates a record, and its collection on the first write.
pub async fn create(
    state: &DataPlane,
    context: &RequestContext,
    user_id: Option<Uuid>,
    name: &CollectionName,
    document: Document,
) -> Result<Written, RecordsError> {
    let keys = data_keys(state, context).await?;
    let now = now(state);
    let id = Uuid::now_v7();
    let size = document.size();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let collection = match store::collection(&mut transaction, name, RowLock::KeyShare).await? {
        Some(collection) => collection,
        None => {
            store::create_collection(&mut transaction, name, now).await?;
            store::collection(&mut transaction, name, RowLock::KeyShare)
                .await?
                .ok_or_else(|| RecordsError::Corrupt("collection vanished".to_owned()))?
        }
    };
    let (data, sealed, key_version, secret) =
        seal_document(state, context, &keys, &collection, id, document)?;
    let new = NewRecord {
        id,
        collection: name,
        owner_id: user_id,
        data,
        sealed,
        key_version,
        size_bytes: size,
        at: now,
    };
    let max = context.tenant.quotas.max_storage_bytes;
    match store::insert(&mut transaction, &new, max).await? {
        Some(record) => {
            transaction.commit().await?;
            Ok(Written {
                record,
                secret,
                collection,
            })
        }
        None => {
            let used = store::storage_used(&mut transaction).await?;
            transaction.rollback().await?;
            Err(quota_exceeded(context, used, size))
        }
    }
}

/// A stored record and its collection's settings; visibility is the caller's to check (see
/// [`is_visible_to_owner`]) and sensitive fields are still sealed.
pub async fn get(
    state: &DataPlane,
    context: &RequestContext,
    name: &CollectionName,
    id: Uuid,
) -> Result<(StoredRecord, Collection), RecordsError> {
    // No collection, no record: the settings come first, from the cache.
    let collection = super::collections::collection(state, context, name)
        .await?
        .ok_or(RecordsError::NotFound)?;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let record = store::read_record(&mut transaction, name, id)
        .await?
        .ok_or(RecordsError::NotFound)?;
    Ok((record, Collection::clone(&collection)))
}

/// Whether a caller who is `user_id` sees `record` without the manage permission.
pub fn is_visible_to_owner(
    collection: &Collection,
    record: &StoredRecord,
    user_id: Option<Uuid>,
) -> bool {
    collection.access == Access::Shared || record.owner_id == user_id
}

/// The views of stored records of one collection, their sensitive fields opened when
/// `read_sensitive`.
pub async fn views(
    state: &DataPlane,
    context: &RequestContext,
    collection: &Collection,
    records: Vec<StoredRecord>,
    read_sensitive: bool,
) -> Result<Vec<RecordView>, RecordsError> {
    let keys = if read_sensitive && records.iter().any(|record| record.sealed.is_some()) {
        Some(data_keys(state, context).await?)
    } else {
        None
    };
    records
        .into_iter()
        .map(|record| {
            let secret = keys
                .as_deref()
                .map(|keys| open_sealed(context, keys, &collection.name, &record))
                .transpose()?;
            Ok(view(record, secret, &collection.sensitive_fields))
        })
        .collect()
}

/// How a write changes a record.
pub enum Change {
    /// PUT: the body becomes the record. Sensitive fields the caller cannot read and did not
    /// send are kept (they never saw them, so leaving them out is not a request to delete).
    Replace(Document),
    /// PATCH: a JSON merge patch (RFC 7396) over the whole record.
    MergePatch(Value),
}

/// Replaces or patches a record under `precondition`.
pub async fn update(
    state: &DataPlane,
    context: &RequestContext,
    rights: &Rights,
    name: &CollectionName,
    id: Uuid,
    precondition: Option<&Precondition>,
    change: Change,
) -> Result<Written, RecordsError> {
    let keys = data_keys(state, context).await?;
    let now = now(state);
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let collection = store::collection(&mut transaction, name, RowLock::KeyShare)
        .await?
        .ok_or(RecordsError::NotFound)?;
    let (current, _) = store::record(&mut transaction, name, id, true)
        .await?
        .ok_or(RecordsError::NotFound)?;
    if !visible(&collection, &current, rights) {
        return Err(RecordsError::NotFound);
    }
    if let Some(precondition) = precondition {
        precondition.check(current.version)?;
    }
    let document = match change {
        Change::Replace(mut document) => {
            if !rights.read_sensitive && current.sealed.is_some() {
                let mut hidden = open_sealed(context, &keys, name, &current)?;
                hidden.retain(|field, _| {
                    collection
                        .sensitive_fields
                        .iter()
                        .any(|sensitive| sensitive.as_str() == field)
                });
                document.keep_missing(hidden);
            }
            document
        }
        Change::MergePatch(patch) => {
            let secret = open_sealed(context, &keys, name, &current)?;
            Document::join(current.data.clone(), secret).merge_patch(patch)?
        }
    };
    let size = document.size();
    let (data, sealed, key_version, secret) =
        seal_document(state, context, &keys, &collection, id, document)?;
    let replacement = Replacement {
        data,
        sealed,
        key_version,
        size_bytes: size,
        at: now,
    };
    let max = context.tenant.quotas.max_storage_bytes;
    match store::replace(&mut transaction, id, current.size_bytes, &replacement, max).await? {
        Some(record) => {
            transaction.commit().await?;
            Ok(Written {
                record,
                secret,
                collection,
            })
        }
        None => {
            let used = store::storage_used(&mut transaction).await?;
            transaction.rollback().await?;
            Err(quota_exceeded(
                context,
                used,
                size.saturating_sub(current.size_bytes),
            ))
        }
    }
}

/// Deletes a record under `precondition`, returning its bytes to the tenant's total.
pub async fn delete(
    state: &DataPlane,
    context: &RequestContext,
    rights: &Rights,
    name: &CollectionName,
    id: Uuid,
    precondition: Option<&Precondition>,
) -> Result<(), RecordsError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let (current, collection) = store::record(&mut transaction, name, id, true)
        .await?
        .ok_or(RecordsError::NotFound)?;
    if !visible(&collection, &current, rights) {
        return Err(RecordsError::NotFound);
    }
    if let Some(precondition) = precondition {
        precondition.check(current.version)?;
    }
    store::delete_then_commit(&mut transaction, id).await
}

/// One page of a list.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RecordPage)]
#[schema(examples(json!({
    "records": [{
        "id": "0193a5d4-8e2f-7a6b-9c1d-2e3f4a5b6c7d",
        "collection": "invoices",
        "data": { "customer": "Globex", "amount": 1250.5, "currency": "EUR", "paid": false },
        "version": 1,
        "owner_id": "0193a5b9-4c2d-7e1f-a3b4-c5d6e7f8a9b0",
        "created_at": "2026-12-06T10:30:00Z",
        "updated_at": "2026-12-06T10:30:00Z"
    }],
    "next_cursor": "Yy4xNzY1MDE3MDAwMDAwMDAwLjAxOTNhNWQ0LThlMmYtN2E2Yi05YzFkLTJlM2Y0YTViNmM3ZA"
})))]
pub struct Page {
    pub records: Vec<RecordView>,
    /// Pass as `cursor` (with the same `sort`) for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of records of `collection`. `only_owner`: in an `owner` collection, the caller
/// (`Some(user id)`, or `Some(None)` for an API key) when it may not see everything.
pub async fn list(
    state: &DataPlane,
    context: &RequestContext,
    collection: &Collection,
    only_owner: Option<Option<Uuid>>,
    query: &ListQuery,
    read_sensitive: bool,
) -> Result<Page, RecordsError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let scope = ListScope {
        collection: &collection.name,
        only_owner,
    };
    let mut records = store::list_then_commit(&mut transaction, &scope, query).await?;
    let more = records.len() as i64 > query.limit;
    records.truncate(usize::try_from(query.limit).unwrap_or(0));
    let next_cursor = if more {
        records.last().map(|record| {
            let at = if matches!(query.sort, Sort::CreatedAscending | Sort::CreatedDescending) {
                record.created_at
            } else {
                record.updated_at
            };
            Cursor { at, id: record.id }.encode(query.sort)
        })
    } else {
        None
    };
    let records = views(state, context, collection, records, read_sensitive).await?;
    Ok(Page {
        records,
        next_cursor,
    })
}

/// Refuses a filter on a sensitive field (its values are sealed, so it could only ever match
/// nothing, and matching would leak them).
pub fn check_filter(collection: &Collection, query: &ListQuery) -> Result<(), RecordsError> {
    match collection
        .sensitive_fields
        .iter()
        .find(|field| query.filter.contains_key(field.as_str()))
    {
        Some(field) => Err(RecordsError::SensitiveFilter(field.to_string())),
        None => Ok(()),
    }
}

/// The tenant's stored record bytes, as counted against its storage quota.
pub async fn storage_used(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<i64, RecordsError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let used = store::storage_used(&mut transaction).await?;
    transaction.commit().await?;
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_is_star_or_strong_quoted_versions() {
        assert_eq!(Precondition::parse("*").unwrap(), Precondition::Any);
        assert_eq!(
            Precondition::parse("\"3\"").unwrap(),
            Precondition::Versions(vec![3])
        );
        assert_eq!(
            Precondition::parse("\"3\", W/\"4\" , \"5\"").unwrap(),
            Precondition::Versions(vec![3, 5])
        );
        for bad in ["3", "\"\"", "\"x\"", "\"3", "\"-1\"", "'3'", ""] {
            assert!(Precondition::parse(bad).is_err(), "{bad}");
        }
        assert!(Precondition::Versions(vec![3]).check(3).is_ok());
        assert!(matches!(
            Precondition::Versions(vec![3]).check(4),
            Err(RecordsError::VersionMismatch { current: 4 })
        ));
        assert!(Precondition::Versions(vec![]).check(1).is_err());
    }
}
