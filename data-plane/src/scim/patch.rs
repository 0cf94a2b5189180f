//! Applying SCIM PATCH requests (RFC 7644 §3.5.2) to a resource's JSON, and
//! cleaning POST/PUT bodies, tolerant of what Okta and Entra ID really send.
//!
//! Invariants:
//! - `apply` is all or nothing: operations run in order on a copy, which
//!   replaces the resource only when every operation succeeded.
//! - Everything written is type-checked against the schema first; Entra's
//!   string booleans (`"True"`) and bare manager ids are coerced, not refused.
//! - Afterwards keys are canonical, at most one element of a multi-valued
//!   attribute is `primary` (RFC 7643 §2.4), and nulls, `[]` and `{}` are gone
//!   (an unassigned attribute is absent, RFC 7643 §2.5).
//! - Read-only attributes are never written: naming one in a path is a
//!   `mutability` error, while read-only sub-attributes inside a value (the
//!   `display` Okta sends with members) are dropped silently.

use serde_json::{Map, Value};

use super::filter::{
    self, AttributePath, CompareOp, Filter, FilterError, FilterErrorKind, PatchPath,
};
use super::schema::{
    common_attribute, get_ignoring_case, Attribute, Mutability, ResourceType, Schema, Type,
};

/// The URN a PATCH body must list in `schemas`.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Most operations accepted in one request.
pub const MAX_OPERATIONS: usize = 1000;

/// The SCIM error a failed PATCH maps to (RFC 7644 §3.12, HTTP 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidSyntax,
    InvalidPath,
    InvalidValue,
    InvalidFilter,
    NoTarget,
    Mutability,
}

impl ErrorKind {
    /// The API error code (`shared::error::ApiError`) whose `scimType` is this kind.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::InvalidSyntax => "invalid_syntax",
            ErrorKind::InvalidPath => "invalid_path",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::InvalidFilter => "invalid_filter",
            ErrorKind::NoTarget => "no_target",
            ErrorKind::Mutability => "mutability",
        }
    }

    /// The `scimType` to put in the error response.
    pub fn scim_type(&self) -> &'static str {
        match self {
            ErrorKind::InvalidSyntax => "invalidSyntax",
            ErrorKind::InvalidPath => "invalidPath",
            ErrorKind::InvalidValue => "invalidValue",
            ErrorKind::InvalidFilter => "invalidFilter",
            ErrorKind::NoTarget => "noTarget",
            ErrorKind::Mutability => "mutability",
        }
    }
}

/// Why a request or resource was refused; `message` is fit for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatchError {
    pub kind: ErrorKind,
    pub message: String,
}

impl PatchError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<FilterError> for PatchError {
    fn from(error: FilterError) -> Self {
        let kind = match error.kind {
            FilterErrorKind::Filter => ErrorKind::InvalidFilter,
            FilterErrorKind::Path => ErrorKind::InvalidPath,
        };
        Self::new(kind, error.message)
    }
}

/// A PATCH operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// One parsed PATCH operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Parses a PatchOp body. Member names and `op` values are matched
/// case-insensitively, because Entra sends `"Replace"` and some clients
/// `"operations"`; an empty `path` counts as none.
pub fn parse_request(body: &Value) -> Result<Vec<Operation>, PatchError> {
    let syntax = |message: String| PatchError::new(ErrorKind::InvalidSyntax, message);
    if !body.is_object() {
        return Err(syntax("a PATCH body must be a JSON object".into()));
    }
    let declared = get_ignoring_case(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|schemas| {
            let is_patch = |schema: &Value| {
                schema
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            };
            schemas.iter().any(is_patch)
        });
    if !declared {
        return Err(syntax(format!(
            "\"schemas\" must contain \"{PATCH_OP_SCHEMA}\""
        )));
    }
    let operations = get_ignoring_case(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| syntax("\"Operations\" must be an array".into()))?;
    if operations.is_empty() || operations.len() > MAX_OPERATIONS {
        return Err(syntax(format!(
            "\"Operations\" must hold 1 to {MAX_OPERATIONS} operations"
        )));
    }
    operations
        .iter()
        .enumerate()
        .map(|(index, operation)| parse_operation(index, operation))
        .collect()
}

fn parse_operation(index: usize, operation: &Value) -> Result<Operation, PatchError> {
    let syntax = |message: &str| {
        PatchError::new(
            ErrorKind::InvalidSyntax,
            format!("operation {index}: {message}"),
        )
    };
    if !operation.is_object() {
        return Err(syntax("must be an object"));
    }
    let op = get_ignoring_case(operation, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let op = match op.as_deref() {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        _ => return Err(syntax("\"op\" must be \"add\", \"remove\" or \"replace\"")),
    };
    let path = match get_ignoring_case(operation, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(path)) if path.trim().is_empty() => None,
        // A path that does not parse is malformed as a whole, its value filter included
        // (RFC 7644 §3.12: `invalidPath`, "the path attribute was invalid or malformed").
        Some(Value::String(path)) => Some(
            filter::parse_patch_path(path)
                .map_err(|error| PatchError::new(ErrorKind::InvalidPath, error.message))?,
        ),
        Some(_) => return Err(syntax("\"path\" must be a string")),
    };
    let value = get_ignoring_case(operation, "value").cloned();
    Ok(Operation { op, path, value })
}

