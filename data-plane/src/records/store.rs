//! SQL of the records API, run in the tenant's transaction (so only ever in the tenant's own
//! schema). Every value is a parameter; the only SQL text chosen at run time comes from
//! [`Sort`](super::query::Sort) and [`RowLock`], fixed strings picked by enum.
//!
//! Lock order, everywhere: a collection's row before its records' rows. Writers of records
//! hold the collection row `FOR KEY SHARE` (so they see its current settings and a settings
//! change waits for them); a settings change holds it `FOR UPDATE` while it re-seals records.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;
use uuid::Uuid;

use super::names::{CollectionName, FieldName};
use super::query::ListQuery;
use super::RecordsError;

/// Who sees a collection's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CollectionAccess)]
pub enum Access {
    /// Every caller with read permission reads every record.
    #[default]
    Shared,
    /// Callers see the records they own, unless they hold `records.<collection>:manage`.
    Owner,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Owner => "owner",
        }
    }

    fn from_stored(text: &str) -> Result<Self, RecordsError> {
        match text {
            "shared" => Ok(Self::Shared),
            "owner" => Ok(Self::Owner),
            other => Err(RecordsError::Corrupt(format!(
                "unknown access mode {other}"
            ))),
        }
    }
}

/// A collection and its settings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Collection {
    #[schema(value_type = String)]
    pub name: CollectionName,
    /// Fields stored encrypted with the tenant's data key, shown only to callers holding
    /// `sensitive.<collection>:read`.
    #[schema(value_type = Vec<String>)]
    pub sensitive_fields: Vec<FieldName>,
    pub access: Access,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

const COLLECTION_COLUMNS: &str = "c.name, c.sensitive_fields, c.access, c.created_at, c.updated_at";

fn collection_from_row(row: &Row, offset: usize) -> Result<Collection, RecordsError> {
    let name: String = row.try_get(offset)?;
    let sensitive: Vec<String> = row.try_get(offset + 1)?;
    let access: String = row.try_get(offset + 2)?;
    Ok(Collection {
        name: CollectionName::parse(&name)
            .map_err(|_| RecordsError::Corrupt(format!("stored collection name {name:?}")))?,
        sensitive_fields: sensitive
            .iter()
            .map(|field| {
                FieldName::parse(field)
                    .map_err(|_| RecordsError::Corrupt(format!("stored field name {field:?}")))
            })
            .collect::<Result<_, _>>()?,
        access: Access::from_stored(&access)?,
        created_at: row.try_get(offset + 3)?,
        updated_at: row.try_get(offset + 4)?,
    })
}

/// A record as stored: the clear part, and the sealed part with its data-key version.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub id: Uuid,
    pub collection: String,
    pub owner_id: Option<Uuid>,
    pub data: Map<String, Value>,
    pub sealed: Option<(Vec<u8>, i32)>,
    pub version: i64,
    pub size_bytes: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const RECORD_COLUMNS: &str = "r.id, r.collection, r.owner_id, r.data, r.sealed, r.key_version,
     r.version, r.size_bytes, r.created_at, r.updated_at";
/// How many columns [`RECORD_COLUMNS`] has (where a joined collection's columns start).
const RECORD_COLUMN_COUNT: usize = 10;

fn record_from_row(row: &Row) -> Result<StoredRecord, RecordsError> {
    let data = match row.try_get::<_, Value>(3)? {
        Value::Object(object) => object,
        _ => {
            return Err(RecordsError::Corrupt(
                "record data is not an object".to_owned(),
            ))
        }
    };
    let sealed: Option<Vec<u8>> = row.try_get(4)?;
    let key_version: Option<i32> = row.try_get(5)?;
    Ok(StoredRecord {
        id: row.try_get(0)?,
        collection: row.try_get(1)?,
        owner_id: row.try_get(2)?,
        data,
        sealed: sealed.zip(key_version),
        version: row.try_get(6)?,
        size_bytes: row.try_get(7)?,
        created_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
    })
}

/// How a read locks the rows it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLock {
    None,
    /// Record writers: the settings cannot change under them.
    KeyShare,
    /// Settings changes.
    Update,
}

pub async fn collection(
    transaction: &mut TenantTransaction,
    name: &CollectionName,
    lock: RowLock,
) -> Result<Option<Collection>, RecordsError> {
    let locking = match lock {
        RowLock::None => "",
        RowLock::KeyShare => " FOR KEY SHARE",
        RowLock::Update => " FOR UPDATE",
    };
    let sql =
        format!("SELECT {COLLECTION_COLUMNS} FROM record_collections c WHERE c.name = $1{locking}");
    let name = name.as_str();
    let rows = transaction
        .query_typed(&sql, &[(&name, Type::TEXT)])
        .await?;
    rows.first()
        .map(|row| collection_from_row(row, 0))
        .transpose()
}

