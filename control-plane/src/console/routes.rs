//! The operator console's pages. Each calls the service its REST route calls.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::console::cookies::{self, CookiePolicy, SESSION_COOKIE, SESSION_PREFIX};
use shared::console::{refused, render, safe_next, see_other, Csrf, Fields};
use shared::email::Email;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};
use shared::tenant::{Tenant, TenantSlug, TenantStatus};
use zeroize::Zeroizing;

use super::Frame;
use crate::context::ControlPlane;
use crate::operators::auth::Operator;
use crate::tenants::service::{self as tenants, CreateTenant};

pub fn routes() -> Vec<Route> {
    let mut routes = routes![
        sign_in_page,
        sign_in,
        sign_out,
        tenants_page,
        new_tenant_page,
        create_tenant,
        tenant_page,
        set_status,
        set_quotas,
        verify_audit,
        delete_tenant,
        mfa_page,
        mfa_setup,
        mfa_enable,
    ];
    routes.extend(shared::console::routes());
    routes.extend(super::templates_routes::routes());
    routes
}

pub(super) fn frame(csrf: &Csrf, operator: Option<&Operator>) -> Frame {
    Frame {
        csrf: csrf.0.clone(),
        operator: operator.map(|operator| operator.token_name.clone()),
    }
}

fn policy(control: &ControlPlane) -> CookiePolicy {
    CookiePolicy::for_scheme(&control.config.public_scheme)
}

fn slug_of(raw: &str) -> Result<TenantSlug, ApiError> {
    crate::tenants::routes::parse_slug(raw)
}

// --- Signing in -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    frame: Frame,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NextQuery {
    next: Option<String>,
}

#[route(get, "/console/sign-in", access = Public, rate = Unlimited)]
async fn sign_in_page(csrf: Csrf, query: web::Query<NextQuery>) -> Result<HttpResponse, ApiError> {
    let page = SignInPage {
        frame: frame(&csrf, None),
        email: String::new(),
        next: safe_next(query.next.as_deref()),
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[route(post, "/console/sign-in",
    access = Public,
    audit = event("operator.sign_in", "operator"),
    rate = Unlimited)]
async fn sign_in(
    control: web::Data<ControlPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let next = safe_next(Some(fields.one("next")));
    let password = Zeroizing::new(fields.one("password").to_owned());
    match crate::operators::accounts::sign_in(
        &control,
        fields.one("email").trim(),
        password,
        fields.one("code"),
    )
    .await?
    {
        Some(secret) => {
            let answer = shared::console::signed_in(&policy(&control), &next, &secret)?;
            tracing::info!(
                operator = fields.one("email"),
                "operator signed in to the console"
            );
            Ok(answer)
        }
        None => {
            let page = SignInPage {
                frame: frame(&csrf, None),
                email: fields.one("email").to_owned(),
                next,
                error: Some("invalid email, password or two-factor code".to_owned()),
            };
            render(StatusCode::UNAUTHORIZED, &page)
        }
    }
}

#[route(post, "/console/sign-out",
    access = Operator,
    audit = event("operator.sign_out", "operator"),
    rate = Unlimited)]
async fn sign_out(
    control: web::Data<ControlPlane>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Some(secret) = cookies::read(&request, SESSION_COOKIE, SESSION_PREFIX) {
        crate::operators::accounts::sign_out(&control, &secret).await?;
    }
    shared::console::signed_out(&policy(&control), "/console/sign-in")
}

// --- Tenants ----------------------------------------------------------------------------------

/// Tenants a page of the list shows.
pub const TENANTS_PER_PAGE: i64 = 50;

#[derive(Template)]
#[template(path = "console/tenants.html")]
struct TenantsPage {
    frame: Frame,
    query: String,
    tenants: Vec<Tenant>,
    next_page: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    q: String,
    after: String,
}

#[route(get, "/console", access = Operator, rate = Unlimited)]
async fn tenants_page(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let search = query.q.trim().to_lowercase();
    let page = tenants::search(&control, &search, &query.after, TENANTS_PER_PAGE).await?;
    let next_page = page.next_after.map(|after| {
        format!(
            "/console?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", &search)
                .append_pair("after", &after)
                .finish()
        )
    });
    let tenants = page.tenants;
    render(
        StatusCode::OK,
        &TenantsPage {
            frame: frame(&csrf, Some(&operator)),
            query: search,
            tenants,
            next_page,
        },
    )
}

