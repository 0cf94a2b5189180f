//! A plane's OpenAPI 3.1 document, built from its route table. What each handler's
//! `#[route]` says of its operation (summary, parameters, bodies, its own error answers) is
//! completed from its policy, so the document cannot disagree with what the server enforces:
//! - the security requirement from [`Access`]: the access token and, where keys are
//!   admitted, the API key, each naming the permission needed (OpenAPI 3.1 allows role names
//!   in the requirement of a non-OAuth scheme);
//! - the error answers every route of that policy can give (401, 403, 429, 503, …), each
//!   with the error envelope;
//! - `x-tenantry-access`, `x-tenantry-audit-action` and `x-tenantry-rate-class`;
//! - path parameters the handler did not describe, as strings.
//!
//! The JSON is canonical (object keys sorted), so the committed copies under `docs/openapi/`
//! change only when the API does.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use utoipa::openapi::path::{
    HttpMethod, Operation, Parameter, ParameterBuilder, ParameterIn, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{SchemaType, Type};
use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApiBuilder, Ref, RefOr, Required,
    ResponseBuilder, Schema,
};

use super::policy::{Access, RateClass};
use super::RouteInfo;

/// The plane a document describes.
pub struct Plane {
    pub title: &'static str,
    pub description: &'static str,
    /// The security schemes its routes use, by name (`access_token`, `api_key`,
    /// `operator_token`).
    pub security_schemes: Vec<(&'static str, SecurityScheme)>,
    /// Answers every route of the plane can give besides those its policy implies, with
    /// their error codes (a data-plane route can always answer 404 `tenant_not_found`).
    pub common_errors: Vec<(u16, &'static str)>,
}

/// What both planes hold every request to (`crate::json_body`, `crate::http::limit_headers`),
/// said once in each document's description.
const INPUT_RULES: &str = "JSON request bodies are sent as `application/json` (parameters \
                           such as `charset=utf-8` allowed; anything else is 415 \
                           `unsupported_media_type`) and may not name a key twice in any \
                           object (400 `invalid_json`, `details.duplicate_key`). A header line \
                           over 8 KiB, or headers over 32 KiB in all, are 431 \
                           `request_headers_too_large`.";

/// Names given to two different schemas by the routes of a table (the document would keep
/// only one of them): each such name, for the test that walks the table.
pub fn schema_conflicts(routes: &[Arc<RouteInfo>]) -> Vec<String> {
    let mut seen: BTreeMap<&str, Value> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for route in routes {
        for (name, schema) in &route.schemas {
            let schema = serde_json::to_value(schema).unwrap_or(Value::Null);
            match seen.get(name.as_str()) {
                Some(known) if *known != schema => conflicts.push(name.clone()),
                Some(_) => {}
                None => {
                    seen.insert(name, schema);
                }
            }
        }
    }
    conflicts
}

/// The security scheme names the documents use.
pub const ACCESS_TOKEN: &str = "access_token";
pub const API_KEY: &str = "api_key";
pub const OPERATOR_TOKEN: &str = "operator_token";

/// The plane's document, as canonical JSON.
pub fn document(plane: &Plane, routes: &[Arc<RouteInfo>]) -> Value {
    let mut paths = PathsBuilder::new().build();
    let mut schemas: BTreeMap<String, RefOr<Schema>> = BTreeMap::new();
    for route in routes {
        let method = http_method(&route.method);
        paths.add_path_operation(&route.path, vec![method], operation(plane, route));
        for (name, schema) in &route.schemas {
            schemas.insert(name.clone(), schema.clone());
        }
    }
    let mut components = ComponentsBuilder::new().schema("Error", error_schema());
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }
    for (name, scheme) in &plane.security_schemes {
        components = components.security_scheme(*name, scheme.clone());
    }
    let document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(plane.title)
                .description(Some(format!("{} {INPUT_RULES}", plane.description)))
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build();
    let mut document = serde_json::to_value(&document).unwrap_or(Value::Null);
    close_tagged_unions(&mut document);
    canonical(document)
}

/// An internally tagged enum whose variants refuse unknown fields (serde's `tag = "kind"`
/// with `deny_unknown_fields` structs) comes out of utoipa as `allOf: [variant, {kind}]`
/// where the variant says `additionalProperties: false`, which no object satisfies (the
/// variant refuses `kind`); a flattened `deny_unknown_fields` struct has the same problem.
/// Such a part is opened, and its `allOf` closed instead with `unevaluatedProperties: false`
/// (JSON Schema 2020-12, OpenAPI 3.1), which is what the server does: the tag and the
/// variant's fields, nothing else.
///
/// An `allOf` whose parts are open (a flattened answer such as `TenantDetails`) stays open:
/// closed, it would refuse the fields of a schema that flattens it in turn (a created
/// tenant's `activation_token`), since `unevaluatedProperties` sees only its own subschemas.
fn close_tagged_unions(document: &mut Value) {
    let closed: Vec<String> = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| {
            schemas
                .iter()
                .filter(|(_, schema)| {
                    schema.get("additionalProperties") == Some(&Value::Bool(false))
                })
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut variants = Vec::new();
    close_all_of(document, &closed, &mut variants);
    let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for name in variants {
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            schema.remove("additionalProperties");
        }
    }
}

/// Closes each `allOf` that refers to one of the `closed` schemas, and collects those it
/// refers to (to be opened).
fn close_all_of(value: &mut Value, closed: &[String], variants: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(parts)) = map.get("allOf") {
                let referred: Vec<String> = parts
                    .iter()
                    .filter_map(|part| {
                        part.get("$ref")
                            .and_then(Value::as_str)
                            .and_then(|reference| reference.strip_prefix("#/components/schemas/"))
                    })
                    .filter(|name| closed.iter().any(|closed| closed == name))
                    .map(str::to_owned)
                    .collect();
                if !referred.is_empty() {
                    variants.extend(referred);
                    map.insert("unevaluatedProperties".to_owned(), Value::Bool(false));
                }
            }
            map.values_mut()
                .for_each(|value| close_all_of(value, closed, variants));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|value| close_all_of(value, closed, variants)),
        _ => {}
    }
}

