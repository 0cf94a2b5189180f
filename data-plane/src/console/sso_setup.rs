//! The SSO set-up wizard of the tenant console: a tenant's IT admin picks their identity
//! provider (a preset fills in what it sends by default), sees the values to paste into it,
//! saves the provider *disabled*, tests it with a real sign-in in a new tab — whose page shows
//! what the provider sent and what the mapping made of it, signing nobody in — and enables it.
//! Saving goes through the same service as `POST /v1/admin/sso` (its checks, its audit event).
//! The provider's page edits who signs in (domains, roles) and the connection itself: what the
//! provider sends, and for SAML the NameID format, signed requests, encrypted assertions and
//! IdP-initiated sign-in; for OIDC the scopes, token endpoint authentication, ID token
//! algorithms and a new client secret.

use actix_web::http::header::SET_COOKIE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::error::ApiError;
use shared::routes::{route, routes, Route};
use uuid::Uuid;

use super::page::{refused, render, Fields, Frame};
use crate::sso::presets::{preset, Preset, PRESETS};
use crate::sso::settings::ProviderInput;
use crate::sso::{admin, oauth, saml, Landing};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use shared::console::cookies::CookiePolicy;
use shared::console::{see_other, Csrf};
use shared::sso::providers::ProviderView;

pub fn routes() -> Vec<Route> {
    routes![
        providers_page,
        new_provider_page,
        create_provider,
        provider_page,
        set_enabled,
        set_sign_in,
        set_connection,
        start_test,
        test_result,
    ]
}

/// The values an admin pastes into their provider, for a provider named `name`.
struct OurValues {
    redirect_uri: String,
    acs_url: String,
    entity_id: String,
    metadata_url: String,
    /// Where a `private_key_jwt` provider's public key is published.
    jwks_url: String,
}

fn our_values(state: &DataPlane, context: &RequestContext, name: &str) -> OurValues {
    let urls = saml::sp_urls(state, context, name);
    let redirect_uri = oauth::redirect_uri(state, context, name);
    OurValues {
        jwks_url: redirect_uri.replace("/callback", "/jwks"),
        redirect_uri,
        metadata_url: urls.entity_id.clone(),
        acs_url: urls.acs_url,
        entity_id: urls.entity_id,
    }
}

// --- The list ---------------------------------------------------------------------------------

struct ProviderRow {
    name: String,
    display_name: String,
    kind: &'static str,
    enabled: bool,
    domains: String,
}

#[derive(Template)]
#[template(path = "console/sso_providers.html")]
struct ProvidersPage {
    frame: Frame,
    providers: Vec<ProviderRow>,
    presets: &'static [Preset],
}

#[route(get, "/console/admin/sso", access = Permission(crate::sso::READ), rate = Read)]
async fn providers_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    let (frame, _) = Frame::signed_in(&state, &context, &csrf, context.signed_in()?).await?;
    let providers = admin::list(&state, &context)
        .await?
        .into_iter()
        .map(|provider| ProviderRow {
            domains: provider
                .domains
                .iter()
                .map(|binding| binding.domain.clone())
                .collect::<Vec<_>>()
                .join(", "),
            name: provider.name,
            display_name: provider.display_name,
            kind: provider.kind,
            enabled: provider.enabled,
        })
        .collect();
    render(
        StatusCode::OK,
        &ProvidersPage {
            frame,
            providers,
            presets: PRESETS,
        },
    )
}

// --- A new provider ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/sso_new.html")]
struct NewProviderPage {
    frame: Frame,
    preset: &'static Preset,
    values: OurValues,
    roles: Vec<String>,
    /// What was typed, by field name (or the preset's defaults).
    typed: Fields,
    error: Option<String>,
    name_error: Option<&'static str>,
}

const NAME_RULE: &str =
    "a name is 2 to 40 lowercase letters, digits and dashes, starting with a letter";

