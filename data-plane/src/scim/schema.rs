//! The SCIM attributes this service serves, written down as data (RFC 7643).
//!
//! Everything that needs to know what an attribute is — the filter evaluator,
//! the PATCH engine, the `/Schemas` and `/ResourceTypes` endpoints and the
//! `attributes`/`excludedAttributes` projection — reads these tables, so the
//! published schema and the server's behaviour cannot drift apart.
//!
//! Invariants:
//! - Tables are `static`, so an `&'static Attribute` handed out by a lookup
//!   stays valid and unique for the life of the process.
//! - Attribute names are matched case-insensitively (RFC 7643 §2.1), but the
//!   JSON we produce always uses the canonical spelling from these tables.
//! - Core attributes live at the top level of a resource; extension attributes
//!   live in an object under the extension's URN key.

use serde_json::{json, Map, Value};

use super::filter::AttributePath;

/// The data type of an attribute (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    Complex,
    Reference,
    DateTime,
    Integer,
}

impl Type {
    /// The spelling used in schema documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Boolean => "boolean",
            Type::Complex => "complex",
            Type::Reference => "reference",
            Type::DateTime => "dateTime",
            Type::Integer => "integer",
        }
    }
}

/// Whether and when a client may change an attribute (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    /// The spelling used in schema documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute appears in responses (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    /// The spelling used in schema documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// How unique a value must be (RFC 7643 §7); we never promise `global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
}

impl Uniqueness {
    /// The spelling used in schema documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
        }
    }
}

/// One attribute definition (RFC 7643 §7), constructible in `static` tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub kind: Type,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub description: &'static str,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute],
}

impl Attribute {
    /// An optional, single-valued, case-insensitive, readWrite attribute:
    /// the RFC 7643 §2.2 defaults, which the modifiers below adjust.
    const fn new(name: &'static str, kind: Type, description: &'static str) -> Self {
        Self {
            name,
            kind,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            description,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
        }
    }

    /// A string attribute with default characteristics.
    pub const fn string(name: &'static str, description: &'static str) -> Self {
        Self::new(name, Type::String, description)
    }

    /// A boolean attribute with default characteristics.
    pub const fn boolean(name: &'static str, description: &'static str) -> Self {
        Self::new(name, Type::Boolean, description)
    }

    /// A dateTime attribute (xsd:dateTime string) with default characteristics.
    pub const fn date_time(name: &'static str, description: &'static str) -> Self {
        Self::new(name, Type::DateTime, description)
    }

    /// A reference attribute; references are compared exactly (RFC 7643 §2.3.7).
    pub const fn reference(
        name: &'static str,
        reference_types: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        let mut attribute = Self::new(name, Type::Reference, description);
        attribute.reference_types = reference_types;
        attribute.case_exact = true;
        attribute
    }

    /// A complex attribute made of the given sub-attributes.
    pub const fn complex(
        name: &'static str,
        sub_attributes: &'static [Attribute],
        description: &'static str,
    ) -> Self {
        let mut attribute = Self::new(name, Type::Complex, description);
        attribute.sub_attributes = sub_attributes;
        attribute
    }

    /// Marks the attribute multi-valued.
    pub const fn multi_valued(mut self) -> Self {
        self.multi_valued = true;
        self
    }

    /// Marks the attribute required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Marks string comparisons on the attribute case-sensitive.
    pub const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    /// Marks the attribute unique within this server.
    pub const fn server_unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }

    /// Marks the attribute as set only by the server.
    pub const fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }

    /// Marks the attribute as settable once, then fixed.
    pub const fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }

    /// Marks the attribute as returned in every response.
    pub const fn always_returned(mut self) -> Self {
        self.returned = Returned::Always;
        self
    }

    /// Sets the suggested values (RFC 7643 §7 `canonicalValues`).
    pub const fn canonical_values(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }

    /// Finds a sub-attribute by name, ignoring case.
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        find_attribute(self.sub_attributes, name)
    }
}

/// A schema: a URN and the attributes it defines (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// The schema URN, e.g. `urn:ietf:params:scim:schemas:core:2.0:User`.
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
}

impl Schema {
    /// Finds a top-level attribute by name, ignoring case.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find_attribute(self.attributes, name)
    }
}

/// A resource type: an endpoint, its core schema and extensions (RFC 7643 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static Schema,
    pub extensions: &'static [&'static Schema],
}

