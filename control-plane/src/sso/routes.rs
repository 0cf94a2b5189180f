//! `/v1/tenants/{slug}/sso`: the operator's view of a tenant's identity providers. Every
//! route is declared `access = Operator`.

use actix_web::{web, HttpResponse};
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};
use shared::sso::settings::ProviderInput;

use super::service;
use crate::context::ControlPlane;
use crate::tenants::routes::parse_slug;

pub fn routes() -> Vec<Route> {
    routes![list_providers, add_provider, remove_provider,]
}

#[route(
    get, "/v1/tenants/{slug}/sso",
    summary = "List a tenant's SSO providers",
    access = Operator,
    rate = Unlimited,
    tag = "sso",
    responses((status = 200, description = "The tenant's SSO providers (secrets never shown)", body = shared::sso::providers::ProviderList)))]
async fn list_providers(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let providers = service::list(&control, &parse_slug(&slug)?).await?;
    Ok(HttpResponse::Ok().json(shared::sso::providers::ProviderList { providers }))
}

#[route(
    post, "/v1/tenants/{slug}/sso",
    summary = "Add an SSO provider to a tenant",
    access = Operator,
    rate = Unlimited,
    tag = "sso",
    request_body = ProviderInput,
    responses((status = 201, description = "Added (secrets never shown)", body = shared::sso::providers::ProviderView)))]
async fn add_provider(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
    body: Json<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    let view = service::add(&control, &parse_slug(&slug)?, &body).await?;
    Ok(HttpResponse::Created().json(view))
}

#[route(
    delete, "/v1/tenants/{slug}/sso/{name}",
    summary = "Remove a tenant's SSO provider",
    access = Operator,
    rate = Unlimited,
    tag = "sso",
    responses((status = 204, description = "Removed")))]
async fn remove_provider(
    control: web::Data<ControlPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, name) = path.into_inner();
    service::remove(&control, &parse_slug(&slug)?, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}