#[derive(Deserialize, Default)]
#[serde(default)]
struct PresetQuery {
    preset: String,
    /// The provider's name, which its URLs are made of (the preset's key until chosen).
    name: Option<String>,
}

async fn new_provider_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    preset: &'static Preset,
    typed: Fields,
    outcome: (StatusCode, Option<String>),
) -> Result<HttpResponse, ApiError> {
    let (frame, _) = Frame::signed_in(state, context, csrf, context.signed_in()?).await?;
    let roles = super::page::role_names(state, context).await?;
    let name = typed.one("name");
    let (name, name_error) = if shared::sso::settings::valid_name(name) {
        (name, None)
    } else {
        ("<name>", Some(NAME_RULE))
    };
    let page = NewProviderPage {
        frame,
        preset,
        values: our_values(state, context, name),
        roles,
        typed,
        error: outcome.1,
        name_error,
    };
    render(outcome.0, &page)
}

#[route(get, "/console/admin/sso/new", access = Permission(crate::sso::MANAGE), rate = Read)]
async fn new_provider_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    query: web::Query<PresetQuery>,
) -> Result<HttpResponse, ApiError> {
    let preset = preset(&query.preset)
        .ok_or_else(|| ApiError::not_found("unknown_preset", "no such identity provider preset"))?;
    let name = query.name.as_deref().unwrap_or(preset.key).trim();
    let defaults = Fields::from_pairs(&[
        ("name", name),
        ("display_name", preset.label),
        ("scopes", preset.scopes),
        ("email", preset.email),
        ("full_name", preset.name),
        ("groups", preset.groups),
        ("default_role", "member"),
    ]);
    let status = if shared::sso::settings::valid_name(name) {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    new_provider_answer(&state, &context, &csrf, preset, defaults, (status, None)).await
}

/// `group = role` lines as the provider's role mapping.
fn role_mapping(text: &str) -> Result<serde_json::Map<String, Value>, ApiError> {
    let mut mapping = serde_json::Map::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let Some((group, role)) = line.split_once('=') else {
            return Err(ApiError::bad_request(
                "invalid_role_mapping",
                format!("write each mapping as `group = role`: {line}"),
            ));
        };
        mapping.insert(
            group.trim().to_owned(),
            Value::String(role.trim().to_owned()),
        );
    }
    Ok(mapping)
}

/// The domain bindings of a form's `domains` (separated by commas or spaces) and
/// `require_sso` checkbox.
fn domain_bindings(fields: &Fields) -> Vec<Value> {
    let require_sso = fields.one("require_sso") == "on";
    fields
        .one("domains")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|domain| !domain.is_empty())
        .map(|domain| json!({ "domain": domain, "require_sso": require_sso }))
        .collect()
}

/// The IdP's metadata: the uploaded file, else the pasted XML.
fn idp_metadata(fields: &Fields) -> Result<&str, ApiError> {
    [
        fields.one("idp_metadata_file"),
        fields.one("idp_metadata_xml"),
    ]
    .into_iter()
    .find(|xml| !xml.trim().is_empty())
    .ok_or_else(|| {
        ApiError::bad_request(
            "invalid_sso_config",
            "upload your provider's metadata file or paste its XML",
        )
    })
}

