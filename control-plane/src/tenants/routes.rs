//! The operator REST API for tenants, under `/v1/tenants`. Every route is declared
//! `access = Operator`: the route guard (`operators::auth::authorize`) admits only a valid
//! operator token. The lifecycle events a route declares are recorded by the service, which the
//! CLI shares.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};
use shared::tenant::{TenantSlug, TenantStatus};

use super::service::{self, CreateTenant, DomainName, QuotaPatch, TenantName, TenantPatch};
use crate::context::ControlPlane;

pub fn routes() -> Vec<Route> {
    routes![
        create_tenant,
        list_tenants,
        get_tenant,
        update_tenant,
        delete_tenant,
        retry_provisioning,
        export_tenant,
        get_quotas,
        update_quotas,
        add_domain,
        remove_domain,
    ]
}

/// The slug a `/v1/tenants/{slug}/…` path names; a path that cannot be a slug names no tenant.
pub(crate) fn parse_slug(raw: &str) -> Result<TenantSlug, ApiError> {
    TenantSlug::parse(raw).map_err(|_| {
        ApiError::not_found("tenant_not_found", format!("no tenant with slug '{raw}'"))
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "slug": "acme",
    "name": "Acme Corporation",
    "plan": "standard",
    "admin_email": "admin@acme.example"
})))]
struct CreateTenantBody {
    slug: String,
    name: Option<String>,
    plan: Option<String>,
    admin_email: Option<String>,
    /// The cluster to place the tenant on (`GET /v1/clusters`); the default when absent.
    cluster: Option<String>,
}

#[route(
    post, "/v1/tenants",
    summary = "Create a tenant",
    access = Operator,
    audit = event("tenant.create", "tenant"),
    rate = Unlimited,
    tag = "tenants",
    request_body = CreateTenantBody,
    responses((status = 409, description = "`slug_taken`: a tenant with this slug exists"), (status = 201, description = "Created and provisioned; `activation_token` when an admin email was given", body = crate::tenants::service::CreatedTenant)))]
async fn create_tenant(
    control: web::Data<ControlPlane>,
    body: Json<CreateTenantBody>,
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
        cluster: body.cluster,
    };
    let created = service::create_and_invite(&control, request).await?;
    Ok(HttpResponse::Created().json(created))
}

/// `GET /v1/tenants`'s query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// A slug prefix or part of a name (case-insensitive); empty for every tenant.
    #[serde(default)]
    q: String,
    /// The `next_after` of the previous page.
    #[serde(default)]
    after: String,
    /// Tenants per page: 1 to 1000 (default 100).
    limit: Option<i64>,
}

#[route(
    get, "/v1/tenants",
    summary = "List tenants, a page at a time",
    access = Operator,
    rate = Unlimited,
    tag = "tenants",
    params(ListQuery),
    responses((status = 400, description = "`invalid_input`: a search or `after` over 100 characters, a limit outside 1..=1000"), (status = 200, description = "A page of tenants in slug order; `next_after` names the next page", body = service::TenantPage)))]
async fn list_tenants(
    control: web::Data<ControlPlane>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100);
    let page = service::search(&control, &query.q, &query.after, limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[route(
    get, "/v1/tenants/{slug}",
    summary = "Get a tenant",
    access = Operator,
    rate = Unlimited,
    tag = "tenants",
    responses((status = 200, description = "The tenant, its quotas, domains and provisioning state", body = crate::tenants::service::TenantDetails)))]
async fn get_tenant(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let details = service::details(&control, &parse_slug(&slug)?).await?;
    Ok(HttpResponse::Ok().json(details))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTenantBody {
    name: Option<String>,
    plan: Option<String>,
    status: Option<String>,
}

#[route(
    patch, "/v1/tenants/{slug}",
    summary = "Update a tenant (name, plan, status)",
    access = Operator,
    audit = event("tenant.update", "tenant").id_from("slug"),
    rate = Unlimited,
    tag = "tenants",
    request_body = UpdateTenantBody,
    responses((status = 409, description = "`invalid_transition`: the tenant's status cannot change that way"), (status = 200, description = "Updated (the event is `tenant.suspend` or `tenant.resume` when the status changes)", body = crate::tenants::service::TenantDetails)))]
