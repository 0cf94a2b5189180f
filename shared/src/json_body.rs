//! The one way a JSON request body is read, on both planes.
//!
//! Rules (docs/limits.md, "Request hygiene"):
//! - **Content type**: `application/json`, with or without parameters (`; charset=utf-8`).
//!   Anything else, `*+json` and `text/json` included, or none at all, is 415
//!   `unsupported_media_type`. The one exception is JSON merge patch on records, which also
//!   takes `application/merge-patch+json` (RFC 7396) and checks it beside [`is_json`].
//! - **Duplicate keys**: an object that names a key twice, at any depth, is 400
//!   `invalid_json`, naming the key. serde_json keeps the last value silently, and another
//!   parser (a proxy, a WAF, the client's own validator) may keep the first: two readers of
//!   one body must never disagree about what it says. Keys are compared after unescaping, so
//!   `"a"` and `"\u0061"` are the same key.
//! - **Shape**: a body read into a struct is an object; an array is 400 `invalid_json`, though
//!   serde would read it field by field in order ([`ObjectsOnly`]).
//! - **Size**: at most [`JSON_BODY_LIMIT`] bytes (413) once decoded, refused from
//!   `Content-Length` before reading when it is declared.
//! - **Coding**: `Content-Encoding` gzip or deflate is undone; another is 415
//!   `unsupported_content_encoding` (`crate::http::body`, the same rule for every body read).
//!
//! [`Json`] is the extractor; `clippy.toml` forbids actix's own `web::Json`, whose content-type
//! check admits any `*/json` and `*+json` and which keeps duplicate keys, so no handler can
//! fall back to it. Endpoints that read their bodies themselves (records) use [`is_json`] and
//! [`parse`], so the rule stays one.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

use crate::error::ApiError;
use crate::http::{payload_too_large, unsupported_media_type};

/// Largest JSON body an endpoint accepts through [`Json`].
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Most characters of a client's key echoed back in an error.
const ECHOED_KEY_CHARS: usize = 64;

/// Whether `req` declares a JSON body: `application/json`, parameters allowed.
pub fn is_json(req: &HttpRequest) -> bool {
    req.mime_type()
        .ok()
        .flatten()
        .is_some_and(|mime| mime.essence_str().eq_ignore_ascii_case("application/json"))
}

/// A body that is not the JSON its endpoint takes.
#[derive(Debug, Clone)]
pub struct InvalidJson {
    message: String,
    duplicate: Option<DuplicateKey>,
}

/// A key an object of the body names twice.
#[derive(Debug, Clone)]
struct DuplicateKey {
    key: String,
    /// JSON Pointer (RFC 6901) of the object holding it.
    object: String,
}

impl InvalidJson {
    /// The key named twice, when that is what is wrong.
    pub fn duplicate_key(&self) -> Option<&str> {
        self.duplicate
            .as_ref()
            .map(|duplicate| duplicate.key.as_str())
    }
}

impl fmt::Display for InvalidJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InvalidJson {}

impl From<InvalidJson> for ApiError {
    fn from(error: InvalidJson) -> Self {
        let details = error.duplicate.as_ref().map(|duplicate| {
            serde_json::json!({
                "duplicate_key": echo(&duplicate.key),
                "object": echo(&duplicate.object),
            })
        });
        let api_error = ApiError::bad_request("invalid_json", error.message);
        match details {
            Some(details) => api_error.with_details(details),
            None => api_error,
        }
    }
}

fn echo(text: &str) -> String {
    text.chars().take(ECHOED_KEY_CHARS).collect()
}

/// `bytes` as a `T`, refusing malformed JSON and any object that names a key twice.
///
/// The keys are checked first, then serde_json reads the body, so `T`'s errors keep their
/// line and column. Most bodies' keys are proved unique by [`keys_unique_by_scan`], a pass
/// over the bytes that reads no value; what it cannot prove, and every body that turns out
/// not to be a `T`, goes through [`check_keys`], so the outcome, each error message included,
/// is the same as if every body did.
pub fn parse<'de, T: serde::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, InvalidJson> {
    let checked = !keys_unique_by_scan(bytes);
    if checked {
        check_keys(bytes)?;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    T::deserialize(ObjectsOnly(&mut deserializer))
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|error| {
            // A key or syntax error the scan let through is reported as the full check
            // reports it (it reads the body in order, as before).
            if !checked {
                if let Err(found) = check_keys(bytes) {
                    return found;
                }
            }
            match error.classify() {
                serde_json::error::Category::Data => InvalidJson {
                    message: error.to_string(),
                    duplicate: None,
                },
                _ => not_json(&error),
            }
        })
}

