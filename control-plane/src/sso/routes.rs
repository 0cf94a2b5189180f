//! `/v1/tenants/{slug}/sso`: the operator's view of a tenant's identity providers. Every
//! handler takes [`Operator`].

use actix_web::{web, HttpResponse};
use shared::error::ApiError;
use shared::sso::settings::ProviderInput;
use shared::tenant::TenantSlug;

use super::service;
use crate::context::ControlPlane;
use crate::operators::auth::Operator;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/tenants/{slug}/sso", web::get().to(list_providers))
        .route("/v1/tenants/{slug}/sso", web::post().to(add_provider))
        .route(
            "/v1/tenants/{slug}/sso/{name}",
            web::delete().to(remove_provider),
        );
}

fn parse_slug(raw: &str) -> Result<TenantSlug, ApiError> {
    TenantSlug::parse(raw).map_err(|_| {
        ApiError::not_found("tenant_not_found", format!("no tenant with slug '{raw}'"))
    })
}

async fn list_providers(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let providers = service::list(&control, &parse_slug(&slug)?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "providers": providers })))
}

async fn add_provider(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
    body: web::Json<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    let view = service::add(&control, &parse_slug(&slug)?, &body).await?;
    Ok(HttpResponse::Created().json(view))
}

async fn remove_provider(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, name) = path.into_inner();
    service::remove(&control, &parse_slug(&slug)?, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}
