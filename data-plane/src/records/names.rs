//! Names that come from requests and end up in permission strings or JSON keys: collection
//! names and top-level field names. Parsed once at the edge; only these types reach the
//! service. Neither ever reaches SQL text — both travel as parameters — but the narrow
//! alphabets keep permission strings (`records.<collection>:read`) unambiguous and error
//! messages safe to echo.

use std::fmt;

use serde::{Serialize, Serializer};

/// Longest collection or field name, in bytes (the Postgres identifier limit, for symmetry).
pub const MAX_NAME_LEN: usize = 63;

/// A collection name: `^[a-z][a-z0-9_]{0,62}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionName(String);

impl CollectionName {
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        let mut bytes = name.bytes();
        let valid = name.len() <= MAX_NAME_LEN
            && bytes.next().is_some_and(|first| first.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidName::Collection)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The permission `records.<collection>:<action>`.
    pub fn permission(&self, action: &str) -> String {
        format!("records.{}:{action}", self.0)
    }

    /// The permission to read this collection's sensitive fields, `sensitive.<collection>:read`.
    pub fn sensitive_read_permission(&self) -> String {
        format!("sensitive.{}:read", self.0)
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CollectionName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A top-level field name of a record: `^[A-Za-z_][A-Za-z0-9_]{0,62}$`. Nested keys are data
/// and are not restricted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldName(String);

impl FieldName {
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        if is_field_name(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidName::Field)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` is a valid top-level field name.
pub fn is_field_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_NAME_LEN
        && bytes
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for FieldName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("a collection name is 1 to 63 characters of a-z, 0-9 and _, starting with a letter")]
    Collection,
    #[error(
        "a field name is 1 to 63 characters of A-Z, a-z, 0-9 and _, not starting with a digit"
    )]
    Field,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_are_lowercase_identifiers() {
        for good in ["a", "invoices", "line_items_2", &"a".repeat(63)] {
            assert!(CollectionName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Invoices",
            "2fast",
            "_private",
            "in voices",
            "a-b",
            "x;drop table records",
            "inv'oices",
            "é",
            &"a".repeat(64),
        ] {
            assert!(CollectionName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            CollectionName::parse("invoices")
                .unwrap()
                .permission("read"),
            "records.invoices:read"
        );
    }

    #[test]
    fn field_names_are_identifiers() {
        for good in ["status", "Status", "_id", "a1", &"f".repeat(63)] {
            assert!(FieldName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1st",
            "a.b",
            "a b",
            "x'); drop",
            "a-b",
            "ü",
            &"f".repeat(64),
        ] {
            assert!(FieldName::parse(bad).is_err(), "{bad}");
        }
    }
}