/// Applies operations in order to a resource's full JSON representation
/// (core attributes at the top level, extension attributes under their URN).
/// On error the resource is left untouched.
pub fn apply(
    resource: &mut Value,
    resource_type: &ResourceType,
    operations: &[Operation],
) -> Result<(), PatchError> {
    let mut working = resource.clone();
    if !working.is_object() {
        return Err(PatchError::new(
            ErrorKind::InvalidSyntax,
            "a resource must be a JSON object",
        ));
    }
    for operation in operations {
        let before = primary_snapshot(&working, resource_type);
        apply_operation(&mut working, resource_type, operation)?;
        keep_one_primary(&mut working, resource_type, &before);
    }
    remove_unassigned(&mut working);
    *resource = working;
    Ok(())
}

/// Type-checks a POST/PUT body in place: coerces what Entra sends, renames
/// keys to their canonical spelling, and drops unknown and read-only
/// attributes (such as Okta's `password` and `groups`) instead of refusing
/// them. Returns the dropped names so the caller may log them. Required
/// attributes are not checked here.
pub fn clean(
    resource: &mut Value,
    resource_type: &ResourceType,
) -> Result<Vec<String>, PatchError> {
    let mut dropped = Vec::new();
    let Value::Object(object) = resource else {
        return Err(PatchError::new(
            ErrorKind::InvalidSyntax,
            "a resource must be a JSON object",
        ));
    };
    let keys: Vec<String> = object.keys().cloned().collect();
    for key in keys {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let Some(mut value) = object.remove(&key) else {
            continue;
        };
        if let Some(extension) = resource_type.extension(&key) {
            let Value::Object(members) = &mut value else {
                return Err(PatchError::new(
                    ErrorKind::InvalidValue,
                    format!("\"{key}\" must be an object"),
                ));
            };
            let prefix = format!("{}:", extension.id);
            clean_members(
                members,
                &|name| extension.attribute(name),
                &prefix,
                &mut dropped,
            )?;
            object.insert(extension.id.to_string(), value);
            continue;
        }
        let mut single = Map::new();
        single.insert(key, value);
        let core = resource_type.schema;
        clean_members(
            &mut single,
            &|name| core.attribute(name).or_else(|| common_attribute(name)),
            "",
            &mut dropped,
        )?;
        object.extend(single);
    }
    remove_unassigned(resource);
    Ok(dropped)
}

fn clean_members<'a>(
    object: &mut Map<String, Value>,
    lookup: &dyn Fn(&str) -> Option<&'a Attribute>,
    prefix: &str,
    dropped: &mut Vec<String>,
) -> Result<(), PatchError> {
    let keys: Vec<String> = object.keys().cloned().collect();
    for key in keys {
        let Some(mut value) = object.remove(&key) else {
            continue;
        };
        match lookup(&key) {
            Some(attribute) if attribute.mutability != Mutability::ReadOnly => {
                check_value(
                    &mut value,
                    attribute,
                    &format!("{prefix}{}", attribute.name),
                    dropped,
                )?;
                object.insert(attribute.name.to_string(), value);
            }
            _ => dropped.push(format!("{prefix}{key}")),
        }
    }
    Ok(())
}

fn invalid_value(name: &str, expected: &str, value: &Value) -> PatchError {
    let mut shown = value.to_string();
    if shown.len() > 60 {
        shown = format!("{}…", shown.chars().take(60).collect::<String>());
    }
    PatchError::new(
        ErrorKind::InvalidValue,
        format!("\"{name}\" must be {expected}, not {shown}"),
    )
}

/// Checks (and coerces) a whole attribute value; a lone element given for a
/// multi-valued attribute becomes a one-element array. Unknown and read-only
/// sub-attributes are removed and reported in `dropped`.
fn check_value(
    value: &mut Value,
    attribute: &Attribute,
    name: &str,
    dropped: &mut Vec<String>,
) -> Result<(), PatchError> {
    if attribute.multi_valued {
        if !value.is_array() && !value.is_null() {
            *value = Value::Array(vec![value.take()]);
        }
        if let Value::Array(items) = value {
            for item in items {
                check_single(item, attribute, name, dropped)?;
            }
        }
        return Ok(());
    }
    check_single(value, attribute, name, dropped)
}

