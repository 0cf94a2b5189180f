//! A record's content and the rules on it: a JSON object whose top-level names are valid
//! field names, its counted size, JSON merge patch (RFC 7396), and the split into the part
//! stored in clear and the sensitive part sealed with the tenant's data key.
//!
//! Invariants:
//! - A [`Document`] always holds an object whose top-level names pass [`is_field_name`].
//! - Sealed fields are bound (as AEAD associated data) to tenant, collection and record id,
//!   so a sealed value copied to another record, collection or tenant does not open.

use ring::rand::SystemRandom;
use serde_json::{Map, Value};
use shared::envelope::{DataKey, EnvelopeError};
use uuid::Uuid;

use super::names::{is_field_name, CollectionName, FieldName, MAX_NAME_LEN};
use super::RecordsError;

/// Most top-level fields one record may have.
pub const MAX_FIELDS: usize = 1_000;

/// A record's content: a JSON object with valid top-level field names.
#[derive(Debug, Clone, PartialEq)]
pub struct Document(Map<String, Value>);

/// `RecordData` in the OpenAPI document: the body of the record writes, so a generated client
/// sends one (the handlers read the body themselves, to count and check it).
impl utoipa::PartialSchema for Document {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A record's fields: a JSON object. Top-level names start with a letter or `_` \
                 and hold letters, digits and `_`; no text may contain U+0000 (400 \
                 `invalid_record`, `invalid_field`).",
            ))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[A-Za-z_][A-Za-z0-9_]*$"))
                    .max_length(Some(MAX_NAME_LEN)),
            ))
            .max_properties(Some(MAX_FIELDS))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .into()
    }
}

impl utoipa::ToSchema for Document {
    fn name() -> std::borrow::Cow<'static, str> {
        "RecordData".into()
    }
}

impl Document {
    /// The record in a request body.
    pub fn parse(body: &[u8]) -> Result<Self, RecordsError> {
        Self::from_value(shared::json_body::parse(body)?)
    }

    pub fn from_value(value: Value) -> Result<Self, RecordsError> {
        let Value::Object(object) = value else {
            return Err(RecordsError::NotAnObject);
        };
        if object.len() > MAX_FIELDS {
            return Err(RecordsError::InvalidRecord(format!(
                "a record has at most {MAX_FIELDS} top-level fields"
            )));
        }
        if let Some(bad) = object.keys().find(|name| !is_field_name(name)) {
            return Err(RecordsError::InvalidField(bad.clone()));
        }
        if object.values().any(has_nul) {
            return Err(RecordsError::InvalidRecord(
                "text in a record may not contain the NUL character (U+0000)".to_owned(),
            ));
        }
        Ok(Self(object))
    }

    /// The bytes this record counts against the storage quota: the length of its JSON.
    pub fn size(&self) -> i64 {
        serde_json::to_vec(&self.0)
            .map(|bytes| i64::try_from(bytes.len()).unwrap_or(i64::MAX))
            .unwrap_or(i64::MAX)
    }

    pub fn into_object(self) -> Map<String, Value> {
        self.0
    }

    /// Applies a JSON merge patch (RFC 7396). The patch must be an object (anything else would
    /// replace the record with a non-object); the result is checked like a new record.
    pub fn merge_patch(self, patch: Value) -> Result<Self, RecordsError> {
        if !patch.is_object() {
            return Err(RecordsError::NotAnObject);
        }
        let mut target = Value::Object(self.0);
        merge(&mut target, patch);
        Self::from_value(target)
    }

    /// Adds the fields of `other` that this document lacks.
    pub fn keep_missing(&mut self, other: Map<String, Value>) {
        for (name, value) in other {
            self.0.entry(name).or_insert(value);
        }
    }

    /// Splits into (fields stored in clear, sensitive fields).
    pub fn split(self, sensitive: &[FieldName]) -> (Map<String, Value>, Map<String, Value>) {
        let mut clear = self.0;
        let mut secret = Map::new();
        for field in sensitive {
            if let Some(value) = clear.remove(field.as_str()) {
                secret.insert(field.as_str().to_owned(), value);
            }
        }
        (clear, secret)
    }

    /// The whole record from its two stored parts.
    pub fn join(clear: Map<String, Value>, secret: Map<String, Value>) -> Self {
        let mut object = clear;
        object.extend(secret);
        Self(object)
    }
}