/// Whether a scan of the bytes proves that no object names a key twice, reading no value:
/// strings are skipped to their closing quote (`memchr`), and each object's keys, borrowed from
/// the body, are compared as written. `false` is "not proved", not "repeated": a repeated key,
/// a key with an escape (`"a"` and `"\u0061"` are one key), an object of more than
/// [`LINEAR_KEYS`] keys, or bytes that are not UTF-8 or not balanced JSON, all of which
/// [`check_keys`] then decides. For malformed JSON a `true` means nothing, which is fine:
/// serde_json reads the body next and refuses it.
fn keys_unique_by_scan(bytes: &[u8]) -> bool {
    if std::str::from_utf8(bytes).is_err() {
        return false;
    }
    // Each open container: an object's first key's place in `keys`, `None` for an array.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut key_next = false;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'{' => {
                open.push(Some(keys.len()));
                key_next = true;
            }
            b'[' => {
                open.push(None);
                key_next = false;
            }
            b'}' | b']' => {
                match open.pop() {
                    Some(Some(first)) => keys.truncate(first),
                    Some(None) => {}
                    None => return false,
                }
                key_next = false;
            }
            b',' => key_next = matches!(open.last(), Some(Some(_))),
            b':' => key_next = false,
            b'"' => {
                let Some((end, escaped)) = string_end(bytes, at + 1) else {
                    return false;
                };
                if key_next {
                    let Some(&Some(first)) = open.last() else {
                        return false;
                    };
                    let key = &bytes[at + 1..end];
                    let mine = &keys[first..];
                    if escaped || mine.len() >= LINEAR_KEYS || mine.contains(&key) {
                        return false;
                    }
                    keys.push(key);
                    key_next = false;
                }
                at = end;
            }
            _ => {}
        }
        at += 1;
    }
    open.is_empty()
}

/// The closing quote of the string whose text starts at `start`, and whether it holds an
/// escape; `None` when it does not end.
fn string_end(bytes: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut at = start;
    let mut escaped = false;
    loop {
        at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
        if bytes[at] == b'"' {
            return Some((at, escaped));
        }
        // A backslash and the character it escapes (`\uXXXX`'s hex digits hold no quote).
        escaped = true;
        at += 2;
    }
}

/// The full key check: walks the whole document through serde_json, refusing malformed JSON
/// and naming a repeated key with the pointer of its object. It allocates nothing for a
/// document of small objects: the keys of the objects being read sit on one stack, borrowed
/// from the body unless they hold escapes, and an object's keys are compared one by one up to
/// [`LINEAR_KEYS`], through a hash set beyond.
fn check_keys(bytes: &[u8]) -> Result<(), InvalidJson> {
    let mut checker = KeyChecker::default();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let checked = Seed(&mut checker)
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end());
    if let Err(error) = checked {
        return Err(match checker.duplicate.take() {
            Some(mut found) => {
                found.path.reverse();
                let object = pointer(&found.path);
                let within = if object.is_empty() {
                    "the top-level object".to_owned()
                } else {
                    format!("the object at {:?}", echo(&object))
                };
                let message = format!(
                    "the key {:?} appears twice in {within} (line {}, column {}); a key may \
                     appear once per object",
                    echo(&found.key),
                    error.line(),
                    error.column(),
                );
                InvalidJson {
                    message,
                    duplicate: Some(DuplicateKey {
                        key: found.key,
                        object,
                    }),
                }
            }
            None => not_json(&error),
        });
    }
    Ok(())
}