#[derive(Template)]
#[template(path = "console/new_tenant.html")]
struct NewTenantPage {
    frame: Frame,
    typed: Fields,
    error: Option<String>,
    /// Clusters that take new tenants: name, whether it is the default.
    clusters: Vec<(String, bool)>,
}

#[route(get, "/console/tenants/new", access = Operator, rate = Unlimited)]
async fn new_tenant_page(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    let page = NewTenantPage {
        frame: frame(&csrf, Some(&operator)),
        typed: Fields::from_pairs(&[]),
        error: None,
        clusters: crate::clusters::service::placeable(&control).await?,
    };
    render(StatusCode::OK, &page)
}

#[route(post, "/console/tenants",
    access = Operator,
    audit = event("tenant.create", "tenant"),
    rate = Unlimited)]
async fn create_tenant(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let some = |name: &str| Some(fields.one(name).trim()).filter(|value| !value.is_empty());
    let request = (|| -> Result<CreateTenant, ApiError> {
        Ok(CreateTenant {
            slug: TenantSlug::parse(fields.one("slug").trim())
                .map_err(crate::error::ControlError::from)?,
            name: some("name")
                .map(crate::tenants::service::TenantName::parse)
                .transpose()?,
            plan: some("plan").map(str::to_owned),
            admin_email: some("admin_email")
                .map(Email::parse)
                .transpose()
                .map_err(|_| {
                    ApiError::bad_request("invalid_input", "the admin's address is not valid")
                })?,
            cluster: some("cluster").map(str::to_owned),
        })
    })();
    let created = match request {
        Ok(request) => tenants::create_and_invite(&control, request)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match created {
        Ok(created) => Ok(see_other(&format!(
            "/console/tenants/{}",
            created.details.tenant.slug
        ))),
        Err(error) => {
            let (status, message) = refused(error)?;
            let page = NewTenantPage {
                frame: frame(&csrf, Some(&operator)),
                typed: fields,
                error: Some(message),
                clusters: crate::clusters::service::placeable(&control).await?,
            };
            render(status, &page)
        }
    }
}

/// One quota on the tenant page: its name, its override (empty: the plan's) and what is in
/// force.
struct QuotaRow {
    field: &'static str,
    label: &'static str,
    overridden: String,
    effective: String,
}

#[derive(Template)]
#[template(path = "console/tenant.html")]
struct TenantPage {
    frame: Frame,
    details: tenants::TenantDetails,
    quotas: Vec<QuotaRow>,
    plan: String,
    active: bool,
    suspended: bool,
    error: Option<String>,
    /// The tenant's identity providers: name, kind, shown as, enabled, domains.
    sso: Vec<(String, &'static str, String, bool, String)>,
    /// The outcome of "verify the audit chain", on its answer.
    verification: Option<shared::events::chain::Verification>,
}

async fn tenant_answer(
    control: &ControlPlane,
    operator: &Operator,
    csrf: &Csrf,
    slug: &TenantSlug,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let page = tenant_page_of(control, operator, csrf, slug, error).await?;
    render(status, &page)
}

async fn tenant_page_of(
    control: &ControlPlane,
    operator: &Operator,
    csrf: &Csrf,
    slug: &TenantSlug,
    error: Option<String>,
) -> Result<TenantPage, ApiError> {
    let details = tenants::details(control, slug).await?;
    // A tenant still provisioning (or failed) has no schema to read providers from yet.
    let sso = if matches!(
        details.tenant.status,
        TenantStatus::Active | TenantStatus::Suspended
    ) {
        crate::sso::service::list(control, slug)
            .await?
            .into_iter()
            .map(|provider| {
                let domains = provider
                    .domains
                    .iter()
                    .map(|binding| binding.domain.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    provider.name,
                    provider.kind,
                    provider.display_name,
                    provider.enabled,
                    domains,
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let view = tenants::quotas(control, slug).await?;
    let value = |value: Option<i64>| value.map(|value| value.to_string()).unwrap_or_default();
    let effective = view.effective.as_ref();
    let overrides = &view.overrides;
    let quotas = vec![
        QuotaRow {
            field: "max_users",
            label: "Users",
            overridden: value(overrides.max_users),
            effective: value(effective.map(|quotas| quotas.max_users)),
        },
        QuotaRow {
            field: "max_api_keys",
            label: "API keys",
            overridden: value(overrides.max_api_keys),
            effective: value(effective.map(|quotas| quotas.max_api_keys)),
        },
        QuotaRow {
            field: "max_storage_bytes",
            label: "Storage (bytes)",
            overridden: value(overrides.max_storage_bytes),
            effective: value(effective.map(|quotas| quotas.max_storage_bytes)),
        },
        QuotaRow {
            field: "requests_per_second",
            label: "Requests per second",
            overridden: value(overrides.requests_per_second.map(i64::from)),
            effective: value(effective.map(|quotas| i64::from(quotas.requests_per_second))),
        },
        QuotaRow {
            field: "burst",
            label: "Burst",
            overridden: value(overrides.burst.map(i64::from)),
            effective: value(effective.map(|quotas| i64::from(quotas.burst))),
        },
        QuotaRow {
            field: "events_per_day",
            label: "Telemetry events per day",
            overridden: value(overrides.events_per_day),
            effective: value(effective.map(|quotas| quotas.events_per_day)),
        },
    ];
    Ok(TenantPage {
        frame: frame(csrf, Some(operator)),
        active: details.tenant.status == TenantStatus::Active,
        suspended: details.tenant.status == TenantStatus::Suspended,
        plan: view.plan,
        details,
        quotas,
        error,
        sso,
        verification: None,
    })
}

/// After a change to a tenant: back to its page, or its page with what the service refused.
async fn tenant_changed<T>(
    control: &ControlPlane,
    operator: &Operator,
    csrf: &Csrf,
    slug: &TenantSlug,
    changed: Result<T, ApiError>,
) -> Result<HttpResponse, ApiError> {
    match changed {
        Ok(_) => Ok(see_other(&format!("/console/tenants/{slug}"))),
        Err(error) => {
            let (status, message) = refused(error)?;
            tenant_answer(control, operator, csrf, slug, status, Some(message)).await
        }
    }
}

#[route(get, "/console/tenants/{slug}", access = Operator, rate = Unlimited)]
async fn tenant_page(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = slug_of(&path)?;
    tenant_answer(&control, &operator, &csrf, &slug, StatusCode::OK, None).await
}

#[route(post, "/console/tenants/{slug}/status",
    access = Operator,
    audit = event("tenant.update", "tenant").id_from("slug"),
    rate = Unlimited)]
async fn set_status(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let slug = slug_of(&path)?;
    let changed = match Fields::parse(&body).one("status") {
        "suspended" => tenants::suspend(&control, &slug).await,
        "active" => tenants::resume(&control, &slug).await,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_input",
                "the status is `active` or `suspended`",
            ))
        }
    };
    tenant_changed(
        &control,
        &operator,
        &csrf,
        &slug,
        changed.map_err(ApiError::from),
    )
    .await
}

#[route(post, "/console/tenants/{slug}/quotas",
    access = Operator,
    audit = event("tenant.quota_update", "tenant").id_from("slug"),
    rate = Unlimited)]
