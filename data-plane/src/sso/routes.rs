//! HTTP for SSO: the admin API (`/v1/admin/sso`, `sso:read` / `sso:manage`), discovery, and
//! the browser-facing sign-in endpoints (start, OIDC/OAuth2 callback, SAML metadata and ACS).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::admin;
use super::departure::Departure;
use super::settings::{ProviderInput, ProviderKind};
use super::{discovery, handoff, oauth, saml, Destination, SsoError, MANAGE, READ};
use crate::identity::service::{Client, TokenResponse};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use shared::sso::providers::{ProviderList, ProviderView};

pub fn routes() -> Vec<Route> {
    routes![
        list_providers,
        list_presets,
        create_provider,
        get_provider,
        replace_provider,
        delete_provider,
        discover,
        start_sign_in,
        oauth_callback,
        saml_metadata,
        client_jwks,
        start_saml_sign_in,
        saml_acs,
        exchange_code,
        get_redirects,
        replace_redirects,
    ]
}

fn client(context: &RequestContext) -> Client<'_> {
    Client {
        ip: context.source_ip,
        user_agent: context.user_agent.as_deref(),
    }
}

fn tokens(tokens: TokenResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(tokens)
}

/// A finished sign-in's answer: the tokens, or for a sign-in the console started, the
/// console's session cookie and a redirect to where it started.
async fn finish(
    state: &DataPlane,
    context: &RequestContext,
    outcome: super::Outcome,
) -> Result<HttpResponse, ApiError> {
    match outcome {
        super::Outcome::SignedIn(super::SignedIn {
            tokens: signed_in,
            landing: None,
        }) => Ok(tokens(signed_in)),
        super::Outcome::SignedIn(super::SignedIn {
            tokens,
            landing: Some(landing),
        }) => crate::console::sso::land(state, context, &tokens, &landing).await,
        super::Outcome::Tested { result_id, landing } => Ok(crate::console::sso_setup::tested(
            state, &landing, result_id,
        )),
        super::Outcome::HandedOff { redirect } => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, redirect))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()),
    }
}

#[route(
    get, "/v1/admin/sso",
    summary = "List SSO providers",
    access = Permission(READ),
    rate = Read,
    tag = "sso",
    responses((status = 200, description = "The tenant's SSO providers (secrets never shown)", body = ProviderList)))]
async fn list_providers(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let providers = admin::list(&state, &context).await?;
    Ok(HttpResponse::Ok().json(ProviderList { providers }))
}

#[route(
    get, "/v1/admin/sso/presets",
    summary = "List the identity provider presets",
    access = Permission(READ),
    rate = Read,
    tag = "sso",
    responses((status = 200, description = "Okta, Entra ID, Google Workspace, ADFS, Keycloak and generic OIDC/SAML: the claim or attribute names each sends by default, and the steps in its console", body = super::presets::PresetList)))]
async fn list_presets() -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(super::presets::PresetList {
        presets: super::presets::PRESETS,
    }))
}

#[route(
    get, "/v1/admin/sso/{name}",
    summary = "Get an SSO provider",
    access = Permission(READ),
    rate = Read,
    tag = "sso",
    responses((status = 200, description = "The provider (secrets never shown)", body = ProviderView)))]
async fn get_provider(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(admin::get(&state, &context, &path).await?))
}

#[route(
    post, "/v1/admin/sso",
    summary = "Add an SSO provider",
    access = Permission(MANAGE),
    audit = event("sso.create", "sso_provider"),
    rate = Write,
    tag = "sso",
    request_body = ProviderInput,
    responses((status = 201, description = "Created (secrets never shown)", body = ProviderView)))]
async fn create_provider(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.authenticated()?;
    let view = admin::save(&state, &context, principal, body.into_inner(), false).await?;
    Ok(HttpResponse::Created().json(view))
}

#[route(
    put, "/v1/admin/sso/{name}",
    summary = "Replace an SSO provider",
    access = Permission(MANAGE),
    audit = event("sso.update", "sso_provider").id_from("name"),
    rate = Write,
    tag = "sso",
    request_body = ProviderInput,
    responses((status = 200, description = "Saved (secrets never shown)", body = ProviderView)))]
