//! The operator REST API for tenants, under `/v1/tenants`. Every handler takes [`Operator`],
//! so none can be reached without a valid operator token.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;
use shared::tenant::{TenantSlug, TenantStatus};

use super::service::{self, CreateTenant, DomainName, QuotaPatch, TenantName, TenantPatch};
use crate::context::ControlPlane;
use crate::operators::auth::Operator;
use crate::provisioning::ProvisionOptions;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/tenants")
            .route("", web::post().to(create_tenant))
            .route("", web::get().to(list_tenants))
            .route("/{slug}", web::get().to(get_tenant))
            .route("/{slug}", web::patch().to(update_tenant))
            .route("/{slug}", web::delete().to(delete_tenant))
            .route("/{slug}/provision", web::post().to(retry_provisioning))
            .route("/{slug}/export", web::get().to(export_tenant))
            .route("/{slug}/quotas", web::get().to(get_quotas))
            .route("/{slug}/quotas", web::patch().to(update_quotas))
            .route("/{slug}/domains", web::post().to(add_domain))
            .route("/{slug}/domains/{domain}", web::delete().to(remove_domain)),
    );
}

fn parse_slug(raw: &str) -> Result<TenantSlug, ApiError> {
    // A path that cannot be a slug names no tenant.
    TenantSlug::parse(raw).map_err(|_| {
        ApiError::not_found("tenant_not_found", format!("no tenant with slug '{raw}'"))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenantBody {
    slug: String,
    name: Option<String>,
    plan: Option<String>,
    admin_email: Option<String>,
}

async fn create_tenant(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    body: web::Json<CreateTenantBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request = CreateTenant {
        slug: TenantSlug::parse(&body.slug).map_err(crate::error::ControlError::from)?,
        name: body.name.as_deref().map(TenantName::parse).transpose()?,
        plan: body.plan,
        admin_email: body
            .admin_email
            .as_deref()
            .map(Email::parse)
            .transpose()
            .map_err(|_| {
                ApiError::bad_request("invalid_input", "admin_email is not a valid email address")
            })?,
    };
    let admin_email = request.admin_email.clone();
    let tenant = service::create(&control, request, ProvisionOptions::default()).await?;
    let activation_token = match &admin_email {
        Some(email) => Some(service::issue_activation_token(&control, &tenant, email).await?),
        None => None,
    };
    let details = service::details(&control, &tenant.slug).await?;
    let mut body = serde_json::to_value(&details).map_err(|error| ApiError::internal(&error))?;
    if let (Some(token), Some(object)) = (&activation_token, body.as_object_mut()) {
        object.insert("activation_token".to_owned(), token.as_str().into());
    }
    Ok(HttpResponse::Created().json(body))
}

async fn list_tenants(
    _operator: Operator,
    control: web::Data<ControlPlane>,
) -> Result<HttpResponse, ApiError> {
    let tenants = service::list(&control).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tenants": tenants })))
}

async fn get_tenant(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let details = service::details(&control, &parse_slug(&slug)?).await?;
    Ok(HttpResponse::Ok().json(details))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateTenantBody {
    name: Option<String>,
    plan: Option<String>,
    status: Option<String>,
}

async fn update_tenant(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
    body: web::Json<UpdateTenantBody>,
) -> Result<HttpResponse, ApiError> {
    let slug = parse_slug(&slug)?;
    let body = body.into_inner();
    let status = match body.status.as_deref() {
        None => None,
        Some(raw) => Some(match TenantStatus::parse(raw) {
            Some(status @ (TenantStatus::Active | TenantStatus::Suspended)) => status,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_input",
                    "status can only be set to 'active' or 'suspended'",
                ))
            }
        }),
    };
    let patch = TenantPatch {
        name: body.name.as_deref().map(TenantName::parse).transpose()?,
        plan: body.plan,
        status,
    };
    service::update(&control, &slug, patch).await?;
    Ok(HttpResponse::Ok().json(service::details(&control, &slug).await?))
}

async fn delete_tenant(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service::delete(&control, &parse_slug(&slug)?, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn retry_provisioning(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let report = service::retry_provisioning(&control, &parse_slug(&slug)?).await?;
    Ok(HttpResponse::Ok().json(report))
}

async fn export_tenant(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::export(&control, &parse_slug(&slug)?).await?))
}

async fn get_quotas(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::quotas(&control, &parse_slug(&slug)?).await?))
}

async fn update_quotas(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
    body: web::Json<QuotaPatch>,
) -> Result<HttpResponse, ApiError> {
    let view = service::set_quotas(&control, &parse_slug(&slug)?, &body).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainBody {
    domain: String,
}

async fn add_domain(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
    body: web::Json<DomainBody>,
) -> Result<HttpResponse, ApiError> {
    let slug = parse_slug(&slug)?;
    let domain = DomainName::parse(&body.domain, &control.config.base_domain)?;
    service::add_domain(&control, &slug, &domain).await?;
    Ok(HttpResponse::Created().json(service::details(&control, &slug).await?))
}

async fn remove_domain(
    _operator: Operator,
    control: web::Data<ControlPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, domain) = path.into_inner();
    let slug = parse_slug(&slug)?;
    let domain = DomainName::parse(&domain, &control.config.base_domain)?;
    service::remove_domain(&control, &slug, &domain).await?;
    Ok(HttpResponse::NoContent().finish())
}