/// Creates the collection with default settings unless it exists.
pub async fn create_collection(
    transaction: &mut TenantTransaction,
    name: &CollectionName,
    now: OffsetDateTime,
) -> Result<(), RecordsError> {
    let name = name.as_str();
    transaction
        .query_typed(
            "INSERT INTO record_collections (name, created_at, updated_at) VALUES ($1, $2, $2)
             ON CONFLICT (name) DO NOTHING",
            &[(&name, Type::TEXT), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    Ok(())
}

/// Creates or replaces the collection's settings.
pub async fn save_collection(
    transaction: &mut TenantTransaction,
    name: &CollectionName,
    sensitive_fields: &[FieldName],
    access: Access,
    now: OffsetDateTime,
) -> Result<Collection, RecordsError> {
    let name = name.as_str();
    let sensitive: Vec<&str> = sensitive_fields.iter().map(FieldName::as_str).collect();
    let access = access.as_str();
    let sql = format!(
        "INSERT INTO record_collections AS c (name, sensitive_fields, access, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (name) DO UPDATE
         SET sensitive_fields = excluded.sensitive_fields, access = excluded.access,
             updated_at = excluded.updated_at
         RETURNING {COLLECTION_COLUMNS}"
    );
    let rows = transaction
        .query_typed(
            &sql,
            &[
                (&name, Type::TEXT),
                (&sensitive, Type::TEXT_ARRAY),
                (&access, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| RecordsError::Corrupt("upsert returned no row".to_owned()))?;
    collection_from_row(row, 0)
}

pub async fn list_collections(
    transaction: &mut TenantTransaction,
) -> Result<Vec<Collection>, RecordsError> {
    let sql = format!("SELECT {COLLECTION_COLUMNS} FROM record_collections c ORDER BY c.name");
    let rows = transaction.query_then_commit(&sql, &[]).await?;
    rows.iter().map(|row| collection_from_row(row, 0)).collect()
}

/// A record to insert, already split and sealed.
pub struct NewRecord<'a> {
    pub id: Uuid,
    pub collection: &'a CollectionName,
    pub owner_id: Option<Uuid>,
    pub data: Value,
    pub sealed: Option<Vec<u8>>,
    pub key_version: Option<i32>,
    pub size_bytes: i64,
    pub at: OffsetDateTime,
}

/// Inserts the record and adds its size to the tenant's total, unless the total would pass
/// `max_storage_bytes`: then nothing is written and `None` comes back.
pub async fn insert(
    transaction: &mut TenantTransaction,
    record: &NewRecord<'_>,
    max_storage_bytes: i64,
) -> Result<Option<StoredRecord>, RecordsError> {
    let collection = record.collection.as_str();
    let sql = format!(
        "WITH usage AS (
             UPDATE storage_usage SET record_bytes = record_bytes + $7
             WHERE id = 1 AND record_bytes + $7 <= $9
             RETURNING record_bytes)
         INSERT INTO records AS r (id, collection, owner_id, data, sealed, key_version, version,
                                   size_bytes, created_at, updated_at)
         SELECT $1, $2, $3, $4, $5, $6, 1, $7, $8, $8 FROM usage
         RETURNING {RECORD_COLUMNS}"
    );
    let rows = transaction
        .query_typed(
            &sql,
            &[
                (&record.id, Type::UUID),
                (&collection, Type::TEXT),
                (&record.owner_id, Type::UUID),
                (&record.data, Type::JSONB),
                (&record.sealed, Type::BYTEA),
                (&record.key_version, Type::INT4),
                (&record.size_bytes, Type::INT8),
                (&record.at, Type::TIMESTAMPTZ),
                (&max_storage_bytes, Type::INT8),
            ],
        )
        .await?;
    rows.first().map(record_from_row).transpose()
}

/// A record with its collection's settings, `FOR UPDATE` when `for_update` (the caller holds
/// the collection row already, so the lock order is kept).
pub async fn record(
    transaction: &mut TenantTransaction,
    collection: &CollectionName,
    id: Uuid,
    for_update: bool,
) -> Result<Option<(StoredRecord, Collection)>, RecordsError> {
    let locking = if for_update { " FOR UPDATE OF r" } else { "" };
    let sql = format!(
        "SELECT {RECORD_COLUMNS}, {COLLECTION_COLUMNS}
         FROM records r JOIN record_collections c ON c.name = r.collection
         WHERE r.id = $1 AND r.collection = $2{locking}"
    );
    let collection = collection.as_str();
    let params: [(&(dyn ToSql + Sync), Type); 2] = [(&id, Type::UUID), (&collection, Type::TEXT)];
    let rows = if for_update {
        transaction.query_typed(&sql, &params).await?
    } else {
        transaction.query_then_commit(&sql, &params).await?
    };
    rows.first()
        .map(|row| {
            Ok((
                record_from_row(row)?,
                collection_from_row(row, RECORD_COLUMN_COUNT)?,
            ))
        })
        .transpose()
}

/// The record `id` of `collection`, read alone (its collection's settings come from the cache)
/// and committed in the same round trip.
pub async fn read_record(
    transaction: &mut TenantTransaction,
    collection: &CollectionName,
    id: Uuid,
) -> Result<Option<StoredRecord>, RecordsError> {
    let sql =
        format!("SELECT {RECORD_COLUMNS} FROM records r WHERE r.id = $1 AND r.collection = $2");
    let collection = collection.as_str();
    let params: [(&(dyn ToSql + Sync), Type); 2] = [(&id, Type::UUID), (&collection, Type::TEXT)];
    let rows = transaction.query_then_commit(&sql, &params).await?;
    rows.first().map(record_from_row).transpose()
}

/// New content for a record the caller has locked.
pub struct Replacement {
    pub data: Value,
    pub sealed: Option<Vec<u8>>,
    pub key_version: Option<i32>,
    pub size_bytes: i64,
    pub at: OffsetDateTime,
}

/// Replaces a locked record's content, bumps its version and moves the tenant's total by the
/// size difference, unless a growth would pass `max_storage_bytes`: then nothing is written
/// and `None` comes back. Shrinking is always allowed.
pub async fn replace(
    transaction: &mut TenantTransaction,
    id: Uuid,
    old_size: i64,
    replacement: &Replacement,
    max_storage_bytes: i64,
) -> Result<Option<StoredRecord>, RecordsError> {
    let delta = replacement.size_bytes.saturating_sub(old_size);
    let sql = format!(
        "WITH usage AS (
             UPDATE storage_usage SET record_bytes = record_bytes + $6
             WHERE id = 1 AND ($6 <= 0 OR record_bytes + $6 <= $7)
             RETURNING record_bytes)
         UPDATE records AS r
         SET data = $2, sealed = $3, key_version = $4, size_bytes = $5,
             version = r.version + 1, updated_at = $8
         FROM usage WHERE r.id = $1
         RETURNING {RECORD_COLUMNS}"
    );
    let rows = transaction
        .query_typed(
            &sql,
            &[
                (&id, Type::UUID),
                (&replacement.data, Type::JSONB),
                (&replacement.sealed, Type::BYTEA),
                (&replacement.key_version, Type::INT4),
                (&replacement.size_bytes, Type::INT8),
                (&delta, Type::INT8),
                (&max_storage_bytes, Type::INT8),
                (&replacement.at, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    rows.first().map(record_from_row).transpose()
}

/// A record's stored parts after its collection's sensitive fields changed.
pub struct Resealed {
    pub id: Uuid,
    pub data: Value,
    pub sealed: Option<Vec<u8>>,
    pub key_version: Option<i32>,
}

/// Stores re-split records (locked by the caller) in one statement. Sizes (the record's JSON)
/// and versions stay: their content did not change.
pub async fn reseal(
    transaction: &mut TenantTransaction,
    records: &[Resealed],
) -> Result<(), RecordsError> {
    let ids: Vec<Uuid> = records.iter().map(|record| record.id).collect();
    let data: Vec<&Value> = records.iter().map(|record| &record.data).collect();
    let sealed: Vec<Option<&[u8]>> = records
        .iter()
        .map(|record| record.sealed.as_deref())
        .collect();
    let versions: Vec<Option<i32>> = records.iter().map(|record| record.key_version).collect();
    transaction
        .query_typed(
            "UPDATE records AS r SET data = u.data, sealed = u.sealed, key_version = u.key_version
             FROM unnest($1::uuid[], $2::jsonb[], $3::bytea[], $4::integer[])
                  AS u(id, data, sealed, key_version)
             WHERE r.id = u.id",
            &[
                (&ids, Type::UUID_ARRAY),
                (&data, Type::JSONB_ARRAY),
                (&sealed, Type::BYTEA_ARRAY),
                (&versions, Type::INT4_ARRAY),
            ],
        )
        .await?;
    Ok(())
}

/// Up to `limit` records of the collection after `after` in id order, locked: a settings
/// change walks its collection with this.
pub async fn batch_for_update(
    transaction: &mut TenantTransaction,
    collection: &CollectionName,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StoredRecord>, RecordsError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records r
         WHERE r.collection = $1 AND ($2::uuid IS NULL OR r.id > $2)
         ORDER BY r.id LIMIT $3 FOR UPDATE"
    );
    let collection = collection.as_str();
    let rows = transaction
        .query_typed(
            &sql,
            &[
                (&collection, Type::TEXT),
                (&after, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(record_from_row).collect()
}

/// Deletes a locked record, subtracts its size from the tenant's total, and commits.
pub async fn delete_then_commit(
    transaction: &mut TenantTransaction,
    id: Uuid,
) -> Result<(), RecordsError> {
    transaction
        .query_then_commit(
            "WITH gone AS (DELETE FROM records WHERE id = $1 RETURNING size_bytes)
             UPDATE storage_usage SET record_bytes = record_bytes - gone.size_bytes
             FROM gone WHERE storage_usage.id = 1",
            &[(&id, Type::UUID)],
        )
        .await?;
    Ok(())
}

/// Which records of a collection a list may return.
pub struct ListScope<'a> {
    pub collection: &'a CollectionName,
    /// `Some(owner)`: only records whose owner is `owner` (`None` inside: ownerless records,
    /// those API keys created).
    pub only_owner: Option<Option<Uuid>>,
}

/// One page of records (`query.limit + 1` rows, so the caller knows whether more follow),
/// then commits.
pub async fn list_then_commit(
    transaction: &mut TenantTransaction,
    scope: &ListScope<'_>,
    query: &ListQuery,
) -> Result<Vec<StoredRecord>, RecordsError> {
    let collection = scope.collection.as_str();
    let filter = (!query.filter.is_empty()).then(|| Value::Object(query.filter.clone()));
    let restricted = scope.only_owner.is_some();
    let owner = scope.only_owner.flatten();
    let (after_at, after_id) = query.after.map(|cursor| (cursor.at, cursor.id)).unzip();
    let limit = query.limit.saturating_add(1);
    let column = query.sort.column();
    let (comparison, direction) = if query.sort.descending() {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM records r
         WHERE r.collection = $1
           AND ($2::jsonb IS NULL OR r.data @> $2)
           AND (NOT $3 OR r.owner_id IS NOT DISTINCT FROM $4)
           AND ($5::timestamptz IS NULL OR (r.{column}, r.id) {comparison} ($5, $6))
         ORDER BY r.{column} {direction}, r.id {direction}
         LIMIT $7"
    );
    let rows = transaction
        .query_then_commit(
            &sql,
            &[
                (&collection, Type::TEXT),
                (&filter, Type::JSONB),
                (&restricted, Type::BOOL),
                (&owner, Type::UUID),
                (&after_at, Type::TIMESTAMPTZ),
                (&after_id, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter().map(record_from_row).collect()
}

/// The tenant's stored record bytes, as counted against its storage quota.
pub async fn storage_used(transaction: &mut TenantTransaction) -> Result<i64, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT coalesce((SELECT record_bytes FROM storage_usage WHERE id = 1), 0)",
            &[],
        )
        .await?;
    Ok(rows.first().map_or(Ok(0), |row| row.try_get(0))?)
}

/// Deletes every record `owner_id` owns and returns their bytes to the tenant's total (GDPR
/// erasure under the `delete` policy); how many went.
pub async fn delete_owned_by(
    transaction: &mut TenantTransaction,
    owner_id: Uuid,
) -> Result<u64, TenantDbError> {
    let rows = transaction
        .query_typed(
            "WITH gone AS (DELETE FROM records WHERE owner_id = $1 RETURNING size_bytes),
                  usage AS (
                      UPDATE storage_usage
                      SET record_bytes = record_bytes - (SELECT coalesce(sum(size_bytes), 0) FROM gone)
                      WHERE id = 1)
             SELECT count(*) FROM gone",
            &[(&owner_id, Type::UUID)],
        )
        .await?;
    Ok(rows
        .first()
        .map_or(Ok(0_i64), |row| row.try_get(0))?
        .unsigned_abs())
}

/// Gives every record `owner_id` owns to `new_owner` (GDPR erasure under the `reassign`
/// policy). Each moved record's version grows, as its representation changed; how many moved.
pub async fn reassign_owned_by(
    transaction: &mut TenantTransaction,
    owner_id: Uuid,
    new_owner: Uuid,
    now: OffsetDateTime,
) -> Result<u64, TenantDbError> {
    let rows = transaction
        .query_typed(
            "WITH moved AS (
                 UPDATE records SET owner_id = $2, version = version + 1, updated_at = $3
                 WHERE owner_id = $1 RETURNING 1)
             SELECT count(*) FROM moved",
            &[
                (&owner_id, Type::UUID),
                (&new_owner, Type::UUID),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(rows
        .first()
        .map_or(Ok(0_i64), |row| row.try_get(0))?
        .unsigned_abs())
}