fn check_single(
    value: &mut Value,
    attribute: &Attribute,
    name: &str,
    dropped: &mut Vec<String>,
) -> Result<(), PatchError> {
    let coerced = match (attribute.kind, &*value) {
        // Entra sends booleans as "True" / "False".
        (Type::Boolean, Value::String(text)) if text.eq_ignore_ascii_case("true") => {
            Some(Value::Bool(true))
        }
        (Type::Boolean, Value::String(text)) if text.eq_ignore_ascii_case("false") => {
            Some(Value::Bool(false))
        }
        // Entra sends the enterprise manager as a bare id.
        (Type::Complex, Value::String(text))
            if !attribute.multi_valued && attribute.sub_attribute("value").is_some() =>
        {
            let mut object = Map::new();
            object.insert("value".into(), Value::String(text.clone()));
            Some(Value::Object(object))
        }
        _ => None,
    };
    if let Some(coerced) = coerced {
        *value = coerced;
    }
    match (attribute.kind, value) {
        (_, Value::Null) => Ok(()),
        (Type::String | Type::Reference | Type::DateTime, Value::String(_))
        | (Type::Boolean, Value::Bool(_)) => Ok(()),
        (Type::Integer, Value::Number(number)) if number.is_i64() || number.is_u64() => Ok(()),
        (Type::Complex, Value::Object(object)) => {
            let prefix = format!("{name}.");
            clean_members(
                object,
                &|key| attribute.sub_attribute(key),
                &prefix,
                dropped,
            )
        }
        (kind, value) => {
            let expected = match kind {
                Type::String | Type::Reference | Type::DateTime => "a string",
                Type::Boolean => "a boolean",
                Type::Integer => "an integer",
                Type::Complex => "an object",
            };
            Err(invalid_value(name, expected, value))
        }
    }
}

fn get_mut_ignoring_case<'a>(
    object: &'a mut Map<String, Value>,
    name: &str,
) -> Option<&'a mut Value> {
    object
        .iter_mut()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

fn remove_ignoring_case(object: &mut Map<String, Value>, name: &str) {
    object.retain(|key, _| !key.eq_ignore_ascii_case(name));
}

/// The member named `name` in any case, renamed to `name`; null if absent.
fn canonical_entry<'a>(object: &'a mut Map<String, Value>, name: &str) -> &'a mut Value {
    let misspelled = object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(name) && *key != name)
        .cloned();
    if let Some(value) = misspelled.and_then(|key| object.remove(&key)) {
        object.insert(name.to_string(), value);
    }
    object.entry(name).or_insert(Value::Null)
}

fn merge_object(slot: &mut Value, value: Value) {
    match (&mut *slot, value) {
        (Value::Object(existing), Value::Object(new)) => {
            for (key, member) in new {
                *canonical_entry(existing, &key) = member;
            }
        }
        (_, value) => *slot = value,
    }
}

/// True when every member of `part` has the same value in `whole`.
fn contained_in(part: &Value, whole: &Value) -> bool {
    match part {
        Value::Object(members) if whole.is_object() => members
            .iter()
            .all(|(key, member)| get_ignoring_case(whole, key) == Some(member)),
        _ => part == whole,
    }
}

/// Adds an element unless one like it is there already; an element the new
/// one extends (e.g. the same email now marked primary) is replaced by it.
fn add_element(items: &mut Vec<Value>, element: Value) {
    if items
        .iter()
        .any(|existing| contained_in(&element, existing))
    {
        return;
    }
    match items
        .iter_mut()
        .find(|existing| contained_in(existing, &element))
    {
        Some(existing) => *existing = element,
        None => items.push(element),
    }
}

/// Builds the members an `eq` (or `and` of `eq`s) filter implies, so a
/// `emails[type eq "work"].value` with no match can create its element.
fn seed(filter: &Filter, attribute: &Attribute, element: &mut Map<String, Value>) -> bool {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.urn.is_none() && path.sub_attribute.is_none() => {
            match attribute.sub_attribute(&path.attribute) {
                Some(sub) => {
                    element.insert(sub.name.to_string(), value.clone());
                    true
                }
                None => false,
            }
        }
        Filter::And(left, right) => {
            seed(left, attribute, element) && seed(right, attribute, element)
        }
        _ => false,
    }
}

fn describe(path: &PatchPath) -> String {
    let mut text = path.attribute.to_string();
    if path.filter.is_some() {
        text.push_str("[…]");
    }
    if let Some(sub) = &path.sub_attribute {
        text.push('.');
        text.push_str(sub);
    }
    text
}

fn apply_operation(
    resource: &mut Value,
    resource_type: &ResourceType,
    operation: &Operation,
) -> Result<(), PatchError> {
    let value = operation.value.as_ref();
    match (&operation.path, operation.op) {
        (None, Op::Remove) => Err(PatchError::new(
            ErrorKind::NoTarget,
            "a remove operation needs a path",
        )),
        (None, op) => {
            let Some(Value::Object(members)) = value else {
                let message = "an add or replace without a path needs an object value";
                return Err(PatchError::new(ErrorKind::InvalidValue, message));
            };
            for (key, member) in members {
                apply_path_less_member(resource, resource_type, op, key, member)?;
            }
            Ok(())
        }
        (Some(path), op) if whole_extension(path, resource_type).is_some() => {
            let Some(extension) = whole_extension(path, resource_type) else {
                return Ok(());
            };
            // The extension as a whole: removed, replaced by the value, or the value's
            // attributes added to it.
            if op != Op::Add {
                if let Value::Object(object) = resource {
                    object.retain(|key, _| !key.eq_ignore_ascii_case(extension.id));
                }
            }
            match (op, value) {
                (Op::Remove, _) => Ok(()),
                (op, Some(value)) => {
                    apply_path_less_member(resource, resource_type, op, extension.id, value)
                }
                (_, None) => Err(PatchError::new(
                    ErrorKind::InvalidValue,
                    format!("the operation on \"{}\" needs a value", extension.id),
                )),
            }
        }
        (Some(path), Op::Remove) => apply_at_path(resource, resource_type, Op::Remove, path, value),
        (Some(path), op) => match value {
            Some(value) => apply_at_path(resource, resource_type, op, path, Some(value)),
            None => {
                let message = format!("the operation on \"{}\" needs a value", describe(path));
                Err(PatchError::new(ErrorKind::InvalidValue, message))
            }
        },
    }
}

