//! HTTP for SSO: the admin API (`/v1/admin/sso`, `sso:read` / `sso:manage`), discovery, and
//! the browser-facing sign-in endpoints (start, OIDC/OAuth2 callback, SAML metadata and ACS).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;

use super::admin;
use super::settings::{ProviderInput, ProviderKind};
use super::{discovery, oauth, saml, SsoError, MANAGE, READ};
use crate::authz;
use crate::identity::service::{Client, TokenResponse};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/admin/sso")
            .route(web::get().to(list_providers))
            .route(web::post().to(create_provider)),
    )
    .service(
        web::resource("/v1/admin/sso/{name}")
            .route(web::get().to(get_provider))
            .route(web::put().to(replace_provider))
            .route(web::delete().to(delete_provider)),
    )
    .route("/v1/auth/sso/discover", web::post().to(discover))
    .route("/v1/auth/sso/{name}/start", web::get().to(start_sign_in))
    .route(
        "/v1/auth/sso/{name}/callback",
        web::get().to(oauth_callback),
    )
    .route(
        "/v1/auth/saml/{name}/metadata",
        web::get().to(saml_metadata),
    )
    .route("/v1/auth/saml/{name}/login", web::get().to(start_sign_in))
    .route("/v1/auth/saml/{name}/acs", web::post().to(saml_acs));
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

async fn list_providers(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, READ).await?;
    let providers = admin::list(&state, &context).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "providers": providers })))
}

async fn get_provider(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, READ).await?;
    Ok(HttpResponse::Ok().json(admin::get(&state, &context, &path).await?))
}

async fn create_provider(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    let principal = authz::require(&state, &context, MANAGE).await?;
    let view = admin::save(&state, &context, principal, body.into_inner(), false).await?;
    Ok(HttpResponse::Created().json(view))
}

async fn replace_provider(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: web::Json<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    let principal = authz::require(&state, &context, MANAGE).await?;
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

async fn delete_provider(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authz::require(&state, &context, MANAGE).await?;
    admin::delete(&state, &context, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoverRequest {
    email: String,
}

async fn discover(
    context: RequestContext,
    state: web::Data<DataPlane>,
    body: web::Json<DiscoverRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|error| ApiError::bad_request("invalid_email", error.to_string()))?;
    Ok(HttpResponse::Ok().json(discovery::discover(&state, &context, &email).await?))
}

#[derive(Deserialize)]
struct StartQuery {
    login_hint: Option<String>,
}

/// Sends the browser to the provider (302).
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
    let url = match &provider.settings.provider {
        ProviderKind::Saml(_) => saml::start(&state, &context, &provider).await?,
        _ => oauth::start(&state, &context, &provider, login_hint).await?,
    };
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

async fn oauth_callback(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    query: web::Query<oauth::CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let provider = oauth::enabled_provider(&state, &context, &path).await?;
    if matches!(provider.settings.provider, ProviderKind::Saml(_)) {
        return Err(SsoError::ProviderNotFound.into());
    }
    let answer = oauth::callback(
        &state,
        &context,
        &provider,
        query.into_inner(),
        client(&context),
    )
    .await?;
    Ok(tokens(answer))
}

async fn saml_metadata(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = oauth::enabled_provider(&state, &context, &path).await?;
    let xml = saml::metadata(&state, &context, &provider)?;
    Ok(HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .body(xml))
}

/// The ACS takes the IdP's auto-submitted form (`application/x-www-form-urlencoded`).
async fn saml_acs(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let provider = oauth::enabled_provider(&state, &context, &path).await?;
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
    let answer = saml::acs(
        &state,
        &context,
        &provider,
        saml::AcsForm {
            saml_response,
            relay_state,
        },
        client(&context),
    )
    .await?;
    Ok(tokens(answer))
}