/// The API's provider input for the wizard's form.
fn provider_input(preset: &Preset, fields: &Fields) -> Result<ProviderInput, ApiError> {
    let provider = if preset.saml {
        json!({
            "kind": "saml",
            "idp_metadata_xml": idp_metadata(fields)?,
            "attributes": {
                "email": fields.one("email"),
                "name": fields.one("full_name"),
                "groups": fields.one("groups"),
            },
        })
    } else {
        json!({
            "kind": "oidc",
            "issuer": fields.one("issuer").trim(),
            "client_id": fields.one("client_id").trim(),
            "scopes": fields.one("scopes").split_whitespace().collect::<Vec<_>>(),
            "claims": {
                "email": fields.one("email"),
                "name": fields.one("full_name"),
                "groups": fields.one("groups"),
            },
        })
    };
    let secret = Some(fields.one("client_secret")).filter(|secret| !secret.is_empty());
    let input = json!({
        "name": fields.one("name").trim(),
        "display_name": fields.one("display_name").trim(),
        "provider": provider,
        "client_secret": if preset.saml { None } else { secret },
        "users": {
            "default_role": fields.one("default_role"),
            "role_mapping": role_mapping(fields.one("role_mapping"))?,
            "link_existing_users": fields.one("link_existing_users") == "on",
        },
        "domains": domain_bindings(fields),
        "enabled": false,
    });
    serde_json::from_value(input).map_err(|error| {
        ApiError::bad_request("invalid_sso_config", format!("check the form: {error}"))
    })
}

#[route(post, "/console/admin/sso",
    access = Permission(crate::sso::MANAGE),
    audit = event("sso.create", "sso_provider"),
    rate = Write)]
async fn create_provider(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let preset = preset(fields.one("preset"))
        .ok_or_else(|| ApiError::bad_request("unknown_preset", "no such preset"))?;
    let caller = context.authenticated()?;
    let saved = match provider_input(preset, &fields) {
        Ok(input) => admin::save(&state, &context, caller, input, false)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match saved {
        Ok(view) => Ok(see_other(&format!("/console/admin/sso/{}", view.name))),
        Err(error) => {
            let (status, message) = refused(error)?;
            new_provider_answer(
                &state,
                &context,
                &csrf,
                preset,
                fields,
                (status, Some(message)),
            )
            .await
        }
    }
}

// --- A provider -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/sso_provider.html")]
struct ProviderPage {
    frame: Frame,
    name: String,
    display_name: String,
    kind: &'static str,
    enabled: bool,
    values: OurValues,
    domains: String,
    roles: Vec<String>,
    /// The sign-in form's values: the stored ones, or what was typed when it was refused.
    typed: Fields,
    error: Option<String>,
    /// The connection form's values, likewise.
    connection: Fields,
    connection_error: Option<String>,
    /// OIDC: each ID token algorithm, and whether it is allowed.
    algorithms: Vec<(String, bool)>,
    /// OIDC: the client authenticates with a key of ours (`private_key_jwt`).
    uses_client_key: bool,
    /// SAML: the provider has a key of its own (its certificate is in our metadata).
    has_saml_key: bool,
    name_id_formats: &'static [(&'static str, &'static str)],
    token_endpoint_auths: &'static [(&'static str, &'static str)],
}

/// The SAML settings the connection form shows as checkboxes.
const SAML_FLAGS: [&str; 3] = [
    "sign_authn_requests",
    "require_encrypted_assertions",
    "allow_idp_initiated",
];

/// The NameID formats a SAML provider may ask for: value, label.
const NAME_ID_FORMATS: [(&str, &str); 4] = [
    ("unspecified", "The provider's choice"),
    ("persistent", "Persistent"),
    ("transient", "Transient (people are known by an attribute)"),
    ("email", "Email address"),
];

/// Client authentications at an OIDC token endpoint: value, label.
const TOKEN_ENDPOINT_AUTHS: [(&str, &str); 4] = [
    ("", "As the provider's discovery document says"),
    ("client_secret_basic", "Client secret, HTTP Basic"),
    ("client_secret_post", "Client secret, in the form"),
    ("private_key_jwt", "A JWT signed with our key (no secret)"),
];

/// The forms of the provider's page.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// Who signs in: domains, default role, group mapping.
    SignIn,
    /// What the provider sends and how we talk to it.
    Connection,
}

impl Form {
    /// The form's changes to the stored provider.
    fn change(self, fields: &Fields, input: &mut Value) -> Result<(), ApiError> {
        match self {
            Self::SignIn => {
                input["domains"] = Value::Array(domain_bindings(fields));
                input["users"]["default_role"] =
                    Value::String(fields.one("default_role").to_owned());
                input["users"]["role_mapping"] =
                    Value::Object(role_mapping(fields.one("role_mapping"))?);
                Ok(())
            }
            Self::Connection => connection_change(fields, input),
        }
    }
}

