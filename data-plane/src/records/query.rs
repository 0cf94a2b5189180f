//! The list query (`?limit=&cursor=&sort=&filter.<field>=`) parsed into a [`ListQuery`], and
//! the opaque cursor. Everything here is checked before any SQL runs: a sort is one of four
//! enum values (each maps to fixed SQL text), filter names are [`FieldName`]s and filter
//! values JSON scalars that travel as one `jsonb` parameter.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::document::has_nul;
use super::names::FieldName;
use super::RecordsError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;
/// Most filters one list request may combine.
pub const MAX_FILTERS: usize = 16;
/// 9999-12-31T23:59:59.999999Z in microseconds since the epoch.
const MAX_CURSOR_MICROS: i128 = 253_402_300_799_999_999;
/// Longest filter value, in bytes.
const MAX_FILTER_VALUE: usize = 1024;

/// The orders a list can be sorted in; ties are broken by record id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    CreatedAscending,
    CreatedDescending,
    UpdatedAscending,
    UpdatedDescending,
}

impl Sort {
    pub fn parse(text: &str) -> Result<Self, RecordsError> {
        match text {
            "created" => Ok(Self::CreatedAscending),
            "-created" => Ok(Self::CreatedDescending),
            "updated" => Ok(Self::UpdatedAscending),
            "-updated" => Ok(Self::UpdatedDescending),
            _ => Err(RecordsError::InvalidQuery(
                "sort is one of created, -created, updated, -updated".to_owned(),
            )),
        }
    }

    /// The timestamp column this order follows (fixed SQL text).
    pub fn column(self) -> &'static str {
        match self {
            Self::CreatedAscending | Self::CreatedDescending => "created_at",
            Self::UpdatedAscending | Self::UpdatedDescending => "updated_at",
        }
    }

    pub fn descending(self) -> bool {
        matches!(self, Self::CreatedDescending | Self::UpdatedDescending)
    }

    fn cursor_tag(self) -> char {
        match self {
            Self::CreatedAscending => 'c',
            Self::CreatedDescending => 'C',
            Self::UpdatedAscending => 'u',
            Self::UpdatedDescending => 'U',
        }
    }
}

/// Where a page starts: after the record with this sort timestamp and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: OffsetDateTime,
    pub id: Uuid,
}

impl Cursor {
    /// The opaque text handed to clients; it names the sort it was made for.
    pub fn encode(&self, sort: Sort) -> String {
        let micros = self.at.unix_timestamp_nanos() / 1_000;
        URL_SAFE_NO_PAD.encode(format!("{}.{micros}.{}", sort.cursor_tag(), self.id))
    }

    pub fn decode(text: &str, sort: Sort) -> Result<Self, RecordsError> {
        let invalid = || RecordsError::InvalidCursor;
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(3, '.');
        let (Some(tag), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        if tag.chars().ne(std::iter::once(sort.cursor_tag())) {
            return Err(RecordsError::InvalidQuery(
                "this cursor belongs to another sort order".to_owned(),
            ));
        }
        let micros: i128 = micros.parse().map_err(|_| invalid())?;
        // Only times this API can have written (1970 to 9999), all within Postgres' range.
        if !(0..=MAX_CURSOR_MICROS).contains(&micros) {
            return Err(invalid());
        }
        let at = OffsetDateTime::from_unix_timestamp_nanos(micros.saturating_mul(1_000))
            .map_err(|_| invalid())?;
        let id = Uuid::parse_str(id).map_err(|_| invalid())?;
        Ok(Self { at, id })
    }
}

/// A parsed list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub limit: i64,
    pub sort: Sort,
    pub after: Option<Cursor>,
    /// Equality on top-level fields, as one object for `data @> $1`.
    pub filter: Map<String, Value>,
}