async fn replace_provider(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: Json<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.authenticated()?;
    let input = body.into_inner();
    if input.name != *path {
        return Err(SsoError::InvalidInput(
            "the body's name must be the provider's name in the path".to_owned(),
        )
        .into());
    }
    let view = admin::save(&state, &context, principal, input, true).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[route(
    delete, "/v1/admin/sso/{name}",
    summary = "Delete an SSO provider",
    access = Permission(MANAGE),
    audit = event("sso.delete", "sso_provider").id_from("name"),
    rate = Write,
    tag = "sso",
    responses((status = 204, description = "Deleted")))]
async fn delete_provider(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin::delete(&state, &context, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DiscoverRequest {
    email: String,
}

#[route(
    post, "/v1/auth/sso/discover",
    summary = "Find the SSO provider for an email address",
    access = Public,
    audit = event("auth.sso_discover", "sso_provider"),
    rate = Write,
    tag = "auth",
    request_body = DiscoverRequest,
    responses((status = 200, description = "The provider for an address's domain, if any", body = super::discovery::Discovery)))]
async fn discover(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<DiscoverRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|error| ApiError::bad_request("invalid_email", error.to_string()))?;
    Ok(HttpResponse::Ok().json(discovery::discover(&state, &context, &email).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StartQuery {
    /// An address the IdP may fill in (OIDC `login_hint`).
    login_hint: Option<String>,
    /// An application's return: one of the tenant's allowed redirect URIs
    /// (`/v1/settings/sso-redirects`). With it, the sign-in ends there with a one-time `code`
    /// for `POST /v1/auth/sso/token`; without it, the callback answers the tokens.
    redirect_uri: Option<String>,
    /// With `redirect_uri`: base64url(SHA-256(code_verifier)).
    code_challenge: Option<String>,
    /// With `redirect_uri`: `S256`.
    code_challenge_method: Option<String>,
    /// With `redirect_uri`: the application's own value, returned with the code.
    state: Option<String>,
}

/// Sends the browser to the provider (302).
#[route(
    get, "/v1/auth/sso/{name}/start",
    access = Public,
    rate = Read,
    tag = "auth",
    params(StartQuery),
    responses((status = 302, description = "Redirect to the identity provider"), (status = 200, description = "A SAML identity provider that takes requests only by HTTP-POST: a page whose form the browser posts to it", content_type = "text/html"), (status = 400, description = "`invalid_app_return`: a redirect URI the tenant does not allow, or a missing or non-S256 PKCE challenge")))]
async fn start_sign_in(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    let provider = oauth::enabled_provider(&state, &context, &path).await?;
    let login_hint = query
        .login_hint
        .as_deref()
        .filter(|hint| hint.len() <= 254 && !hint.chars().any(char::is_control));
    let app = handoff::AppStart {
        redirect_uri: query.redirect_uri.as_deref(),
        code_challenge: query.code_challenge.as_deref(),
        code_challenge_method: query.code_challenge_method.as_deref(),
        state: query.state.as_deref(),
    };
    let destination = match handoff::app_return(&state, &context, app).await? {
        Some(app) => Destination::App(app),
        None => Destination::Tokens,
    };
    let departure = match &provider.settings.provider {
        ProviderKind::Saml(_) => saml::start(&state, &context, &provider, &destination).await?,
        _ => Departure::Redirect(
            oauth::start(&state, &context, &provider, login_hint, &destination).await?,
        ),
    };
    Ok(departure.response(&[]))
}

#[route(
    get, "/v1/auth/saml/{name}/login",
    summary = "Start a SAML sign-in",
    access = Public,
    rate = Read,
    tag = "auth",
    params(StartQuery),
    responses((status = 302, description = "Redirect to the SAML identity provider"), (status = 200, description = "An identity provider that takes requests only by HTTP-POST: a page whose form the browser posts to it", content_type = "text/html")))]
async fn start_saml_sign_in(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    start_sign_in(context, state, path, query).await
}

#[route(
    get, "/v1/auth/sso/{name}/callback",
    summary = "OIDC/OAuth2 callback",
    access = Public,
    audit = event("auth.sso_login", "sso_provider").id_from("name"),
    rate = Read,
    tag = "auth",
    params(oauth::CallbackQuery),
    responses((status = 200, description = "Signed in: access and refresh tokens", body = TokenResponse)))]
async fn oauth_callback(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    query: web::Query<oauth::CallbackQuery>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let answer = async {
        // Enabled, or an admin's test of it (checked with the transaction, `oauth::callback`).
        let provider = oauth::any_provider(&state, &context, &path).await?;
        if matches!(provider.settings.provider, ProviderKind::Saml(_)) {
            return Err(SsoError::ProviderNotFound.into());
        }
        let outcome = oauth::callback(
            &state,
            &context,
            &provider,
            query.into_inner(),
            client(&context),
            crate::console::sso::browser_digest(&request).as_deref(),
        )
        .await?;
        finish(&state, &context, outcome).await
    }
    .await;
    // A person's browser lands here: a refusal is a page for it, JSON for an API client.
    answer.or_else(|error| shared::console::page_for_browser(&request, error))
}

#[route(
    get, "/v1/auth/saml/{name}/metadata",
    summary = "SAML service-provider metadata",
    access = Public,
    rate = Read,
    tag = "auth",
    responses((status = 200, description = "The service provider's SAML metadata (XML)", content_type = "application/samlmetadata+xml", body = String)))]