#[route(get, "/console/admin/sso/{name}", access = Permission(crate::sso::READ), rate = Read)]
async fn provider_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = admin::get(&state, &context, &path).await?;
    provider_answer(&state, &context, &csrf, view, None, (StatusCode::OK, None)).await
}

/// The connection form's stored values.
fn stored_connection(view: &ProviderView) -> Fields {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let provider = serde_json::to_value(&view.provider).unwrap_or_default();
    let names = match view.kind {
        "saml" => &provider["attributes"],
        _ => &provider["claims"],
    };
    let flag = |name: &str| {
        if provider[name] == Value::Bool(true) {
            "on".to_owned()
        } else {
            String::new()
        }
    };
    let scopes = provider["scopes"]
        .as_array()
        .map(|scopes| scopes.iter().map(text).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let mut pairs = vec![
        ("email".to_owned(), text(&names["email"])),
        ("full_name".to_owned(), text(&names["name"])),
        ("groups".to_owned(), text(&names["groups"])),
        ("scopes".to_owned(), scopes),
        (
            "name_id_format".to_owned(),
            text(&provider["name_id_format"]),
        ),
        (
            "subject_attribute".to_owned(),
            text(&provider["subject_attribute"]),
        ),
        (
            "token_endpoint_auth".to_owned(),
            text(&provider["token_endpoint_auth"]),
        ),
    ];
    for name in SAML_FLAGS {
        pairs.push((name.to_owned(), flag(name)));
    }
    for algorithm in provider["id_token_algorithms"]
        .as_array()
        .into_iter()
        .flatten()
    {
        pairs.push(("id_token_algorithms".to_owned(), text(algorithm)));
    }
    Fields::from_owned(pairs)
}

/// The provider's page; a refused form shows again as it was posted (the other one with the
/// stored values).
async fn provider_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    view: ProviderView,
    posted: Option<(Form, Fields)>,
    outcome: (StatusCode, Option<String>),
) -> Result<HttpResponse, ApiError> {
    let (frame, _) = Frame::signed_in(state, context, csrf, context.signed_in()?).await?;
    let roles = super::page::role_names(state, context).await?;
    let (typed, connection, error, connection_error) = match posted {
        None => (None, None, None, None),
        Some((Form::SignIn, fields)) => (Some(fields), None, outcome.1, None),
        Some((Form::Connection, fields)) => (None, Some(fields), None, outcome.1),
    };
    let connection = connection.unwrap_or_else(|| stored_connection(&view));
    let allowed = connection.all("id_token_algorithms");
    let algorithms = shared::sso::settings::IdTokenAlgorithm::ALL
        .iter()
        .filter_map(|algorithm| serde_json::to_value(algorithm).ok())
        .filter_map(|name| name.as_str().map(str::to_owned))
        .map(|name| {
            let on = allowed.contains(&name);
            (name, on)
        })
        .collect();
    let typed = typed.unwrap_or_else(|| {
        let domains = view
            .domains
            .iter()
            .map(|binding| binding.domain.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mapping = view
            .users
            .role_mapping
            .iter()
            .map(|(group, role)| format!("{group} = {role}"))
            .collect::<Vec<_>>()
            .join("\n");
        let required = view.domains.iter().any(|binding| binding.require_sso);
        Fields::from_pairs(&[
            ("domains", &domains),
            ("require_sso", if required { "on" } else { "" }),
            ("default_role", &view.users.default_role),
            ("role_mapping", &mapping),
        ])
    });
    let page = ProviderPage {
        frame,
        values: our_values(state, context, &view.name),
        domains: view
            .domains
            .iter()
            .map(|binding| {
                let required = if binding.require_sso {
                    " (SSO required)"
                } else {
                    ""
                };
                format!("{}{required}", binding.domain)
            })
            .collect::<Vec<_>>()
            .join(", "),
        roles,
        typed,
        error,
        connection,
        connection_error,
        algorithms,
        uses_client_key: view.client_jwks_path.is_some(),
        has_saml_key: view.provider.own_key() == Some(shared::sso::settings::OwnKey::SamlKey),
        name_id_formats: &NAME_ID_FORMATS,
        token_endpoint_auths: &TOKEN_ENDPOINT_AUTHS,
        name: view.name,
        display_name: view.display_name,
        kind: view.kind,
        enabled: view.enabled,
    };
    render(outcome.0, &page)
}

/// The stored provider as the API would take it back, with `change` made (no secret: the
/// stored one stays).
fn stored_input(
    view: &ProviderView,
    change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
) -> Result<ProviderInput, ApiError> {
    let mut input = json!({
        "name": view.name,
        "display_name": view.display_name,
        "provider": view.provider,
        "users": view.users,
        "domains": view.domains,
        "enabled": view.enabled,
    });
    change(&mut input)?;
    serde_json::from_value(input).map_err(|error| {
        ApiError::bad_request("invalid_sso_config", format!("check the form: {error}"))
    })
}

#[route(post, "/console/admin/sso/{name}/enabled",
    access = Permission(crate::sso::MANAGE),
    audit = event("sso.update", "sso_provider").id_from("name"),
    rate = Write)]