fn http_method(method: &actix_web::http::Method) -> HttpMethod {
    use actix_web::http::Method;
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        Method::OPTIONS => HttpMethod::Options,
        Method::TRACE => HttpMethod::Trace,
        _ => HttpMethod::Get,
    }
}

fn operation(plane: &Plane, route: &RouteInfo) -> Operation {
    let mut operation = route.operation.clone();
    let policy = &route.policy;
    add_path_parameters(&mut operation, &route.path);
    operation.security = security(&policy.access);
    let mut errors: Vec<(u16, String)> = plane
        .common_errors
        .iter()
        .map(|(status, codes)| (*status, (*codes).to_owned()))
        .collect();
    errors.push((
        431,
        format!(
            "`request_headers_too_large`: a header line over {} bytes, or headers over {} \
             bytes in all",
            crate::http::MAX_HEADER_LINE_BYTES,
            crate::http::MAX_HEADER_BYTES
        ),
    ));
    match policy.access {
        // A public route needs no credential, but one that is sent must be valid.
        Access::Public if policy.rate != RateClass::Unlimited => errors.push((
            401,
            "`unauthorized`, `session_ended`, `invalid_api_key`: a credential was sent and is \
             not valid (none is needed)"
                .into(),
        )),
        Access::Public => {}
        Access::Operator => errors.push((401, "`unauthorized`: no valid operator token".into())),
        Access::RestrictedOk => errors.push((
            401,
            "`unauthorized`, `session_ended`: no valid access token".into(),
        )),
        _ => {
            errors.push((
                401,
                "`unauthorized`, `session_ended`: no valid credential".into(),
            ));
            errors.push((403, forbidden(&policy.access)));
        }
    }
    // Every route parses something of the request (its path, query, headers or body).
    errors.push((
        400,
        "`invalid_request` and the route's own codes: the request does not fit".into(),
    ));
    if !path_parameters(&route.path).is_empty() {
        errors.push((
            404,
            "`not_found` and the route's own codes: nothing by that name".into(),
        ));
    }
    if policy.rate != RateClass::Unlimited {
        errors.push((
            429,
            "`rate_limited`: over a rate limit; see `Retry-After`".into(),
        ));
    }
    if operation.request_body.is_some() {
        errors.push((
            400,
            "`invalid_json`: the body is not the JSON this route takes (malformed, or an object \
             naming a key twice)"
                .into(),
        ));
    }
    let carries_body = operation.request_body.is_some()
        || matches!(
            route.method,
            actix_web::http::Method::POST
                | actix_web::http::Method::PUT
                | actix_web::http::Method::PATCH
        );
    if carries_body {
        errors.push((
            413,
            "`payload_too_large`: the body is over the limit".into(),
        ));
        errors.push((
            415,
            "`unsupported_media_type`: the body is not of a type this route takes; \
             `unsupported_content_encoding`: its `Content-Encoding` is not gzip or deflate"
                .into(),
        ));
    }
    for (status, codes) in errors {
        let key = status.to_string();
        match operation.responses.responses.get_mut(&key) {
            // The handler described this status itself: keep its words, add the policy's.
            Some(RefOr::T(response)) => {
                response.description = format!("{}; {codes}", response.description);
            }
            Some(RefOr::Ref(_)) => {}
            None => {
                operation.responses.responses.insert(
                    key,
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(codes)
                            .content("application/json", error_content())
                            .build(),
                    ),
                );
            }
        }
    }
    // Every error answer is the envelope, those only a handler describes (its own 403 or 409)
    // too: without it a generated client cannot read their `code`.
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            if (status.starts_with('4') || status.starts_with('5')) && response.content.is_empty() {
                response
                    .content
                    .insert("application/json".into(), RefOr::T(error_content()));
            }
        }
    }
    let mut extensions = utoipa::openapi::extensions::ExtensionsBuilder::new()
        .add("x-tenantry-access", json!(policy.access.describe()))
        .add("x-tenantry-rate-class", json!(policy.rate.as_str()));
    if let Some(audit) = policy.audit.event() {
        extensions = extensions.add("x-tenantry-audit-action", json!(audit.action));
    }
    operation.extensions = Some(extensions.build());
    if let Some(RefOr::T(body)) = &mut operation.request_body {
        require_body(body);
    }
    operation
}

