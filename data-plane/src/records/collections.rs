//! Collections and their settings: which top-level fields are sensitive and who sees which
//! records. A change of sensitive fields re-seals the collection's records in the same
//! transaction, under the collection row's `FOR UPDATE` lock that record writers' key-share
//! locks wait for, so no record is ever stored split by stale settings.

use std::sync::Arc;

use uuid::Uuid;

use super::document::Document;
use super::names::{CollectionName, FieldName};
use super::service::{data_keys, now, open_sealed, seal_document};
use super::store::{self, Access, Collection, Resealed, RowLock};
use super::RecordsError;
use crate::fresh_cache::FreshCache;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// Most sensitive fields a collection may declare.
pub const MAX_SENSITIVE_FIELDS: usize = 64;
/// Records locked and re-sealed per batch (two statements) when a collection's sensitive fields change.
const RESEAL_BATCH: i64 = 500;

/// Each node's cache of collection settings, keyed by (tenant id, collection name), so a record
/// read needs no join. A settings change evicts the entry on every node (NOTIFY
/// `collection:<tenant id>:<name>`); a collection that does not exist yet is not remembered.
pub type CollectionCache = FreshCache<(Uuid, String), Arc<Collection>>;

/// A collection's settings, if it exists.
pub async fn collection(
    state: &DataPlane,
    context: &RequestContext,
    name: &CollectionName,
) -> Result<Option<Arc<Collection>>, RecordsError> {
    let key = (context.tenant.tenant.id, name.as_str().to_owned());
    state
        .collections
        .get_or_load(key, async {
            let mut transaction = state.tenant_db.begin(&context.scope).await?;
            let collection = store::collection(&mut transaction, name, RowLock::None).await?;
            transaction.commit().await?;
            Ok(collection.map(Arc::new))
        })
        .await
}

pub async fn collections(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<Vec<Collection>, RecordsError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::list_collections(&mut transaction).await
}

/// New settings for a collection.
pub struct Settings {
    pub sensitive_fields: Vec<FieldName>,
    pub access: Access,
}

/// Creates or replaces a collection's settings. When its sensitive fields change, every
/// record is re-split and re-sealed in the same transaction, so no field the collection
/// calls sensitive stays in clear and no field it no longer does stays sealed. Returns the
/// collection and whether it was created.
pub async fn save_collection(
    state: &DataPlane,
    context: &RequestContext,
    name: &CollectionName,
    mut settings: Settings,
) -> Result<(Collection, bool), RecordsError> {
    settings.sensitive_fields.sort();
    settings.sensitive_fields.dedup();
    if settings.sensitive_fields.len() > MAX_SENSITIVE_FIELDS {
        return Err(RecordsError::InvalidSettings(format!(
            "at most {MAX_SENSITIVE_FIELDS} sensitive fields"
        )));
    }
    let keys = data_keys(state, context).await?;
    let now = now(state);
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let previous = store::collection(&mut transaction, name, RowLock::Update).await?;
    let collection = store::save_collection(
        &mut transaction,
        name,
        &settings.sensitive_fields,
        settings.access,
        now,
    )
    .await?;
    let changed = previous
        .as_ref()
        .is_some_and(|previous| previous.sensitive_fields != collection.sensitive_fields);
    if changed {
        let mut after = None;
        loop {
            let batch =
                store::batch_for_update(&mut transaction, name, after, RESEAL_BATCH).await?;
            let Some(last) = batch.last() else {
                break;
            };
            after = Some(last.id);
            let mut resealed = Vec::with_capacity(batch.len());
            for record in batch {
                let secret = open_sealed(context, &keys, name, &record)?;
                let document = Document::join(record.data, secret);
                let (data, sealed, key_version, _) =
                    seal_document(state, context, &keys, &collection, record.id, document)?;
                resealed.push(Resealed {
                    id: record.id,
                    data,
                    sealed,
                    key_version,
                });
            }
            store::reseal(&mut transaction, &resealed).await?;
        }
    }
    let tenant_id = context.tenant.tenant.id;
    store::notify_collection_changed(&mut transaction, tenant_id, name).await?;
    transaction.commit().await?;
    state
        .collections
        .invalidate(&(tenant_id, name.as_str().to_owned()));
    Ok((collection, previous.is_none()))
}