impl ResourceType {
    /// The extension schema with the given URN (ignoring case), if this type has it.
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .copied()
            .find(|schema| schema.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves a path to its schema, attribute and (if named) sub-attribute.
    ///
    /// Without a URN the core schema and the common attributes (`id`,
    /// `externalId`, `meta`) are searched first, then the extensions — clients
    /// are supposed to prefix extension attributes, but some do not. Common
    /// attributes report the core schema, since they live at the top level.
    pub fn resolve(
        &self,
        path: &AttributePath,
    ) -> Option<(
        &'static Schema,
        &'static Attribute,
        Option<&'static Attribute>,
    )> {
        let core = self.schema;
        let in_core = || {
            core.attribute(&path.attribute)
                .or_else(|| common_attribute(&path.attribute))
        };
        let (schema, attribute) = match &path.urn {
            Some(urn) if core.id.eq_ignore_ascii_case(urn) => (core, in_core()?),
            Some(urn) => {
                let extension = self.extension(urn)?;
                (extension, extension.attribute(&path.attribute)?)
            }
            None => match in_core() {
                Some(attribute) => (core, attribute),
                None => self.extensions.iter().find_map(|extension| {
                    extension
                        .attribute(&path.attribute)
                        .map(|attribute| (*extension, attribute))
                })?,
            },
        };
        match &path.sub_attribute {
            None => Some((schema, attribute, None)),
            Some(name) => Some((schema, attribute, Some(attribute.sub_attribute(name)?))),
        }
    }
}

fn find_attribute<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attributes
        .iter()
        .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
}

/// Looks up a JSON object member by name, ignoring case, as SCIM requires.
pub fn get_ignoring_case<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, member)| member)
}

/// Finds one of the attributes every resource has (RFC 7643 §3.1).
pub fn common_attribute(name: &str) -> Option<&'static Attribute> {
    find_attribute(COMMON_ATTRIBUTES, name)
}

const META_SUB_ATTRIBUTES: &[Attribute] = &[
    Attribute::string("resourceType", "The name of the resource type.")
        .case_exact()
        .read_only(),
    Attribute::date_time("created", "When the resource was added.").read_only(),
    Attribute::date_time("lastModified", "When the resource was last changed.").read_only(),
    Attribute::reference("location", &["uri"], "The URI of the resource.").read_only(),
    Attribute::string("version", "The version (ETag) of the resource.")
        .case_exact()
        .read_only(),
];

/// `id`, `externalId` and `meta`: part of every resource, in no schema document.
pub static COMMON_ATTRIBUTES: &[Attribute] = &[
    Attribute::string("id", "Unique identifier assigned by the service provider.")
        .case_exact()
        .read_only()
        .always_returned()
        .server_unique(),
    Attribute::string(
        "externalId",
        "Identifier assigned by the provisioning client.",
    )
    .case_exact(),
    Attribute::complex("meta", META_SUB_ATTRIBUTES, "Resource metadata.").read_only(),
];

const WORK_HOME_OTHER: &[&str] = &["work", "home", "other"];

const NAME_SUB_ATTRIBUTES: &[Attribute] = &[
    Attribute::string("formatted", "The full name, formatted for display."),
    Attribute::string("familyName", "The family (last) name."),
    Attribute::string("givenName", "The given (first) name."),
    Attribute::string("middleName", "The middle name(s)."),
    Attribute::string("honorificPrefix", "The honorific prefix, e.g. 'Ms.'."),
    Attribute::string("honorificSuffix", "The honorific suffix, e.g. 'III'."),
];

const EMAIL_SUB_ATTRIBUTES: &[Attribute] = &[
    // Required here (not in RFC 7643's schema): an email without an address means nothing,
    // and the user's sign-in address comes from it.
    Attribute::string("value", "The email address.").required(),
    Attribute::string("type", "The kind of address.").canonical_values(WORK_HOME_OTHER),
    Attribute::boolean("primary", "Whether this is the preferred address."),
    Attribute::string("display", "A label for display."),
];

const PHONE_NUMBER_SUB_ATTRIBUTES: &[Attribute] = &[
    Attribute::string("value", "The phone number."),
    Attribute::string("type", "The kind of number.")
        .canonical_values(&["work", "home", "mobile", "fax", "pager", "other"]),
    Attribute::boolean("primary", "Whether this is the preferred number."),
];