async fn set_enabled(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let enabled = Fields::parse(&body).one("enabled") == "true";
    let view = admin::get(&state, &context, &path).await?;
    let input = stored_input(&view, |input| {
        input["enabled"] = Value::Bool(enabled);
        Ok(())
    })?;
    admin::save(&state, &context, context.authenticated()?, input, true).await?;
    Ok(see_other(&format!("/console/admin/sso/{}", view.name)))
}

/// Who signs in with the provider: its email domains (and whether they must), the default
/// role and the groups-to-roles mapping. A refusal shows the page again with what was typed.
#[route(post, "/console/admin/sso/{name}/sign-in",
    access = Permission(crate::sso::MANAGE),
    audit = event("sso.update", "sso_provider").id_from("name"),
    rate = Write)]
async fn set_sign_in(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    save_form(&state, &context, &csrf, &path, &body, Form::SignIn).await
}

/// Saves what `form` of provider `name`'s page posted; a refusal shows the page again with
/// that form as typed, nothing changed.
async fn save_form(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    name: &str,
    body: &[u8],
    form: Form,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(body);
    let view = admin::get(state, context, name).await?;
    let saved = match stored_input(&view, |input| form.change(&fields, input)) {
        Ok(input) => admin::save(state, context, context.authenticated()?, input, true)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match saved {
        Ok(_) => Ok(see_other(&format!("/console/admin/sso/{}", view.name))),
        Err(error) => {
            let outcome = refused(error)?;
            provider_answer(
                state,
                context,
                csrf,
                view,
                Some((form, fields)),
                (outcome.0, Some(outcome.1)),
            )
            .await
        }
    }
}

/// The connection form's changes to a stored provider (its kind stays).
fn connection_change(fields: &Fields, input: &mut Value) -> Result<(), ApiError> {
    let names = json!({
        "email": fields.one("email").trim(),
        "name": fields.one("full_name").trim(),
        "groups": fields.one("groups").trim(),
    });
    let provider = &mut input["provider"];
    match provider["kind"].as_str() {
        Some("saml") => {
            provider["attributes"] = names;
            provider["name_id_format"] = json!(fields.one("name_id_format"));
            provider["subject_attribute"] = match fields.one("subject_attribute").trim() {
                "" => Value::Null,
                attribute => json!(attribute),
            };
            for flag in SAML_FLAGS {
                provider[flag] = Value::Bool(fields.one(flag) == "on");
            }
        }
        Some("oidc") => {
            provider["scopes"] = json!(fields.one("scopes").split_whitespace().collect::<Vec<_>>());
            for claim in ["email", "name", "groups"] {
                provider["claims"][claim] = names[claim].clone();
            }
            provider["token_endpoint_auth"] = match fields.one("token_endpoint_auth") {
                "" => Value::Null,
                method => json!(method),
            };
            provider["id_token_algorithms"] = json!(fields.all("id_token_algorithms"));
            if let Some(secret) =
                Some(fields.one("client_secret")).filter(|secret| !secret.is_empty())
            {
                input["client_secret"] = json!(secret);
            }
        }
        _ => return Err(ApiError::bad_request(
            "invalid_sso_config",
            "change an OAuth 2.0 provider's connection through the API (PUT /v1/admin/sso/{name})",
        )),
    }
    Ok(())
}

/// The connection: what the provider sends, and how we talk to it. A refusal shows the page
/// again with what was typed; a change that needs a new key of ours makes one (SAML: give the
/// IdP our metadata again).
#[route(post, "/console/admin/sso/{name}/connection",
    access = Permission(crate::sso::MANAGE),
    audit = event("sso.update", "sso_provider").id_from("name"),
    rate = Write)]