async fn saml_metadata(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Also before the provider is enabled: its set-up pastes this into the IdP.
    let provider = oauth::any_provider(&state, &context, &path).await?;
    let xml = saml::metadata(&state, &context, &provider).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .body(xml))
}

#[route(
    get, "/v1/auth/sso/{name}/jwks",
    summary = "The public key of a private_key_jwt provider",
    access = Public,
    rate = Read,
    tag = "auth",
    responses((status = 200, description = "A JWKS with the RSA key our token requests to this provider's IdP are signed with (provider setting token_endpoint_auth = private_key_jwt)", body = Object)))]
async fn client_jwks(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Also before the provider is enabled: its set-up registers this key at the IdP.
    let provider = oauth::any_provider(&state, &context, &path).await?;
    let jwks = super::client_key::published_jwks(&state, &context, &provider).await?;
    Ok(HttpResponse::Ok().json(jwks))
}

/// The form an identity provider's page posts to the ACS (SAML HTTP-POST binding); other
/// fields are ignored. Describes the body, which is read as it comes.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AcsForm {
    /// The IdP's `<samlp:Response>`, base64.
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    /// What the sign-in's start sent along, returned as is.
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// The ACS takes the IdP's auto-submitted form (`application/x-www-form-urlencoded`).
#[route(
    post, "/v1/auth/saml/{name}/acs",
    access = Public,
    audit = event("auth.sso_login", "sso_provider").id_from("name"),
    rate = Write,
    tag = "auth",
    request_body(content = AcsForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Signed in: access and refresh tokens", body = TokenResponse)))]
async fn saml_acs(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: web::Bytes,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let answer = async {
        // Enabled, or an admin's test of it (checked with the transaction, `saml::acs`).
        let provider = oauth::any_provider(&state, &context, &path).await?;
        let mut saml_response = None;
        let mut relay_state = None;
        for (key, value) in url::form_urlencoded::parse(&body) {
            match key.as_ref() {
                "SAMLResponse" => saml_response = Some(value.into_owned()),
                "RelayState" => relay_state = Some(value.into_owned()),
                _ => {}
            }
        }
        let saml_response = saml_response
            .ok_or_else(|| SsoError::InvalidInput("the form has no SAMLResponse".to_owned()))?;
        let outcome = saml::acs(
            &state,
            &context,
            &provider,
            saml::AcsForm {
                saml_response,
                relay_state,
            },
            client(&context),
            crate::console::sso::browser_digest(&request).as_deref(),
        )
        .await?;
        finish(&state, &context, outcome).await
    }
    .await;
    // The IdP's page posts from a person's browser: a refusal is a page for it.
    answer.or_else(|error| shared::console::page_for_browser(&request, error))
}

#[route(
    post, "/v1/auth/sso/token",
    summary = "Exchange an SSO sign-in's one-time code for tokens",
    access = Public,
    audit = event("auth.sso_code_exchange", "session"),
    rate = Auth,
    tag = "auth",
    request_body = handoff::CodeExchange,
    responses((status = 400, description = "`invalid_grant`: the code is unknown, expired (60 s), already used, or the verifier or redirect URI does not match (the code is spent either way)"), (status = 403, description = "`account_disabled`"), (status = 200, description = "Signed in: access and refresh tokens", body = TokenResponse)))]
async fn exchange_code(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<handoff::CodeExchange>,
) -> Result<HttpResponse, ApiError> {
    let signed_in = handoff::exchange(&state, &context, &body, client(&context)).await?;
    Ok(tokens(signed_in))
}

#[route(
    get, "/v1/settings/sso-redirects",
    summary = "Get the redirect URIs applications' SSO sign-ins may return to",
    access = Permission(crate::settings::MANAGE),
    rate = Read,
    tag = "settings",
    responses((status = 200, description = "The allow-list", body = handoff::SsoRedirects)))]
async fn get_redirects(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(handoff::redirects(&state, &context).await?))
}

#[route(
    put, "/v1/settings/sso-redirects",
    summary = "Replace the redirect URIs applications' SSO sign-ins may return to",
    access = Permission(crate::settings::MANAGE),
    audit = event("settings.sso_redirects_update", "settings"),
    rate = Write,
    tag = "settings",
    request_body = handoff::SsoRedirects,
    responses((status = 400, description = "`invalid_app_return`: a URI that is not https, loopback http or a private-use scheme, has a fragment or credentials; more than 20"), (status = 200, description = "Saved (normalised, sorted)", body = handoff::SsoRedirects)))]
async fn replace_redirects(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let saved = handoff::replace_redirects(&state, &context, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(saved))
}