/// Whether any string or key in `value` holds U+0000, which Postgres' jsonb cannot store.
/// (Parsed input nests at most 128 levels, serde_json's limit, which bounds the recursion.)
pub fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(object) => object
            .iter()
            .any(|(name, value)| name.contains('\0') || has_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// RFC 7396, section 2.
fn merge(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(object) = target {
        for (name, value) in patch {
            if value.is_null() {
                object.remove(&name);
            } else {
                merge(object.entry(name).or_insert(Value::Null), value);
            }
        }
    }
}

/// What a record's sealed fields are bound to.
fn sealing_context(tenant_id: Uuid, collection: &CollectionName, record_id: Uuid) -> Vec<u8> {
    format!("records:{tenant_id}:{collection}:{record_id}").into_bytes()
}

/// Seals the sensitive fields as one JSON object; `None` when there are none.
pub fn seal(
    key: &DataKey,
    rng: &SystemRandom,
    tenant_id: Uuid,
    collection: &CollectionName,
    record_id: Uuid,
    secret: &Map<String, Value>,
) -> Result<Option<Vec<u8>>, RecordsError> {
    if secret.is_empty() {
        return Ok(None);
    }
    let plaintext = zeroize::Zeroizing::new(
        serde_json::to_vec(secret).map_err(|error| RecordsError::Corrupt(error.to_string()))?,
    );
    let context = sealing_context(tenant_id, collection, record_id);
    Ok(Some(key.seal(rng, &context, &plaintext)?))
}

/// Opens what [`seal`] made for the same tenant, collection and record.
pub fn open(
    key: &DataKey,
    tenant_id: Uuid,
    collection: &CollectionName,
    record_id: Uuid,
    sealed: &[u8],
) -> Result<Map<String, Value>, RecordsError> {
    let context = sealing_context(tenant_id, collection, record_id);
    let plaintext = key.open(&context, sealed)?;
    match serde_json::from_slice(&plaintext) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(RecordsError::Corrupt(
            "sealed fields are not a JSON object".to_owned(),
        )),
    }
}

impl From<EnvelopeError> for RecordsError {
    fn from(error: EnvelopeError) -> Self {
        Self::Crypto(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(value: Value) -> Document {
        Document::from_value(value).unwrap()
    }

    #[test]
    fn only_objects_with_valid_top_level_names_are_records() {
        assert!(Document::parse(br#"{"a": 1, "nested": {"any key!": 2}}"#).is_ok());
        assert!(matches!(
            Document::parse(b"[1, 2]"),
            Err(RecordsError::NotAnObject)
        ));
        assert!(matches!(
            Document::parse(b"\"text\""),
            Err(RecordsError::NotAnObject)
        ));
        assert!(matches!(
            Document::parse(b"{\"a\": "),
            Err(RecordsError::InvalidJson(_))
        ));
        assert!(matches!(
            Document::parse(br#"{"a'; drop table records; --": 1}"#),
            Err(RecordsError::InvalidField(_))
        ));
        assert!(matches!(
            Document::parse(br#"{"a": {"b": ["x\u0000y"]}}"#),
            Err(RecordsError::InvalidRecord(_))
        ));
        assert!(matches!(
            Document::parse(br#"{"a": {"\u0000": 1}}"#),
            Err(RecordsError::InvalidRecord(_))
        ));
        assert!(matches!(
            Document::parse(br#"{"a": {"b": 1, "b": 2}}"#),
            Err(RecordsError::InvalidJson(invalid)) if invalid.duplicate_key() == Some("b")
        ));
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396, appendix A, that apply to objects.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({"a": "foo"}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(
                doc(target.clone()).merge_patch(patch.clone()).unwrap(),
                doc(expected.clone()),
                "{target} + {patch}"
            );
        }
        assert!(doc(json!({"a": 1})).merge_patch(json!([1])).is_err());
        assert!(doc(json!({"a": 1}))
            .merge_patch(json!({"bad name": 1}))
            .is_err());
    }

    #[test]
    fn split_and_join_round_trip() {
        let sensitive = [FieldName::parse("ssn").unwrap()];
        let record = doc(json!({"name": "Ada", "ssn": "123-45-6789"}));
        let (clear, secret) = record.clone().split(&sensitive);
        assert_eq!(Value::Object(clear.clone()), json!({"name": "Ada"}));
        assert_eq!(Value::Object(secret.clone()), json!({"ssn": "123-45-6789"}));
        assert_eq!(Document::join(clear, secret), record);
    }

    #[test]
    fn sealed_fields_open_only_for_their_record() {
        let rng = SystemRandom::new();
        let key = DataKey::generate(&rng).unwrap();
        let tenant = Uuid::new_v4();
        let collection = CollectionName::parse("people").unwrap();
        let record = Uuid::new_v4();
        let secret = match json!({"ssn": "123-45-6789"}) {
            Value::Object(object) => object,
            _ => unreachable!(),
        };
        let sealed = seal(&key, &rng, tenant, &collection, record, &secret)
            .unwrap()
            .unwrap();
        assert!(!sealed.windows(11).any(|window| window == b"123-45-6789"));
        assert_eq!(
            open(&key, tenant, &collection, record, &sealed).unwrap(),
            secret
        );
        assert!(open(&key, tenant, &collection, Uuid::new_v4(), &sealed).is_err());
        assert!(open(&key, Uuid::new_v4(), &collection, record, &sealed).is_err());
        let other = CollectionName::parse("others").unwrap();
        assert!(open(&key, tenant, &other, record, &sealed).is_err());
        assert!(seal(&key, &rng, tenant, &collection, record, &Map::new())
            .unwrap()
            .is_none());
    }
}