/// serde_json's deserializer, except that a struct is read only from an object. serde's
/// derived structs also take an array, field by field in order, so without this
/// `["acme", null]` would be read as `{"slug": "acme", "name": null}`. It rules the body's top
/// level (every structured body is an object); a type that takes anything (`Value`) still
/// does, and says what it refuses itself.
struct ObjectsOnly<'a, 'de>(&'a mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>);

impl<'de> de::Deserializer<'de> for ObjectsOnly<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_option(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

fn not_json(error: &serde_json::Error) -> InvalidJson {
    InvalidJson {
        message: format!("not valid JSON: {error}"),
        duplicate: None,
    }
}

/// A JSON Pointer from its segments, outermost first ("" is the whole document).
fn pointer(segments: &[String]) -> String {
    segments
        .iter()
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// Keys of one object compared one by one; a larger object's are put in a hash set, so a body
/// of one object with thousands of keys costs no quadratic time.
const LINEAR_KEYS: usize = 16;

/// What the key check found: the repeated key, and (filled in while the error unwinds, so
/// nothing is allocated on the way down) the keys and indexes leading to its object.
#[derive(Default)]
struct KeyChecker<'de> {
    duplicate: Option<FoundDuplicate>,
    /// The keys read so far of every object being read, outermost object first.
    keys: Vec<Cow<'de, str>>,
}

struct FoundDuplicate {
    key: String,
    /// Innermost first.
    path: Vec<String>,
}

impl KeyChecker<'_> {
    /// Adds `segment` to the path of a duplicate found below it.
    fn unwinding(&mut self, segment: impl FnOnce() -> String) {
        if let Some(found) = &mut self.duplicate {
            found.path.push(segment());
        }
    }
}

/// An object key, borrowed from the body when it holds no escape.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key))
    }
}

/// Walks one JSON value, checking every object's keys.
struct Seed<'c, 'de>(&'c mut KeyChecker<'de>);

impl<'de> DeserializeSeed<'de> for Seed<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index: usize = 0;
        loop {
            match seq.next_element_seed(Seed(&mut *self.0)) {
                Ok(Some(())) => index += 1,
                Ok(None) => return Ok(()),
                Err(error) => {
                    self.0.unwinding(|| index.to_string());
                    return Err(error);
                }
            }
        }
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // This object's keys are `keys[start..]`; inner objects push theirs above and take
        // them off again before this one reads its next key.
        let start = self.0.keys.len();
        let mut many: Option<HashSet<Cow<'de, str>>> = None;
        let read = loop {
            let key = match map.next_key_seed(Key) {
                Ok(Some(key)) => key,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            };
            let mine = &self.0.keys[start..];
            let repeated = match &mut many {
                Some(set) => !set.insert(key.clone()),
                None if mine.len() < LINEAR_KEYS => mine.contains(&key),
                None => {
                    let mut set: HashSet<Cow<'de, str>> = mine.iter().cloned().collect();
                    let repeated = !set.insert(key.clone());
                    many = Some(set);
                    repeated
                }
            };
            if repeated {
                self.0.duplicate = Some(FoundDuplicate {
                    key: key.into_owned(),
                    path: Vec::new(),
                });
                break Err(de::Error::custom("duplicate key"));
            }
            if let Err(error) = map.next_value_seed(Seed(&mut *self.0)) {
                self.0.unwinding(|| key.to_string());
                break Err(error);
            }
            if many.is_none() {
                self.0.keys.push(key);
            }
        };
        self.0.keys.truncate(start);
        read
    }
}

/// A JSON request body of type `T`, read by the rules of this module: the extractor every
/// JSON endpoint of both planes takes instead of actix's `web::Json`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let admitted = admit(req);
        // `Content-Encoding` is undone and the limit applies to the decoded bytes
        // (`crate::http::body`).
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move {
            admitted?;
            let bytes = crate::http::body::read(&req, payload, JSON_BODY_LIMIT).await?;
            Ok(Json(parse(&bytes)?))
        })
    }
}