/// The extension schema a path names as a whole (`urn:…:enterprise:2.0:User`), if it does.
fn whole_extension(path: &PatchPath, resource_type: &ResourceType) -> Option<&'static Schema> {
    let attribute = &path.attribute;
    if path.filter.is_some() || path.sub_attribute.is_some() || attribute.sub_attribute.is_some() {
        return None;
    }
    let urn = attribute.urn.as_deref()?;
    resource_type.extension(&format!("{urn}:{}", attribute.attribute))
}

fn path_without_filter(mut attribute: AttributePath) -> PatchPath {
    let sub_attribute = attribute.sub_attribute.take();
    PatchPath {
        attribute,
        filter: None,
        sub_attribute,
    }
}

/// One member of a path-less add/replace value: `"name"`, `"name.givenName"`,
/// `"urn:…:department"`, or a schema URN holding an object of its attributes.
fn apply_path_less_member(
    resource: &mut Value,
    resource_type: &ResourceType,
    op: Op,
    key: &str,
    value: &Value,
) -> Result<(), PatchError> {
    // Okta repeats `id` (and some clients `schemas`/`meta`) in replace values.
    if ["id", "meta", "schemas"]
        .iter()
        .any(|ignored| ignored.eq_ignore_ascii_case(key))
    {
        return Ok(());
    }
    let invalid_path = |message: String| PatchError::new(ErrorKind::InvalidPath, message);
    let schema = if resource_type.schema.id.eq_ignore_ascii_case(key) {
        Some(resource_type.schema)
    } else {
        resource_type.extension(key)
    };
    if let Some(schema) = schema {
        let Value::Object(members) = value else {
            return Err(invalid_value(key, "an object of attributes", value));
        };
        for (name, member) in members {
            // Clients that model an extension as a resource part repeat its `schemas`.
            if name.eq_ignore_ascii_case("schemas") {
                continue;
            }
            let attribute = AttributePath::parse(name).map_err(PatchError::from)?;
            if attribute.urn.is_some() {
                return Err(invalid_path(format!(
                    "\"{name}\" inside \"{key}\" must not carry a URN"
                )));
            }
            let path = path_without_filter(AttributePath {
                urn: Some(schema.id.to_string()),
                ..attribute
            });
            apply_at_path(resource, resource_type, op, &path, Some(member))?;
        }
        return Ok(());
    }
    let attribute = AttributePath::parse(key).map_err(PatchError::from)?;
    apply_at_path(
        resource,
        resource_type,
        op,
        &path_without_filter(attribute),
        Some(value),
    )
}

/// The attribute an operation works on, resolved against the schema.
struct Target<'a> {
    attribute: &'static Attribute,
    sub: Option<&'static Attribute>,
    name: &'a str,
}

fn apply_at_path(
    resource: &mut Value,
    resource_type: &ResourceType,
    op: Op,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let name = describe(path);
    let mut attribute_path = path.attribute.clone();
    let sub_name = path
        .sub_attribute
        .clone()
        .or(attribute_path.sub_attribute.take());
    let unknown = || {
        let message = format!("\"{name}\" is not an attribute of {}", resource_type.name);
        PatchError::new(ErrorKind::InvalidPath, message)
    };
    let (schema, attribute, _) = resource_type.resolve(&attribute_path).ok_or_else(unknown)?;
    let sub = match &sub_name {
        Some(sub_name) => Some(attribute.sub_attribute(sub_name).ok_or_else(unknown)?),
        None => None,
    };
    if path.filter.is_some() && !attribute.multi_valued {
        let message = format!("\"{name}\": only multi-valued attributes take a filter");
        return Err(PatchError::new(ErrorKind::InvalidPath, message));
    }
    let read_only = [Some(attribute), sub]
        .into_iter()
        .flatten()
        .any(|a| a.mutability == Mutability::ReadOnly);
    let immutable = sub.is_some_and(|sub| sub.mutability == Mutability::Immutable) && op != Op::Add;
    if read_only || immutable {
        let which = if read_only { "read-only" } else { "immutable" };
        return Err(PatchError::new(
            ErrorKind::Mutability,
            format!("\"{name}\" is {which}"),
        ));
    }
    let container = container_mut(resource, resource_type, schema)?;
    let target = Target {
        attribute,
        sub,
        name: &name,
    };
    match op {
        Op::Remove => remove(container, &target, path.filter.as_ref(), value),
        Op::Add | Op::Replace => set(
            container,
            &target,
            op,
            path.filter.as_ref(),
            value.unwrap_or(&Value::Null),
        ),
    }
}