fn forbidden(access: &Access) -> String {
    let restricted = "`password_change_required`, `mfa_enrollment_required`: the session must \
                      first change its password or enrol in MFA";
    match access {
        Access::SignedIn => format!("{restricted}; `user_required`: API keys are not admitted"),
        Access::Permission(permission) => format!(
            "`forbidden`: the caller's roles do not grant `{permission}`; {restricted}; \
             `user_required`: API keys are not admitted"
        ),
        Access::UserOrKey(permission) => format!(
            "`forbidden`: neither the caller's roles nor the key's scopes (and its creator's \
             roles) grant `{permission}`; {restricted}"
        ),
        Access::Caller => format!("`forbidden`: the caller may see nothing here; {restricted}"),
        _ => String::new(),
    }
}

fn add_path_parameters(operation: &mut Operation, path: &str) {
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    let described: Vec<String> = parameters
        .iter()
        .filter_map(|parameter| match parameter {
            RefOr::T(parameter) if parameter.parameter_in == ParameterIn::Path => {
                Some(parameter.name.clone())
            }
            _ => None,
        })
        .collect();
    let mut missing: Vec<Parameter> = Vec::new();
    for name in path_parameters(path) {
        if !described.contains(&name) {
            missing.push(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String),
                    ))
                    .build(),
            );
        }
    }
    parameters.splice(0..0, missing.into_iter().map(RefOr::T));
    if parameters.is_empty() {
        operation.parameters = None;
    }
}

/// The `{name}`s of a path pattern, in order.
pub fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.split(':').next().unwrap_or(name).to_owned())
        .collect()
}

/// utoipa marks a body required unless it was declared `Option<T>`, which it leaves unmarked
/// and describes as "`T` or `null`". For us `Option<T>` means the body may be left out (a
/// `null` body is not `T` and is refused): such a body is marked optional and its schema is
/// `T` alone.
fn require_body(body: &mut RequestBody) {
    if body.required.is_some() {
        return;
    }
    body.required = Some(Required::False);
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else { continue };
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
            continue;
        };
        let is_null = |item: &RefOr<Schema>| {
            matches!(item, RefOr::T(Schema::Object(object))
                if object.schema_type == SchemaType::Type(Type::Null))
        };
        let rest: Vec<RefOr<Schema>> = one_of
            .items
            .iter()
            .filter(|item| !is_null(item))
            .cloned()
            .collect();
        if let [only] = rest.as_slice() {
            content.schema = Some(only.clone());
        }
    }
}

fn security(access: &Access) -> Option<Vec<SecurityRequirement>> {
    let requirement = |scheme: &str, permission: Option<&str>| {
        SecurityRequirement::new(scheme, permission.map(str::to_owned))
    };
    match access {
        Access::Public => None,
        Access::SignedIn | Access::RestrictedOk => Some(vec![requirement(ACCESS_TOKEN, None)]),
        Access::Permission(permission) => Some(vec![requirement(ACCESS_TOKEN, Some(permission))]),
        Access::UserOrKey(permission) => Some(vec![
            requirement(ACCESS_TOKEN, Some(permission)),
            requirement(API_KEY, Some(permission)),
        ]),
        Access::Caller => Some(vec![
            requirement(ACCESS_TOKEN, None),
            requirement(API_KEY, None),
        ]),
        Access::Operator => Some(vec![requirement(OPERATOR_TOKEN, None)]),
    }
}

fn error_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Error")))
        .build()
}

/// The error envelope every error answer carries (`shared::error::ApiError`).
fn error_schema() -> Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let body = ObjectBuilder::new()
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("Stable machine-readable code; branch on this.")),
        )
        .required("code")
        .property(
            "message",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("What went wrong, for people; may change.")),
        )
        .required("message")
        .property(
            "request_id",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The request's id, as in `X-Request-Id` and the logs.")),
        )
        .property(
            "details",
            ObjectBuilder::new().description(Some(
                "Machine-readable specifics of some codes (the rules a password broke, the \
                 missing permission, the limit that refused).",
            )),
        );
    Schema::Object(
        ObjectBuilder::new()
            .property("error", body)
            .required("error")
            .examples([json!({
                "error": {
                    "code": "forbidden",
                    "message": "your roles do not grant users:manage",
                    "request_id": "0193a5e1-2b3c-7d4e-8f5a-6b7c8d9e0f1a",
                    "details": { "missing_permission": "users:manage" }
                }
            })])
            .build(),
    )
}

/// `value` with every object's keys sorted.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> = map
                .into_iter()
                .map(|(key, value)| (key, canonical(value)))
                .collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}
