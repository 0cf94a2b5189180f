//! Records: `/v1/collections/{collection}/records`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{path, query, Call, Client, Error};

/// A record as the caller sees it (sensitive fields only for callers allowed to read them).
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub id: Uuid,
    pub collection: String,
    pub data: Map<String, Value>,
    /// Increases with every change; send it in `If-Match` to update only this version.
    pub version: i64,
    pub owner_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One page of a list; pass `next_cursor` (with the same sort) for the next.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordPage {
    pub records: Vec<Record>,
    pub next_cursor: Option<String>,
}

/// A list's parameters: page size, sort (`created`, `-created`, `updated`, `-updated`),
/// cursor, and equality filters on top-level fields.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub limit: Option<u32>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub filters: Vec<(String, String)>,
}

impl ListQuery {
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn sort(mut self, sort: &str) -> Self {
        self.sort = Some(sort.to_owned());
        self
    }

    pub fn cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }

    /// Only records whose `field` equals `value` (a JSON scalar written as in the API:
    /// `done=true`, `title=ship`).
    pub fn filter(mut self, field: &str, value: &str) -> Self {
        self.filters.push((field.to_owned(), value.to_owned()));
        self
    }

    fn to_query(&self) -> String {
        let mut pairs: Vec<(String, Option<String>)> = vec![
            (
                "limit".to_owned(),
                self.limit.map(|limit| limit.to_string()),
            ),
            ("sort".to_owned(), self.sort.clone()),
            ("cursor".to_owned(), self.cursor.clone()),
        ];
        pairs.extend(
            self.filters
                .iter()
                .map(|(field, value)| (format!("filter.{field}"), Some(value.clone()))),
        );
        query(&pairs)
    }
}

/// The records of one collection.
pub struct Records<'c> {
    pub(crate) client: &'c Client,
    pub(crate) collection: String,
}

impl Records<'_> {
    fn records_path(&self) -> String {
        path("/v1/collections", &[&self.collection, "records"])
    }

    fn record_path(&self, id: Uuid) -> String {
        path(
            "/v1/collections",
            &[&self.collection, "records", &id.to_string()],
        )
    }

    /// `POST`: creates a record from a JSON object.
    pub async fn create<T: Serialize + ?Sized>(&self, data: &T) -> Result<Record, Error> {
        self.client.post(self.records_path()).json(data).ok().await
    }

    /// `GET` one record.
    pub async fn get(&self, id: Uuid) -> Result<Record, Error> {
        self.client.get(self.record_path(id)).ok().await
    }

    /// `GET` one page.
    pub async fn list(&self, query: &ListQuery) -> Result<RecordPage, Error> {
        let path = format!("{}{}", self.records_path(), query.to_query());
        self.client.get(path).ok().await
    }

    /// Every record `query` selects, following the cursor page by page.
    pub async fn list_all(&self, query: &ListQuery) -> Result<Vec<Record>, Error> {
        let mut records = Vec::new();
        let mut query = query.clone();
        loop {
            let page = self.list(&query).await?;
            records.extend(page.records);
            match page.next_cursor {
                Some(next) => query.cursor = Some(next),
                None => return Ok(records),
            }
        }
    }

    /// `PUT`: replaces the record's data; with `if_version`, only if it is still that version
    /// (412 `precondition_failed` otherwise).
    pub async fn replace<T: Serialize + ?Sized>(
        &self,
        id: Uuid,
        data: &T,
        if_version: Option<i64>,
    ) -> Result<Record, Error> {
        precondition(self.client.put(self.record_path(id)), if_version)
            .json(data)
            .ok()
            .await
    }

    /// `PATCH`: a JSON merge patch (RFC 7396) of the record's data.
    pub async fn update<T: Serialize + ?Sized>(
        &self,
        id: Uuid,
        patch: &T,
        if_version: Option<i64>,
    ) -> Result<Record, Error> {
        precondition(self.client.patch(self.record_path(id)), if_version)
            .json(patch)
            .ok()
            .await
    }

    /// `DELETE`.
    pub async fn delete(&self, id: Uuid, if_version: Option<i64>) -> Result<(), Error> {
        precondition(self.client.delete(self.record_path(id)), if_version)
            .done()
            .await
    }

    /// `PUT /v1/collections/{collection}`: creates or changes the collection's settings
    /// (`visibility`, `sensitive_fields`, …).
    pub async fn define<T: Serialize + ?Sized>(&self, settings: &T) -> Result<Value, Error> {
        self.client
            .put(path("/v1/collections", &[&self.collection]))
            .json(settings)
            .ok()
            .await
    }
}

fn precondition(call: Call<'_>, if_version: Option<i64>) -> Call<'_> {
    match if_version {
        Some(version) => call.header("If-Match", &format!("\"{version}\"")),
        None => call,
    }
}