/// The object holding a schema's attributes: the resource itself for the
/// core schema, the member under the URN (created if need be) for extensions.
fn container_mut<'a>(
    resource: &'a mut Value,
    resource_type: &ResourceType,
    schema: &Schema,
) -> Result<&'a mut Map<String, Value>, PatchError> {
    let not_object = |name: &str| {
        PatchError::new(
            ErrorKind::InvalidValue,
            format!("\"{name}\" must be an object"),
        )
    };
    let object = resource
        .as_object_mut()
        .ok_or_else(|| not_object("the resource"))?;
    if schema.id == resource_type.schema.id {
        return Ok(object);
    }
    let entry = canonical_entry(object, schema.id);
    if entry.is_null() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().ok_or_else(|| not_object(schema.id))
}

fn remove(
    container: &mut Map<String, Value>,
    target: &Target,
    filter: Option<&Filter>,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let attribute = target.attribute;
    let slot = get_mut_ignoring_case(container, attribute.name);
    match (filter, target.sub, slot) {
        (_, _, None) => {}
        // Entra's `{"op":"Remove","path":"members","value":[{"value":"id"}]}`
        // removes just the listed elements.
        (None, None, Some(Value::Array(items))) if value.is_some_and(|v| !v.is_null()) => {
            let mut listed = value.cloned().unwrap_or_default();
            check_value(&mut listed, attribute, target.name, &mut Vec::new())?;
            let listed = listed.as_array().cloned().unwrap_or_default();
            items.retain(|item| !listed.iter().any(|gone| contained_in(gone, item)));
        }
        (None, None, Some(_)) => remove_ignoring_case(container, attribute.name),
        (None, Some(sub), Some(Value::Array(items))) => {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                remove_ignoring_case(item, sub.name);
            }
        }
        (None, Some(sub), Some(Value::Object(object))) => remove_ignoring_case(object, sub.name),
        // Removing what is not there is already done; idempotent for retries.
        (Some(filter), None, Some(Value::Array(items))) => {
            items.retain(|item| !filter.matches_element(item, attribute))
        }
        (Some(filter), Some(sub), Some(Value::Array(items))) => {
            for item in items
                .iter_mut()
                .filter(|item| filter.matches_element(item, attribute))
            {
                if let Value::Object(object) = item {
                    remove_ignoring_case(object, sub.name);
                }
            }
        }
        (_, _, Some(_)) => {}
    }
    Ok(())
}

fn set(
    container: &mut Map<String, Value>,
    target: &Target,
    op: Op,
    filter: Option<&Filter>,
    value: &Value,
) -> Result<(), PatchError> {
    let attribute = target.attribute;
    let checked = |against: &Attribute| -> Result<Value, PatchError> {
        let mut value = value.clone();
        check_value(&mut value, against, target.name, &mut Vec::new())?;
        Ok(value)
    };
    let slot = canonical_entry(container, attribute.name);
    match (filter, target.sub) {
        (None, None) => {
            let value = checked(attribute)?;
            match (&mut *slot, value) {
                (Value::Array(items), Value::Array(new)) if op == Op::Add => {
                    for element in new {
                        add_element(items, element);
                    }
                }
                // RFC 7644 §3.5.2.1/3: a complex value merges into the existing one.
                (Value::Object(_), value) if !attribute.multi_valued => merge_object(slot, value),
                (_, value) => *slot = value,
            }
        }
        (None, Some(sub)) => {
            let value = checked(sub)?;
            if slot.is_null() {
                *slot = if attribute.multi_valued {
                    Value::Array(vec![Value::Null])
                } else {
                    Value::Null
                };
            }
            let elements: Vec<&mut Value> = match slot {
                Value::Array(items) => items.iter_mut().collect(),
                other => vec![other],
            };
            for element in elements {
                if !element.is_object() {
                    *element = Value::Object(Map::new());
                }
                if let Value::Object(object) = element {
                    *canonical_entry(object, sub.name) = value.clone();
                }
            }
        }
        (Some(filter), sub) => {
            if slot.is_null() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else {
                return Err(invalid_value(attribute.name, "an array", slot));
            };
            let mut matched = false;
            for item in items
                .iter_mut()
                .filter(|item| filter.matches_element(item, attribute))
            {
                matched = true;
                match (sub, &mut *item) {
                    (Some(sub), Value::Object(object)) => {
                        *canonical_entry(object, sub.name) = checked(sub)?
                    }
                    (Some(_), _) => {
                        return Err(invalid_value(attribute.name, "an array of objects", item));
                    }
                    (None, _) if op == Op::Replace => *item = single(checked(attribute)?),
                    (None, _) => merge_object(item, single(checked(attribute)?)),
                }
            }
            if !matched {
                // Entra expects add/replace of `emails[type eq "work"].value` to
                // create the element when there is none.
                let mut element = Map::new();
                if !seed(filter, attribute, &mut element) {
                    let message = format!(
                        "no element of \"{}\" matches the filter in \"{}\"",
                        attribute.name, target.name
                    );
                    return Err(PatchError::new(ErrorKind::NoTarget, message));
                }
                let mut element = Value::Object(element);
                match sub {
                    Some(sub) => {
                        if let Value::Object(object) = &mut element {
                            object.insert(sub.name.to_string(), value.clone());
                        }
                    }
                    None => merge_object(&mut element, single(value.clone())),
                }
                add_element(
                    items,
                    single(checked_element(element, attribute, target.name)?),
                );
            }
        }
    }
    Ok(())
}