async fn set_quotas(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let slug = slug_of(&path)?;
    let fields = Fields::parse(&body);
    let mut patch = serde_json::Map::new();
    for field in [
        "max_users",
        "max_api_keys",
        "max_storage_bytes",
        "requests_per_second",
        "burst",
        "events_per_day",
    ] {
        let text = fields.one(field).trim();
        let value = match text {
            "" => Value::Null,
            text => match text.parse::<i64>() {
                Ok(number) => json!(number),
                Err(_) => {
                    let message =
                        format!("{field} must be a whole number, or empty for the plan's");
                    return tenant_answer(
                        &control,
                        &operator,
                        &csrf,
                        &slug,
                        StatusCode::BAD_REQUEST,
                        Some(message),
                    )
                    .await;
                }
            },
        };
        patch.insert(field.to_owned(), value);
    }
    let saved = match serde_json::from_value(Value::Object(patch)) {
        Ok(patch) => tenants::set_quotas(&control, &slug, &patch)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(ApiError::bad_request("invalid_input", error.to_string())),
    };
    tenant_changed(&control, &operator, &csrf, &slug, saved).await
}

/// Checks the tenant's audit log against its chains (as `control-plane audit verify`): the
/// tenant's page with the outcome.
#[route(post, "/console/tenants/{slug}/audit/verify",
    access = Operator,
    audit = event("audit.verify", "tenant").id_from("slug"),
    rate = Unlimited)]