/// The checks made before any byte is read: the content type, then a declared length.
fn admit(req: &HttpRequest) -> Result<(), ApiError> {
    if !is_json(req) {
        return Err(unsupported_media_type());
    }
    crate::http::body::check_coding(req)?;
    let declared = crate::http::body::declared_length(req);
    if declared.is_some_and(|length| length > JSON_BODY_LIMIT as u64) {
        return Err(payload_too_large());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    #[test]
    fn a_body_without_repeated_keys_is_read_as_serde_json_reads_it() {
        let body = br#"{"a": [1, {"b": null, "c": "x"}, {"b": 2}], "d": {"a": 1}}"#;
        assert_eq!(
            parse::<Value>(body).unwrap(),
            serde_json::from_slice::<Value>(body).unwrap()
        );
        assert_eq!(parse::<Value>(b"[]").unwrap(), serde_json::json!([]));
        assert_eq!(parse::<Value>(b" 1.5 ").unwrap(), serde_json::json!(1.5));
    }

    #[test]
    fn a_struct_is_read_from_an_object_only_never_field_by_field_from_an_array() {
        let error = parse::<Login>(br#"["ada@example.com", "secret"]"#).unwrap_err();
        assert_eq!(ApiError::from(error.clone()).code(), "invalid_json");
        assert!(
            error.to_string().contains("expected struct Login"),
            "{error}"
        );
        let login = parse::<Login>(br#"{"email": "ada@example.com", "password": "s"}"#).unwrap();
        assert_eq!(login.email, "ada@example.com");
        // What takes anything still does.
        assert_eq!(parse::<Value>(b"[1]").unwrap(), serde_json::json!([1]));
        assert_eq!(
            parse::<Option<Login>>(b"null")
                .unwrap()
                .map(|login| login.email),
            None
        );
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_named_with_its_object() {
        let error = parse::<Value>(br#"{"role": "member", "role": "owner"}"#).unwrap_err();
        assert_eq!(error.duplicate_key(), Some("role"));
        let api = ApiError::from(error.clone());
        assert_eq!(api.code(), "invalid_json");
        assert!(
            error.to_string().contains("\"role\" appears twice"),
            "{error}"
        );

        let error = parse::<Value>(br#"{"a": [0, {"b/c": {"k": 1, "k": 2}}]}"#).unwrap_err();
        assert_eq!(error.duplicate_key(), Some("k"));
        assert_eq!(
            error.duplicate.as_ref().map(|d| d.object.as_str()),
            Some("/a/1/b~1c")
        );
    }

    #[test]
    fn a_repeated_key_is_found_in_objects_of_many_keys_and_no_key_is_taken_for_another_objects() {
        for (first, second) in [(0, 3), (2, 15), (5, 16), (15, 16), (0, 39), (30, 39)] {
            let keys: Vec<String> = (0..40)
                .map(|index| if index == second { first } else { index })
                .map(|index| format!("\"k{index}\": {index}"))
                .collect();
            let body = format!("{{{}}}", keys.join(", "));
            let error = parse::<Value>(body.as_bytes()).unwrap_err();
            assert_eq!(
                error.duplicate_key(),
                Some(format!("k{first}").as_str()),
                "{body}"
            );
        }
        let many: Vec<String> = (0..40).map(|index| format!("\"k{index}\": 0")).collect();
        let body = format!(
            r#"{{"k1": {{{}}}, "k2": [{{"k1": 1}}, {{"k1": 2}}], "k3": {{"k3": 3}}}}"#,
            many.join(", ")
        );
        assert!(parse::<Value>(body.as_bytes()).is_ok(), "{body}");
    }

    #[test]
    fn keys_are_compared_after_unescaping() {
        let error = parse::<Value>(br#"{"admin": false, "\u0061dmin": true}"#).unwrap_err();
        assert_eq!(error.duplicate_key(), Some("admin"));
    }

    #[test]
    fn typed_bodies_are_checked_too_and_keep_serdes_messages() {
        let error = parse::<Login>(br#"{"email": "a@b.c", "password": "x", "email": "d@e.f"}"#)
            .unwrap_err();
        assert_eq!(error.duplicate_key(), Some("email"));
        let error = parse::<Login>(br#"{"email": "a@b.c"}"#).unwrap_err();
        assert!(
            error.to_string().contains("missing field `password`"),
            "{error}"
        );
        assert!(error.duplicate_key().is_none());
    }

    #[test]
    fn malformed_json_and_trailing_text_are_refused() {
        for body in [&b"{\"a\": "[..], b"{} x", b"", b"{\"a\" 1}"] {
            let error = parse::<Value>(body).unwrap_err();
            assert!(error.to_string().starts_with("not valid JSON"), "{error}");
        }
    }

    /// Bodies whose keys the scan must prove unique, so that the fast path is really taken:
    /// strings holding the characters that shape JSON, escapes in values, nesting, objects
    /// of `LINEAR_KEYS` keys, the same key in sibling and nested objects.
    const PROVABLE: &[&str] = &[
        r#"{}"#,
        r#"[]"#,
        r#""text""#,
        r#"{"a": 1, "b": [1, 2, {"a": 2, "b": {"a": null}}], "c": {"c": {"c": true}}}"#,
        r#"{"a": "{\"a\": 1, \"a\": 2}", "b": "x\\", "c": "\u00e9\n", "d": ":,[]{}"}"#,
        r#"[{"a": 1}, {"a": 2}, [{"a": 3}], "a", "a"]"#,
        r#"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15}"#,
        r#"{"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
            "scopeLogs": [{"logRecords": [{"timeUnixNano": "1", "body": {"stringValue": "x"},
            "attributes": [{"key": "k", "value": {"intValue": "2"}}, {"key": "k", "value": {"intValue": "3"}}]}]}]}]}"#,
        " \n{ \"é\" : [ ] , \"e\" : { } } \n",
    ];

    /// Bodies the scan must not prove: each repeats a key, has a key with an escape, has more
    /// keys than it compares, or is not JSON.
    const UNPROVABLE: &[&[u8]] = &[
        br#"{"a": 1, "a": 2}"#,
        br#"{"a": "x\"y", "b": [{"c": 1, "c": 2}]}"#,
        br#"{"a": {"b": 1}, "c": [], "a": 3}"#,
        br#"{"admin": false, "\u0061dmin": true}"#,
        br#"{"k\"": 1}"#,
        br#"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16}"#,
        b"{\"a\": \"\xff\"}",
        br#"{"a": 1}}"#,
        br#"{"a": [1"#,
        br#"{"a": "never closed}"#,
    ];

    #[test]
    fn the_scan_proves_common_bodies_unique_and_nothing_it_cannot_compare_as_written() {
        for body in PROVABLE {
            assert!(keys_unique_by_scan(body.as_bytes()), "not proved: {body}");
            assert!(check_keys(body.as_bytes()).is_ok(), "{body}");
            assert!(parse::<Value>(body.as_bytes()).is_ok(), "{body}");
        }
        for body in UNPROVABLE {
            assert!(
                !keys_unique_by_scan(body),
                "proved: {}",
                String::from_utf8_lossy(body)
            );
            // Decided by the full check and serde alone, as every body was before the scan.
            let expected = check_keys(body)
                .ok()
                .and_then(|()| serde_json::from_slice::<Value>(body).ok());
            assert_eq!(
                parse::<Value>(body).ok(),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn bodies_the_scan_lets_through_are_refused_as_the_full_check_refuses_them() {
        // Malformed JSON the scan cannot tell from JSON, and a body that is JSON but not the
        // type: the messages are those of the full check, then of serde.
        for body in [
            &br#"{"a" 1}"#[..],
            br#"{"a": tru}"#,
            br#"{"a": 1} x"#,
            br#"{"a": 1,}"#,
        ] {
            assert!(
                keys_unique_by_scan(body),
                "{}",
                String::from_utf8_lossy(body)
            );
            let error = parse::<Value>(body).unwrap_err();
            let full = check_keys(body).unwrap_err();
            assert_eq!(error.to_string(), full.to_string());
            assert!(error.to_string().starts_with("not valid JSON"), "{error}");
        }
        // A field of the wrong type before a syntax error: the body is not JSON, which is
        // what the full check says; serde alone would name the field's type.
        let body = br#"{"email": 5, "password": "x" x}"#;
        assert!(keys_unique_by_scan(body));
        let error = parse::<Login>(body).unwrap_err();
        assert!(error.to_string().starts_with("not valid JSON"), "{error}");
        // A value with a character JSON does not allow in a string, past a repeated key: the
        // key is what the full check meets first.
        let body = b"{\"a\": 1, \"a\": \"\x01\"}";
        assert_eq!(parse::<Value>(body).unwrap_err().duplicate_key(), Some("a"));
    }

    #[test]
    fn nesting_deeper_than_serde_json_allows_is_an_error_not_a_crash() {
        let body = "[".repeat(100_000);
        assert!(parse::<Value>(body.as_bytes()).is_err());
    }
}