async fn update_tenant(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
    body: Json<UpdateTenantBody>,
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

#[route(
    delete, "/v1/tenants/{slug}",
    summary = "Delete a tenant",
    access = Operator,
    audit = event("tenant.delete", "tenant").id_from("slug"),
    rate = Unlimited,
    tag = "tenants",
    responses((status = 204, description = "Deleted: schema, role and catalog rows are gone")))]
async fn delete_tenant(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service::delete(&control, &parse_slug(&slug)?, None).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[route(
    post, "/v1/tenants/{slug}/provision",
    summary = "Finish or retry provisioning",
    access = Operator,
    audit = event("tenant.create", "tenant").id_from("slug"),
    rate = Unlimited,
    tag = "tenants",
    responses((status = 409, description = "`not_provisioning`: the tenant is in no state to provision (suspended, being deleted); `tenant_busy`: another provisioning of it is running"), (status = 200, description = "Provisioned (a no-op for an active tenant)", body = crate::tenants::service::RetryReport)))]
async fn retry_provisioning(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let report = service::retry_provisioning(&control, &parse_slug(&slug)?).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[route(
    get, "/v1/tenants/{slug}/export",
    summary = "Export a tenant",
    access = Operator,
    rate = Unlimited,
    tag = "tenants",
    responses((status = 200, description = "The tenant's data as JSON", body = crate::tenants::service::TenantExport)))]
async fn export_tenant(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::export(&control, &parse_slug(&slug)?).await?))
}

#[route(
    get, "/v1/tenants/{slug}/quotas",
    summary = "Get a tenant's quotas",
    access = Operator,
    rate = Unlimited,
    tag = "tenants",
    responses((status = 200, description = "The tenant's quotas", body = crate::tenants::service::QuotaView)))]
async fn get_quotas(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::quotas(&control, &parse_slug(&slug)?).await?))
}

#[route(
    patch, "/v1/tenants/{slug}/quotas",
    summary = "Change a tenant's quotas",
    access = Operator,
    audit = event("tenant.quota_update", "tenant").id_from("slug"),
    rate = Unlimited,
    tag = "tenants",
    request_body = QuotaPatch,
    responses((status = 200, description = "The quotas now", body = crate::tenants::service::QuotaView)))]
async fn update_quotas(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
    body: Json<QuotaPatch>,
) -> Result<HttpResponse, ApiError> {
    let view = service::set_quotas(&control, &parse_slug(&slug)?, &body).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DomainBody {
    domain: String,
}

#[route(
    post, "/v1/tenants/{slug}/domains",
    summary = "Register a custom domain",
    access = Operator,
    audit = event("tenant.domain_add", "tenant").id_from("slug"),
    rate = Unlimited,
    tag = "tenants",
    request_body = DomainBody,
    responses((status = 409, description = "`domain_taken`: the domain is registered already"), (status = 201, description = "Registered", body = crate::tenants::service::TenantDetails)))]
async fn add_domain(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
    body: Json<DomainBody>,
) -> Result<HttpResponse, ApiError> {
    let slug = parse_slug(&slug)?;
    let domain = DomainName::parse(&body.domain, &control.config.base_domain)?;
    service::add_domain(&control, &slug, &domain).await?;
    Ok(HttpResponse::Created().json(service::details(&control, &slug).await?))
}

#[route(
    delete, "/v1/tenants/{slug}/domains/{domain}",
    summary = "Remove a custom domain",
    access = Operator,
    audit = event("tenant.domain_remove", "tenant").id_from("slug"),
    rate = Unlimited,
    tag = "tenants",
    responses((status = 204, description = "Removed")))]
async fn remove_domain(
    control: web::Data<ControlPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (slug, domain) = path.into_inner();
    let slug = parse_slug(&slug)?;
    let domain = DomainName::parse(&domain, &control.config.base_domain)?;
    service::remove_domain(&control, &slug, &domain).await?;
    Ok(HttpResponse::NoContent().finish())
}