const ADDRESS_SUB_ATTRIBUTES: &[Attribute] = &[
    Attribute::string("formatted", "The full address, formatted for display."),
    Attribute::string("streetAddress", "The street address."),
    Attribute::string("locality", "The city or locality."),
    Attribute::string("region", "The state or region."),
    Attribute::string("postalCode", "The postal code."),
    Attribute::string("country", "The country (ISO 3166-1 alpha-2)."),
    Attribute::string("type", "The kind of address.").canonical_values(WORK_HOME_OTHER),
    Attribute::boolean("primary", "Whether this is the preferred address."),
];

const USER_GROUP_SUB_ATTRIBUTES: &[Attribute] = &[
    Attribute::string("value", "The id of the group.").read_only(),
    Attribute::reference("$ref", &["User", "Group"], "The URI of the group.").read_only(),
    Attribute::string("display", "The group's display name.").read_only(),
    Attribute::string("type", "Whether membership is direct or inherited.")
        .canonical_values(&["direct", "indirect"])
        .read_only(),
];

/// The core User schema, trimmed to what we serve (no password, photos, ims,
/// x509Certificates, entitlements or roles).
pub static USER: Schema = Schema {
    id: "urn:ietf:params:scim:schemas:core:2.0:User",
    name: "User",
    description: "User Account",
    attributes: &[
        Attribute::string(
            "userName",
            "Unique identifier for the user, used to sign in.",
        )
        .required()
        .server_unique(),
        Attribute::complex(
            "name",
            NAME_SUB_ATTRIBUTES,
            "The components of the user's name.",
        ),
        Attribute::string("displayName", "The name of the user, suitable for display."),
        Attribute::string("nickName", "The casual way to address the user."),
        Attribute::string("title", "The user's title, e.g. 'Vice President'."),
        Attribute::string(
            "userType",
            "The relationship to the organization, e.g. 'Employee'.",
        ),
        Attribute::string(
            "preferredLanguage",
            "Preferred language (RFC 7231 language tag).",
        ),
        Attribute::string("locale", "Locale for localizing values (language tag)."),
        Attribute::string(
            "timezone",
            "Time zone (IANA name, e.g. 'America/Los_Angeles').",
        ),
        // Required: every user is active or not (a document without it creates an active
        // user); so it is replaced, never removed.
        Attribute::boolean("active", "Whether the user may sign in.").required(),
        // Required, unlike RFC 7643: we need an address to reach the user.
        Attribute::complex(
            "emails",
            EMAIL_SUB_ATTRIBUTES,
            "Email addresses of the user.",
        )
        .multi_valued()
        .required(),
        Attribute::complex(
            "phoneNumbers",
            PHONE_NUMBER_SUB_ATTRIBUTES,
            "Phone numbers.",
        )
        .multi_valued(),
        Attribute::complex(
            "addresses",
            ADDRESS_SUB_ATTRIBUTES,
            "Physical mailing addresses.",
        )
        .multi_valued(),
        Attribute::complex(
            "groups",
            USER_GROUP_SUB_ATTRIBUTES,
            "Groups the user belongs to.",
        )
        .multi_valued()
        .read_only(),
    ],
};

const MANAGER_SUB_ATTRIBUTES: &[Attribute] = &[
    Attribute::string("value", "The id of the manager."),
    Attribute::reference("$ref", &["User"], "The URI of the manager."),
    Attribute::string("displayName", "The manager's display name.").read_only(),
];

/// The enterprise User extension (RFC 7643 §4.3).
pub static ENTERPRISE_USER: Schema = Schema {
    id: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        Attribute::string("employeeNumber", "Identifier assigned by the organization."),
        Attribute::string("costCenter", "The cost center."),
        Attribute::string("organization", "The organization."),
        Attribute::string("division", "The division."),
        Attribute::string("department", "The department."),
        Attribute::complex("manager", MANAGER_SUB_ATTRIBUTES, "The user's manager."),
    ],
};

const MEMBER_SUB_ATTRIBUTES: &[Attribute] = &[
    Attribute::string("value", "The id of the member.").immutable(),
    Attribute::reference("$ref", &["User", "Group"], "The URI of the member.").immutable(),
    // No `display`: RFC 7643 §8.7.1 gives members value, $ref and type only (a display a
    // directory sends is dropped like any sub-attribute we do not keep).
    Attribute::string("type", "The kind of member.")
        .canonical_values(&["User", "Group"])
        .immutable(),
];