async fn set_connection(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    save_form(&state, &context, &csrf, &path, &body, Form::Connection).await
}

/// Starts a test sign-in through the provider (enabled or not). Opened in a new tab; it ends
/// on the result page, not signed in as anyone.
#[route(get, "/console/admin/sso/{name}/test", access = Permission(crate::sso::MANAGE), rate = Read)]
async fn start_test(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = oauth::any_provider(&state, &context, &path).await?;
    let result_page = format!("/console/admin/sso/{}/test-result", provider.name);
    super::sso::to_provider(&state, &context, &provider, result_page, None, true).await
}

#[derive(Template)]
#[template(path = "console/sso_test_result.html")]
struct TestResultPage {
    frame: Frame,
    name: String,
    enabled: bool,
    received: String,
    email: String,
    email_problem: Option<String>,
    display_name: String,
    groups: String,
    roles: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResultQuery {
    result: String,
}

#[route(get, "/console/admin/sso/{name}/test-result", access = Permission(crate::sso::MANAGE), rate = Read)]
async fn test_result(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
    query: web::Query<ResultQuery>,
) -> Result<HttpResponse, ApiError> {
    let (frame, _) = Frame::signed_in(&state, &context, &csrf, context.signed_in()?).await?;
    let provider = oauth::any_provider(&state, &context, &path).await?;
    let gone = || {
        ApiError::not_found(
            "test_result_not_found",
            "no such test result (they are kept for an hour)",
        )
    };
    let id = Uuid::parse_str(&query.result).map_err(|_| gone())?;
    let result = crate::sso::sign_in::test_result(&state, &context, &provider, id)
        .await?
        .ok_or_else(gone)?;
    let mapped = &result["mapped"];
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let list = |value: &Value| {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let page = TestResultPage {
        frame,
        name: provider.name.clone(),
        enabled: provider.enabled,
        received: serde_json::to_string_pretty(&result["received"]).unwrap_or_default(),
        email: text(&mapped["email"]),
        email_problem: mapped["email_problem"].as_str().map(str::to_owned),
        display_name: text(&mapped["name"]),
        groups: list(&mapped["groups"]),
        roles: list(&mapped["roles"]),
    };
    render(StatusCode::OK, &page)
}

/// Where a finished test goes: its result page, in the admin's tab.
pub fn tested(state: &DataPlane, landing: &Landing, result_id: Uuid) -> HttpResponse {
    let policy = CookiePolicy::for_scheme(&state.config.public_scheme);
    let mut answer = see_other(&format!("{}?result={result_id}", landing.return_to));
    answer.headers_mut().append(SET_COOKIE, policy.clear_sso());
    answer
}