/// The first element of a value `check_value` wrapped for a multi-valued attribute.
fn single(value: Value) -> Value {
    match value {
        Value::Array(items) => items.into_iter().next().unwrap_or_default(),
        other => other,
    }
}

fn checked_element(
    mut element: Value,
    attribute: &Attribute,
    name: &str,
) -> Result<Value, PatchError> {
    check_value(&mut element, attribute, name, &mut Vec::new())?;
    Ok(element)
}

fn is_primary(element: &Value) -> bool {
    get_ignoring_case(element, "primary") == Some(&Value::Bool(true))
}

/// Multi-valued attributes that carry a `primary` flag.
fn primary_attributes(
    resource_type: &ResourceType,
) -> impl Iterator<Item = (&'static Schema, &'static Attribute)> {
    std::iter::once(resource_type.schema)
        .chain(resource_type.extensions.iter().copied())
        .flat_map(|schema| {
            let has_primary = |attribute: &&Attribute| {
                attribute.multi_valued && attribute.sub_attribute("primary").is_some()
            };
            schema
                .attributes
                .iter()
                .filter(has_primary)
                .map(move |attribute| (schema, attribute))
        })
}

fn primary_snapshot(resource: &Value, resource_type: &ResourceType) -> Vec<Vec<Value>> {
    primary_attributes(resource_type)
        .map(|(schema, attribute)| {
            let container = if schema.id == resource_type.schema.id {
                Some(resource)
            } else {
                get_ignoring_case(resource, schema.id)
            };
            let value =
                container.and_then(|container| get_ignoring_case(container, attribute.name));
            let items = value
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            items
                .iter()
                .filter(|item| is_primary(item))
                .cloned()
                .collect()
        })
        .collect()
}

/// Leaves one `primary: true` per attribute: the last one this operation
/// set, or the last one overall if the operation set none.
fn keep_one_primary(resource: &mut Value, resource_type: &ResourceType, before: &[Vec<Value>]) {
    for ((schema, attribute), previous) in primary_attributes(resource_type).zip(before) {
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        let container = if schema.id == resource_type.schema.id {
            Some(object)
        } else {
            get_mut_ignoring_case(object, schema.id).and_then(Value::as_object_mut)
        };
        let Some(Value::Array(items)) =
            container.and_then(|c| get_mut_ignoring_case(c, attribute.name))
        else {
            continue;
        };
        let primaries: Vec<usize> = (0..items.len())
            .filter(|&index| items.get(index).is_some_and(is_primary))
            .collect();
        let newly_set = |index: &&usize| {
            items
                .get(**index)
                .is_some_and(|item| !previous.contains(item))
        };
        let keep = primaries
            .iter()
            .rev()
            .find(newly_set)
            .or(primaries.last())
            .copied();
        for index in primaries {
            let demoted = items.get_mut(index).filter(|_| Some(index) != keep);
            if let Some(Value::Object(item)) = demoted {
                *canonical_entry(item, "primary") = Value::Bool(false);
            }
        }
    }
}