/// The core Group schema.
pub static GROUP: Schema = Schema {
    id: "urn:ietf:params:scim:schemas:core:2.0:Group",
    name: "Group",
    description: "Group",
    attributes: &[
        // Unique, unlike RFC 7643: we keep group names unique per tenant.
        Attribute::string("displayName", "A name for the group, suitable for display.")
            .required()
            .server_unique(),
        Attribute::complex(
            "members",
            MEMBER_SUB_ATTRIBUTES,
            "The members of the group.",
        )
        .multi_valued(),
    ],
};

/// The `/Users` resource type.
pub static USER_TYPE: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER,
    extensions: &[&ENTERPRISE_USER],
};

/// The `/Groups` resource type.
pub static GROUP_TYPE: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP,
    extensions: &[],
};

fn attribute_document(attribute: &Attribute) -> Value {
    let mut document = Map::new();
    document.insert("name".into(), attribute.name.into());
    document.insert("type".into(), attribute.kind.as_str().into());
    document.insert("multiValued".into(), attribute.multi_valued.into());
    document.insert("description".into(), attribute.description.into());
    document.insert("required".into(), attribute.required.into());
    document.insert("caseExact".into(), attribute.case_exact.into());
    document.insert("mutability".into(), attribute.mutability.as_str().into());
    document.insert("returned".into(), attribute.returned.as_str().into());
    document.insert("uniqueness".into(), attribute.uniqueness.as_str().into());
    if !attribute.canonical_values.is_empty() {
        document.insert("canonicalValues".into(), attribute.canonical_values.into());
    }
    if !attribute.reference_types.is_empty() {
        document.insert("referenceTypes".into(), attribute.reference_types.into());
    }
    if !attribute.sub_attributes.is_empty() {
        let subs = attribute.sub_attributes.iter().map(attribute_document);
        document.insert("subAttributes".into(), Value::Array(subs.collect()));
    }
    Value::Object(document)
}

/// The `/Schemas/{id}` representation of a schema (RFC 7643 §7).
pub fn schema_document(schema: &Schema, base_url: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": schema.attributes.iter().map(attribute_document).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{}", base_url.trim_end_matches('/'), schema.id),
        },
    })
}

/// The `/ResourceTypes/{name}` representation of a resource type (RFC 7643 §6).
pub fn resource_type_document(resource_type: &ResourceType, base_url: &str) -> Value {
    let extensions: Vec<Value> = resource_type
        .extensions
        .iter()
        .map(|extension| json!({ "schema": extension.id, "required": false }))
        .collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": resource_type.name,
        "name": resource_type.name,
        "endpoint": resource_type.endpoint,
        "description": resource_type.description,
        "schema": resource_type.schema.id,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!(
                "{}/ResourceTypes/{}",
                base_url.trim_end_matches('/'),
                resource_type.name
            ),
        },
    })
}