impl ListQuery {
    /// Parses a raw query string; every parameter must be known and appear once.
    pub fn parse(query_string: &str) -> Result<Self, RecordsError> {
        let mut limit = None;
        let mut sort = None;
        let mut cursor = None;
        let mut filter = Map::new();
        for (name, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
            let duplicate = || RecordsError::InvalidQuery(format!("{name} is given twice"));
            if let Some(field) = name.strip_prefix("filter.") {
                let field = FieldName::parse(field)
                    .map_err(|_| RecordsError::InvalidField(field.to_owned()))?;
                if filter.contains_key(field.as_str()) {
                    return Err(duplicate());
                }
                if filter.len() == MAX_FILTERS {
                    return Err(RecordsError::InvalidQuery(format!(
                        "at most {MAX_FILTERS} filters"
                    )));
                }
                filter.insert(field.as_str().to_owned(), filter_value(&value)?);
                continue;
            }
            match name.as_ref() {
                "limit" if limit.is_none() => {
                    let parsed: i64 = value.parse().map_err(|_| limit_error())?;
                    if !(1..=MAX_LIMIT).contains(&parsed) {
                        return Err(limit_error());
                    }
                    limit = Some(parsed);
                }
                "sort" if sort.is_none() => sort = Some(Sort::parse(&value)?),
                "cursor" if cursor.is_none() => cursor = Some(value.into_owned()),
                "limit" | "sort" | "cursor" => return Err(duplicate()),
                _ => {
                    return Err(RecordsError::InvalidQuery(
                        "unknown parameter: use limit, cursor, sort or filter.<field>".to_owned(),
                    ))
                }
            }
        }
        let sort = sort.unwrap_or(Sort::CreatedAscending);
        let after = cursor
            .map(|cursor| Cursor::decode(&cursor, sort))
            .transpose()?;
        Ok(Self {
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            sort,
            after,
            filter,
        })
    }
}

fn limit_error() -> RecordsError {
    RecordsError::InvalidQuery(format!("limit must be 1 to {MAX_LIMIT}"))
}

/// A filter value: a JSON scalar (`3`, `true`, `null`, `"open"`); text that is not JSON is
/// taken as a string (so `filter.status=open` works). Objects and arrays are refused.
fn filter_value(text: &str) -> Result<Value, RecordsError> {
    if text.len() > MAX_FILTER_VALUE {
        return Err(RecordsError::InvalidQuery(format!(
            "a filter value has at most {MAX_FILTER_VALUE} bytes"
        )));
    }
    let value = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_) | Value::Array(_)) => {
            return Err(RecordsError::InvalidQuery(
                "a filter value is a JSON scalar (string, number, boolean or null)".to_owned(),
            ))
        }
        Ok(value) => value,
        Err(_) => Value::String(text.to_owned()),
    };
    if has_nul(&value) {
        return Err(RecordsError::InvalidQuery(
            "a filter value may not contain the NUL character (U+0000)".to_owned(),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_and_filters() {
        let query = ListQuery::parse("").unwrap();
        assert_eq!(query.limit, DEFAULT_LIMIT);
        assert_eq!(query.sort, Sort::CreatedAscending);
        let query =
            ListQuery::parse("limit=10&sort=-updated&filter.status=open&filter.count=3&filter.ok=true&filter.code=%2242%22")
                .unwrap();
        assert_eq!(query.limit, 10);
        assert_eq!(query.sort, Sort::UpdatedDescending);
        assert_eq!(
            Value::Object(query.filter),
            json!({"status": "open", "count": 3, "ok": true, "code": "42"})
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "limit=0",
            "limit=201",
            "limit=ten",
            "sort=name",
            "sort=created;drop table records",
            "sort=created&sort=updated",
            "filter.a%27%3Bdrop=1",
            "filter.=1",
            "filter.status=open&filter.status=closed",
            "filter.tags=%5B1%5D",
            "filter.obj=%7B%7D",
            "order=created",
            "cursor=not-ours",
            "filter.status=a%00b",
            "filter.status=%22a%5Cu0000b%22",
        ] {
            assert!(ListQuery::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_name_their_sort() {
        let cursor = Cursor {
            at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap(),
            id: Uuid::now_v7(),
        };
        let text = cursor.encode(Sort::UpdatedDescending);
        assert_eq!(
            Cursor::decode(&text, Sort::UpdatedDescending).unwrap(),
            cursor
        );
        assert!(Cursor::decode(&text, Sort::CreatedAscending).is_err());
        for out_of_range in ["c.-62135596800000000", "c.999999999999999999999"] {
            let text = URL_SAFE_NO_PAD.encode(format!("{out_of_range}.{}", Uuid::nil()));
            assert!(Cursor::decode(&text, Sort::CreatedAscending).is_err());
        }
    }
}