/// Removes nulls, empty arrays and empty objects at every level.
fn remove_unassigned(value: &mut Value) {
    let unassigned = |value: &Value| match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.is_empty(),
        _ => false,
    };
    match value {
        Value::Object(members) => {
            members.values_mut().for_each(remove_unassigned);
            members.retain(|_, member| !unassigned(member));
        }
        Value::Array(items) => {
            items.iter_mut().for_each(remove_unassigned);
            items.retain(|item| !unassigned(item));
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::super::schema::{ENTERPRISE_USER, GROUP_TYPE, USER_TYPE};
    use super::*;
    use serde_json::json;

    fn patch(
        resource: &mut Value,
        resource_type: &ResourceType,
        operations: Value,
    ) -> Result<(), PatchError> {
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations});
        apply(resource, resource_type, &parse_request(&body)?)
    }

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "u1",
            "userName": "bjensen@example.com",
            "active": true
        })
    }

    fn group() -> Value {
        json!({"id": "g1", "displayName": "Tour Guides", "members": [{"value": "u1"}]})
    }

    fn kind_of(result: Result<(), PatchError>) -> ErrorKind {
        result.unwrap_err().kind
    }

    #[test]
    fn okta_deactivates_a_user() {
        let mut user = user();
        patch(
            &mut user,
            &USER_TYPE,
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .unwrap();
        assert_eq!(user["active"], false);
    }

    #[test]
    fn okta_renames_a_group_and_its_id_in_the_value_is_ignored() {
        let mut group = group();
        let operations = json!([{"op": "replace", "value": {"id": "g1", "displayName": "Guides"}}]);
        patch(&mut group, &GROUP_TYPE, operations).unwrap();
        assert_eq!(group["displayName"], "Guides");
        assert_eq!(group["id"], "g1");
    }

    #[test]
    fn okta_adds_and_removes_members() {
        let mut group = group();
        let add =
            json!([{"op": "add", "path": "members", "value": [{"value": "u2", "display": "Ann"}]}]);
        patch(&mut group, &GROUP_TYPE, add.clone()).unwrap();
        // `display` is read-only: dropped, not refused.
        assert_eq!(group["members"], json!([{"value": "u1"}, {"value": "u2"}]));
        // Adding the same member again changes nothing.
        patch(&mut group, &GROUP_TYPE, add).unwrap();
        assert_eq!(group["members"].as_array().unwrap().len(), 2);

        let remove = json!([{"op": "remove", "path": "members[value eq \"u1\"]"}]);
        patch(&mut group, &GROUP_TYPE, remove.clone()).unwrap();
        assert_eq!(group["members"], json!([{"value": "u2"}]));
        // Removing a member that is already gone is not an error.
        patch(&mut group, &GROUP_TYPE, remove).unwrap();

        let remove_last = json!([{"op": "remove", "path": "members[value eq \"u2\"]"}]);
        patch(&mut group, &GROUP_TYPE, remove_last).unwrap();
        assert!(
            group.get("members").is_none(),
            "an empty list is unassigned"
        );
    }

    #[test]
    fn entra_string_booleans_become_booleans() {
        let mut user = user();
        patch(
            &mut user,
            &USER_TYPE,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .unwrap();
        assert_eq!(user["active"], false);
    }

    #[test]
    fn entra_work_email_is_created_then_updated() {
        let mut user = user();
        let operation = |address: &str| json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": address}]);
        patch(&mut user, &USER_TYPE, operation("a@example.com")).unwrap();
        assert_eq!(
            user["emails"],
            json!([{"type": "work", "value": "a@example.com"}])
        );

        user["emails"][0]["primary"] = json!(true);
        patch(&mut user, &USER_TYPE, operation("b@example.com")).unwrap();
        assert_eq!(
            user["emails"],
            json!([{"type": "work", "value": "b@example.com", "primary": true}])
        );
    }

    #[test]
    fn entra_sets_the_manager_by_bare_id() {
        let mut user = user();
        let path = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
        patch(
            &mut user,
            &USER_TYPE,
            json!([{"op": "Add", "path": path, "value": "boss"}]),
        )
        .unwrap();
        assert_eq!(
            user[ENTERPRISE_USER.id],
            json!({"manager": {"value": "boss"}})
        );
    }

    #[test]
    fn entra_removes_only_the_listed_members() {
        let mut group = json!({"displayName": "G", "members": [{"value": "a"}, {"value": "b"}, {"value": "c"}]});
        let operations =
            json!([{"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "c"}]}]);
        patch(&mut group, &GROUP_TYPE, operations).unwrap();
        assert_eq!(group["members"], json!([{"value": "b"}]));
    }

    #[test]
    fn path_less_values_take_dotted_and_urn_keys() {
        let mut user = user();
        let value = json!({
            "name.givenName": "Barbara",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Tours",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "4130"}
        });
        patch(
            &mut user,
            &USER_TYPE,
            json!([{"op": "add", "value": value}]),
        )
        .unwrap();
        assert_eq!(user["name"], json!({"givenName": "Barbara"}));
        assert_eq!(
            user[ENTERPRISE_USER.id],
            json!({"department": "Tours", "costCenter": "4130"})
        );
    }

    #[test]
    fn complex_values_merge_and_lists_replace() {
        let mut user = user();
        user["name"] = json!({"givenName": "Barbara", "familyName": "Jensen"});
        user["emails"] = json!([{"value": "old@example.com"}]);
        let operations = json!([
            {"op": "replace", "path": "name", "value": {"familyName": "Smith"}},
            {"op": "replace", "path": "emails", "value": [{"value": "new@example.com"}]}
        ]);
        patch(&mut user, &USER_TYPE, operations).unwrap();
        assert_eq!(
            user["name"],
            json!({"givenName": "Barbara", "familyName": "Smith"})
        );
        assert_eq!(user["emails"], json!([{"value": "new@example.com"}]));
    }

    #[test]
    fn only_one_element_stays_primary() {
        let mut user = user();
        user["emails"] = json!([{"value": "a@example.com", "primary": true}]);
        let add = json!([{"op": "add", "path": "emails", "value": {"value": "b@example.com", "primary": true}}]);
        patch(&mut user, &USER_TYPE, add).unwrap();
        assert_eq!(
            user["emails"],
            json!([{"value": "a@example.com", "primary": false}, {"value": "b@example.com", "primary": true}])
        );
        // The element this operation made primary wins, even though it comes first.
        let promote = json!([{"op": "replace", "path": "emails[value eq \"a@example.com\"].primary", "value": true}]);
        patch(&mut user, &USER_TYPE, promote).unwrap();
        assert_eq!(user["emails"][0]["primary"], true);
        assert_eq!(user["emails"][1]["primary"], false);
    }

    #[test]
    fn refusals_carry_the_right_scim_type() {
        let mut user = user();
        assert_eq!(
            kind_of(patch(&mut user, &USER_TYPE, json!([{"op": "remove"}]))),
            ErrorKind::NoTarget
        );
        let unknown = patch(
            &mut user,
            &USER_TYPE,
            json!([{"op": "add", "path": "favoriteColor", "value": "x"}]),
        );
        assert!(unknown
            .as_ref()
            .unwrap_err()
            .message
            .contains("favoriteColor"));
        assert_eq!(kind_of(unknown), ErrorKind::InvalidPath);
        let path_less = json!([{"op": "add", "value": {"favoriteColor": "x"}}]);
        assert_eq!(
            kind_of(patch(&mut user, &USER_TYPE, path_less)),
            ErrorKind::InvalidPath
        );
        let maybe = json!([{"op": "replace", "value": {"active": "maybe"}}]);
        assert_eq!(
            kind_of(patch(&mut user, &USER_TYPE, maybe)),
            ErrorKind::InvalidValue
        );
        let groups = json!([{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]);
        assert_eq!(
            kind_of(patch(&mut user, &USER_TYPE, groups)),
            ErrorKind::Mutability
        );
        let id = json!([{"op": "replace", "path": "id", "value": "other"}]);
        assert_eq!(
            kind_of(patch(&mut user, &USER_TYPE, id)),
            ErrorKind::Mutability
        );
        let filter = json!([{"op": "remove", "path": "emails[type eq]"}]);
        assert_eq!(
            kind_of(patch(&mut user, &USER_TYPE, filter)),
            ErrorKind::InvalidPath
        );
        let malformed = json!([{"op": "remove", "path": "emails..value"}]);
        assert_eq!(
            kind_of(patch(&mut user, &USER_TYPE, malformed)),
            ErrorKind::InvalidPath
        );
        assert_eq!(ErrorKind::NoTarget.scim_type(), "noTarget");
        assert_eq!(
            user,
            self::user(),
            "nothing was changed by refused requests"
        );
    }

    #[test]
    fn a_failing_operation_undoes_the_earlier_ones() {
        let mut user = user();
        let operations = json!([
            {"op": "replace", "path": "displayName", "value": "Babs"},
            {"op": "replace", "path": "active", "value": "maybe"}
        ]);
        assert_eq!(
            kind_of(patch(&mut user, &USER_TYPE, operations)),
            ErrorKind::InvalidValue
        );
        assert_eq!(user, self::user());
    }

    #[test]
    fn request_envelope_is_checked() {
        let missing_schema = json!({"Operations": [{"op": "add", "value": {}}]});
        assert_eq!(
            parse_request(&missing_schema).unwrap_err().kind,
            ErrorKind::InvalidSyntax
        );
        let empty = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []});
        assert_eq!(
            parse_request(&empty).unwrap_err().kind,
            ErrorKind::InvalidSyntax
        );
        let bad_op = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "merge"}]});
        assert_eq!(
            parse_request(&bad_op).unwrap_err().kind,
            ErrorKind::InvalidSyntax
        );
        let lower_case = json!({"schemas": [PATCH_OP_SCHEMA], "operations": [{"op": "ADD", "path": "title", "value": "x"}]});
        assert_eq!(parse_request(&lower_case).unwrap()[0].op, Op::Add);
    }

    #[test]
    fn clean_drops_what_servers_ignore_and_coerces_the_rest() {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "client-chosen",
            "UserName": "bjensen@example.com",
            "password": "hunter2",
            "active": "True",
            "groups": [{"value": "g1"}],
            "emails": {"value": "bjensen@example.com", "type": "work", "primary": "true"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "boss", "shoeSize": 9}
        });
        let mut dropped = clean(&mut body, &USER_TYPE).unwrap();
        dropped.sort();
        assert_eq!(
            dropped,
            [
                "groups",
                "id",
                "password",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize"
            ]
        );
        assert_eq!(body["userName"], "bjensen@example.com");
        assert_eq!(body["active"], true);
        assert_eq!(
            body["emails"],
            json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(
            body[ENTERPRISE_USER.id]["manager"],
            json!({"value": "boss"})
        );

        let mut wrong = json!({"userName": 42});
        assert_eq!(
            clean(&mut wrong, &USER_TYPE).unwrap_err().kind,
            ErrorKind::InvalidValue
        );
    }
}