/// What a list of paths asks of one attribute.
enum Selection {
    Nothing,
    Whole,
    SubAttributes(Vec<&'static str>),
}

fn selection(
    paths: &[AttributePath],
    resource_type: &ResourceType,
    schema: &Schema,
    attribute: &Attribute,
) -> Selection {
    let mut subs = Vec::new();
    for path in paths {
        let Some((found_schema, found, sub)) = resource_type.resolve(path) else {
            continue;
        };
        if found_schema.id != schema.id || found.name != attribute.name {
            continue;
        }
        match sub {
            None => return Selection::Whole,
            Some(sub) => subs.push(sub.name),
        }
    }
    if subs.is_empty() {
        Selection::Nothing
    } else {
        Selection::SubAttributes(subs)
    }
}

/// True when the path is an extension URN on its own, e.g.
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`, which the
/// path parser splits into URN `…:2.0` and attribute `User`.
fn names_schema(path: &AttributePath, schema: &Schema) -> bool {
    match (&path.urn, &path.sub_attribute) {
        (Some(urn), None) => schema
            .id
            .strip_suffix(path.attribute.as_str())
            .and_then(|prefix| prefix.strip_suffix(':'))
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(urn)),
        _ => false,
    }
}

/// Keeps (or drops) the named sub-attributes of a complex value or of each
/// element of a multi-valued one; returns `None` when nothing is left.
fn filter_sub_attributes(
    value: &Value,
    attribute: &Attribute,
    names: &[&str],
    keep_named: bool,
) -> Option<Value> {
    let filter_object = |object: &Map<String, Value>| -> Option<Value> {
        let kept: Map<String, Value> = object
            .iter()
            .filter(|(key, _)| {
                let always = attribute
                    .sub_attribute(key)
                    .is_some_and(|sub| sub.returned == Returned::Always);
                let named = names.iter().any(|name| name.eq_ignore_ascii_case(key));
                always || named == keep_named
            })
            .map(|(key, member)| (key.clone(), member.clone()))
            .collect();
        (!kept.is_empty()).then_some(Value::Object(kept))
    };
    match value {
        Value::Object(object) => filter_object(object),
        Value::Array(elements) => {
            let kept: Vec<Value> = elements
                .iter()
                .filter_map(|element| element.as_object().and_then(filter_object))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        _ => None,
    }
}

struct Projection<'a> {
    resource_type: &'a ResourceType,
    attributes: &'a [AttributePath],
    excluded: &'a [AttributePath],
}

impl Projection<'_> {
    fn attribute(
        &self,
        schema: &Schema,
        attribute: &Attribute,
        value: &Value,
        whole_schema: Selection,
    ) -> Option<Value> {
        match attribute.returned {
            Returned::Never => return None,
            Returned::Always => return Some(value.clone()),
            Returned::Default | Returned::Request => {}
        }
        let requested = !self.attributes.is_empty();
        let paths = if requested {
            self.attributes
        } else {
            self.excluded
        };
        let chosen = match whole_schema {
            Selection::Whole => Selection::Whole,
            _ => selection(paths, self.resource_type, schema, attribute),
        };
        match (requested, chosen) {
            (true, Selection::Whole) => Some(value.clone()),
            (true, Selection::Nothing) => None,
            (true, Selection::SubAttributes(names)) => {
                filter_sub_attributes(value, attribute, &names, true)
            }
            (false, _) if attribute.returned == Returned::Request => None,
            (false, Selection::Whole) => None,
            (false, Selection::Nothing) => Some(value.clone()),
            (false, Selection::SubAttributes(names)) => {
                filter_sub_attributes(value, attribute, &names, false)
            }
        }
    }
}

/// Applies the `attributes` / `excludedAttributes` query parameters
/// (RFC 7644 §3.4.2.5) to a resource's full JSON representation.
///
/// `schemas` and attributes returned `always` (such as `id`) are always kept
/// and `never` ones always dropped. With `attributes`, only the named
/// attributes (or sub-attributes) are kept; otherwise `excluded` ones are
/// dropped. When both are given, `attributes` wins. Keys we do not know are
/// kept unless `attributes` was given.
pub fn project(
    resource: &Value,
    resource_type: &ResourceType,
    attributes: &[AttributePath],
    excluded: &[AttributePath],
) -> Value {
    let Value::Object(object) = resource else {
        return resource.clone();
    };
    let projection = Projection {
        resource_type,
        attributes,
        excluded,
    };
    let requested = !attributes.is_empty();
    let mut output = Map::new();
    for (key, value) in object {
        if key.eq_ignore_ascii_case("schemas") {
            output.insert(key.clone(), value.clone());
        } else if let Some(extension) = resource_type.extension(key) {
            let paths = if requested { attributes } else { excluded };
            let whole = paths.iter().any(|path| names_schema(path, extension));
            let Some(members) = value.as_object() else {
                continue;
            };
            let mut kept = Map::new();
            for (name, member) in members {
                let whole_schema = if whole {
                    Selection::Whole
                } else {
                    Selection::Nothing
                };
                let projected = match extension.attribute(name) {
                    Some(attribute) => {
                        projection.attribute(extension, attribute, member, whole_schema)
                    }
                    None => (!requested).then(|| member.clone()),
                };
                if let Some(projected) = projected {
                    kept.insert(name.clone(), projected);
                }
            }
            if !kept.is_empty() {
                output.insert(key.clone(), Value::Object(kept));
            }
        } else {
            let schema = resource_type.schema;
            let projected = match schema.attribute(key).or_else(|| common_attribute(key)) {
                Some(attribute) => {
                    projection.attribute(schema, attribute, value, Selection::Nothing)
                }
                None => (!requested).then(|| value.clone()),
            };
            if let Some(projected) = projected {
                output.insert(key.clone(), projected);
            }
        }
    }
    Value::Object(output)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::super::filter::parse_attribute_list;
    use super::*;

    fn paths(input: &str) -> Vec<AttributePath> {
        parse_attribute_list(input).unwrap()
    }

    fn barbara() -> Value {
        json!({
            "schemas": [USER.id, ENTERPRISE_USER.id],
            "id": "2819c223",
            "externalId": "bjensen",
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
            "active": true,
            ENTERPRISE_USER.id: {"department": "Tour Operations", "costCenter": "4130"},
            "meta": {"resourceType": "User", "lastModified": "2011-05-13T04:42:34Z"}
        })
    }

    #[test]
    fn attribute_lookup_ignores_case() {
        assert_eq!(USER.attribute("USERNAME").unwrap().name, "userName");
        let emails = USER.attribute("emails").unwrap();
        assert_eq!(emails.sub_attribute("Primary").unwrap().kind, Type::Boolean);
        assert!(USER.attribute("password").is_none());
    }

    #[test]
    fn resolve_handles_urns_sub_attributes_and_common_attributes() {
        let path = AttributePath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        let (schema, attribute, sub) = USER_TYPE.resolve(&path).unwrap();
        assert_eq!((schema.id, attribute.name), (ENTERPRISE_USER.id, "manager"));
        assert_eq!(sub.unwrap().name, "value");

        let core =
            AttributePath::parse("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName");
        assert!(USER_TYPE.resolve(&core.unwrap()).is_some());
        let meta = AttributePath::parse("meta.lastModified").unwrap();
        assert_eq!(USER_TYPE.resolve(&meta).unwrap().0.id, USER.id);
        assert!(GROUP_TYPE
            .resolve(&AttributePath::parse("userName").unwrap())
            .is_none());
        assert!(USER_TYPE
            .resolve(&AttributePath::parse("name.nope").unwrap())
            .is_none());
    }

    #[test]
    fn schema_document_uses_rfc_spellings() {
        let document = schema_document(&USER, "https://scim.example.com/v2/");
        assert_eq!(
            document["meta"]["location"],
            "https://scim.example.com/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
        );
        let groups = document["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|attribute| attribute["name"] == "groups")
            .unwrap();
        assert_eq!(groups["mutability"], "readOnly");
        assert_eq!(groups["multiValued"], true);
        assert_eq!(
            groups["subAttributes"][1]["referenceTypes"],
            json!(["User", "Group"])
        );
        let user_name = &document["attributes"][0];
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["returned"], "default");
    }

    #[test]
    fn resource_type_document_lists_extensions() {
        let document = resource_type_document(&USER_TYPE, "https://scim.example.com/v2");
        assert_eq!(document["endpoint"], "/Users");
        assert_eq!(
            document["schemaExtensions"][0]["schema"],
            ENTERPRISE_USER.id
        );
        assert_eq!(document["schemaExtensions"][0]["required"], false);
        assert_eq!(
            document["meta"]["location"],
            "https://scim.example.com/v2/ResourceTypes/User"
        );
    }

    #[test]
    fn attributes_parameter_keeps_only_what_was_asked_plus_id_and_schemas() {
        let projected = project(&barbara(), &USER_TYPE, &paths("name.givenName,EMAILS"), &[]);
        assert_eq!(
            projected,
            json!({
                "schemas": [USER.id, ENTERPRISE_USER.id],
                "id": "2819c223",
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]
            })
        );
    }

    #[test]
    fn attributes_parameter_reaches_into_extensions() {
        let list = paths("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department");
        let projected = project(&barbara(), &USER_TYPE, &list, &[]);
        assert_eq!(
            projected[ENTERPRISE_USER.id],
            json!({"department": "Tour Operations"})
        );
        assert!(projected.get("userName").is_none());

        let whole = paths(ENTERPRISE_USER.id);
        let projected = project(&barbara(), &USER_TYPE, &whole, &[]);
        assert_eq!(projected[ENTERPRISE_USER.id]["costCenter"], "4130");
    }

    #[test]
    fn excluded_attributes_never_drop_id() {
        let excluded = paths("id,emails.primary,meta,costCenter");
        let projected = project(&barbara(), &USER_TYPE, &[], &excluded);
        assert_eq!(projected["id"], "2819c223");
        assert!(projected.get("meta").is_none());
        assert_eq!(
            projected["emails"][0],
            json!({"value": "bjensen@example.com", "type": "work"})
        );
        assert_eq!(
            projected[ENTERPRISE_USER.id],
            json!({"department": "Tour Operations"})
        );
        assert_eq!(projected["userName"], "bjensen@example.com");
    }
}