async fn verify_audit(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let slug = slug_of(&path)?;
    let tenant = tenants::get(&control, &slug).await?;
    let verification =
        crate::audit::verify(&control, &tenant)
            .await
            .map_err(|error| match error {
                crate::audit::AuditError::ClickHouse(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_unavailable",
                    "the audit log cannot be read right now; try again",
                ),
                other => ApiError::internal(&other),
            })?;
    let mut page = tenant_page_of(&control, &operator, &csrf, &slug, None).await?;
    page.verification = Some(verification);
    render(StatusCode::OK, &page)
}

#[route(post, "/console/tenants/{slug}/delete",
    access = Operator,
    audit = event("tenant.delete", "tenant").id_from("slug"),
    rate = Unlimited)]
async fn delete_tenant(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let slug = slug_of(&path)?;
    if Fields::parse(&body).one("confirm").trim() != slug.as_str() {
        let message = format!("type the tenant's slug, {slug}, to delete it");
        return tenant_answer(
            &control,
            &operator,
            &csrf,
            &slug,
            StatusCode::BAD_REQUEST,
            Some(message),
        )
        .await;
    }
    tenants::delete(&control, &slug, None).await?;
    Ok(see_other("/console"))
}

// --- The operator's two-factor ------------------------------------------------------------------

/// The signed-in operator's address (`Operator` of a console session: `account <email>`).
fn account_email(operator: &Operator) -> Result<&str, ApiError> {
    operator
        .token_name
        .strip_prefix("account ")
        .ok_or_else(|| ApiError::forbidden("account_required", "sign in with an operator account"))
}

#[derive(Template)]
#[template(path = "console/mfa.html")]
struct MfaPage {
    frame: Frame,
    enabled: bool,
    /// The pending secret's enrolment, right after set-up.
    setup: Option<(String, String)>,
    error: Option<String>,
}

#[route(get, "/console/mfa", access = Operator, rate = Unlimited)]
async fn mfa_page(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    let enabled =
        crate::operators::accounts::totp_enabled(&control, account_email(&operator)?).await?;
    let page = MfaPage {
        frame: frame(&csrf, Some(&operator)),
        enabled,
        setup: None,
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[route(post, "/console/mfa/setup",
    access = Operator,
    audit = event("operator.totp_setup", "operator"),
    rate = Unlimited)]
async fn mfa_setup(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    let enrolment =
        crate::operators::accounts::setup_totp(&control, account_email(&operator)?).await?;
    use base64::Engine as _;
    let qr = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(enrolment.qr_svg.as_bytes())
    );
    let page = MfaPage {
        frame: frame(&csrf, Some(&operator)),
        enabled: false,
        setup: Some((enrolment.secret.to_string(), qr)),
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[route(post, "/console/mfa/enable",
    access = Operator,
    audit = event("operator.totp_enable", "operator"),
    rate = Unlimited)]
async fn mfa_enable(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let email = account_email(&operator)?;
    let code = Fields::parse(&body).one("code").to_owned();
    if crate::operators::accounts::enable_totp(&control, email, &code).await? {
        return Ok(see_other("/console/mfa"));
    }
    let page = MfaPage {
        frame: frame(&csrf, Some(&operator)),
        enabled: false,
        setup: None,
        error: Some("that code did not work; set up again to see the key".to_owned()),
    };
    render(StatusCode::BAD_REQUEST, &page)
}
