//! The tenant console's admin pages: users (invite, disable, enable, roles), API keys
//! (create with a one-time reveal, rotate with grace, revoke, last used) and the audit log
//! (filters, pages, CSV export). Each is declared with the permission its API route needs and
//! calls the same service, so the console can do nothing the API would refuse.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};
use time::OffsetDateTime;
use uuid::Uuid;

use super::page::{refused, render, Fields, Frame};
use crate::api_keys::input::{GracePeriod, KeyName, Scopes};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use crate::users::service::{self as users, NewInvitation, PageRequest, RoleAssignment};
use shared::console::{see_other, Csrf};

pub fn routes() -> Vec<Route> {
    routes![
        users_page,
        invite_user,
        user_page,
        set_user_roles,
        disable_user,
        enable_user,
        api_keys_page,
        create_api_key,
        rotate_api_key,
        revoke_api_key,
        audit_page,
        audit_export,
    ]
}

fn when(at: Option<OffsetDateTime>) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.and_then(|at| at.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_default()
}

fn not_found(path: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(path).map_err(|_| ApiError::not_found("not_found", "no such item"))
}

// --- Users ----------------------------------------------------------------------------------

/// A user as the list shows them.
struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    status: String,
    roles: String,
    mfa: bool,
}

#[derive(Template)]
#[template(path = "console/admin_users.html")]
struct UsersPage {
    frame: Frame,
    users: Vec<UserRow>,
    next: Option<Uuid>,
    roles: Vec<String>,
    notice: Option<String>,
    error: Option<String>,
    invite_email: String,
    invite_name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsersQuery {
    after: Option<String>,
}

const USERS_PER_PAGE: i64 = 50;

async fn users_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    after: Option<Uuid>,
    outcome: (StatusCode, Option<String>, Option<String>),
    typed: (String, String),
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let (frame, _) = Frame::signed_in(state, context, csrf, principal).await?;
    let page = users::list(
        state,
        context,
        &PageRequest {
            status: None,
            after,
            limit: USERS_PER_PAGE,
        },
    )
    .await?;
    let roles = super::page::role_names(state, context).await?;
    let (status, notice, error) = outcome;
    let users = page
        .users
        .into_iter()
        .map(|user| UserRow {
            id: user.id,
            email: user.email.as_str().to_owned(),
            name: user.display_name,
            status: user.status,
            roles: user.roles.join(", "),
            mfa: user.mfa_enabled,
        })
        .collect();
    render(
        status,
        &UsersPage {
            frame,
            users,
            next: page.next_cursor,
            roles,
            notice,
            error,
            invite_email: typed.0,
            invite_name: typed.1,
        },
    )
}

#[route(get, "/console/admin/users", access = Permission(crate::users::READ), rate = Read)]
async fn users_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = query
        .after
        .as_deref()
        .map(|after| {
            Uuid::parse_str(after).map_err(|_| ApiError::bad_request("invalid_cursor", "bad page"))
        })
        .transpose()?;
    let outcome = (StatusCode::OK, None, None);
    users_answer(&state, &context, &csrf, after, outcome, Default::default()).await
}

#[route(post, "/console/admin/users/invite",
    access = Permission(crate::users::MANAGE),
    audit = event("users.invite", "user"),
    rate = Write)]
async fn invite_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let caller = context.authenticated()?;
    let typed = (
        fields.one("email").to_owned(),
        fields.one("display_name").to_owned(),
    );
    let invited = async {
        let email = Email::parse(fields.one("email").trim())
            .map_err(|_| ApiError::bad_request("invalid_email", "enter a valid email address"))?;
        let invitation = NewInvitation {
            email,
            display_name: users::display_name(Some(fields.one("display_name")))?,
            roles: fields.all("role"),
        };
        users::invite(&state, &context, caller, invitation)
            .await
            .map_err(ApiError::from)
    }
    .await;
    match invited {
        Ok(user) => {
            let notice = format!("Invited {}: the invitation mail is on its way.", user.email);
            let outcome = (StatusCode::CREATED, Some(notice), None);
            users_answer(&state, &context, &csrf, None, outcome, Default::default()).await
        }
        Err(error) => {
            let (status, message) = refused(error)?;
            users_answer(
                &state,
                &context,
                &csrf,
                None,
                (status, None, Some(message)),
                typed,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "console/admin_user.html")]
struct UserPage {
    frame: Frame,
    user: UserRow,
    roles: Vec<(String, bool)>,
    error: Option<String>,
}

async fn user_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    user_id: Uuid,
    outcome: (StatusCode, Option<String>),
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let (frame, _) = Frame::signed_in(state, context, csrf, principal).await?;
    let user = users::get(state, context, user_id).await?;
    let roles = crate::roles::service::list(state, context)
        .await?
        .into_iter()
        .map(|role| {
            let held = user.roles.contains(&role.name);
            (role.name, held)
        })
        .collect();
    let user = UserRow {
        id: user.id,
        email: user.email.as_str().to_owned(),
        name: user.display_name,
        status: user.status,
        roles: user.roles.join(", "),
        mfa: user.mfa_enabled,
    };
    let (status, error) = outcome;
    render(
        status,
        &UserPage {
            frame,
            user,
            roles,
            error,
        },
    )
}

/// After a change to a user: back to their page, or their page with what the service refused.
async fn user_changed<T>(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    user_id: Uuid,
    changed: Result<T, crate::users::UsersError>,
) -> Result<HttpResponse, ApiError> {
    match changed {
        Ok(_) => Ok(see_other(&format!("/console/admin/users/{user_id}"))),
        Err(error) => {
            let (status, message) = refused(error)?;
            user_answer(state, context, csrf, user_id, (status, Some(message))).await
        }
    }
}

#[route(get, "/console/admin/users/{id}", access = Permission(crate::users::READ), rate = Read)]
async fn user_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = not_found(&path)?;
    user_answer(&state, &context, &csrf, user_id, (StatusCode::OK, None)).await
}

#[route(post, "/console/admin/users/{id}/roles",
    access = Permission(crate::users::MANAGE),
    audit = event("users.set_roles", "user").id_from("id"),
    rate = Write)]
async fn set_user_roles(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let user_id = not_found(&path)?;
    let caller = context.authenticated()?;
    let assignments = Fields::parse(&body)
        .all("role")
        .into_iter()
        .map(|role| RoleAssignment {
            role,
            conditions: None,
        })
        .collect();
    let changed = users::set_roles(&state, &context, caller, user_id, assignments).await;
    user_changed(&state, &context, &csrf, user_id, changed).await
}

#[route(post, "/console/admin/users/{id}/disable",
    access = Permission(crate::users::MANAGE),
    audit = event("users.disable", "user").id_from("id"),
    rate = Write)]
async fn disable_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = not_found(&path)?;
    let caller = context.authenticated()?;
    let changed = users::disable(&state, &context, caller, user_id).await;
    user_changed(&state, &context, &csrf, user_id, changed).await
}

#[route(post, "/console/admin/users/{id}/enable",
    access = Permission(crate::users::MANAGE),
    audit = event("users.enable", "user").id_from("id"),
    rate = Write)]
async fn enable_user(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = not_found(&path)?;
    users::enable(&state, &context, context.authenticated()?, user_id).await?;
    Ok(see_other(&format!("/console/admin/users/{user_id}")))
}

// --- API keys -------------------------------------------------------------------------------

struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: String,
    created_at: String,
    last_used_at: String,
    use_count: i64,
    expires_at: String,
    status: &'static str,
    grace_until: String,
}

#[derive(Template)]
#[template(path = "console/admin_api_keys.html")]
struct KeysPage {
    frame: Frame,
    keys: Vec<KeyRow>,
    error: Option<String>,
    typed_name: String,
    typed_scopes: String,
    /// A key just made or rotated, shown this once.
    revealed: Option<(String, String)>,
}

async fn keys_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    status: StatusCode,
    error: Option<String>,
    typed: (String, String),
    revealed: Option<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let (frame, _) = Frame::signed_in(state, context, csrf, principal).await?;
    let keys = crate::api_keys::service::list(state, context)
        .await?
        .into_iter()
        .map(|key| KeyRow {
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            scopes: key.scopes.join(" "),
            created_at: when(Some(key.created_at)),
            last_used_at: when(key.last_used_at),
            use_count: key.use_count,
            expires_at: when(key.expires_at),
            status: key.status,
            grace_until: when(key.previous_secret_expires_at),
        })
        .collect();
    let page = KeysPage {
        frame,
        keys,
        error,
        typed_name: typed.0,
        typed_scopes: typed.1,
        revealed,
    };
    let mut answer = render(status, &page)?;
    // A page that shows a secret is never stored by the browser.
    answer.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(answer)
}

#[route(get, "/console/admin/api-keys", access = Permission(crate::api_keys::MANAGE), rate = Read)]
async fn api_keys_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    keys_answer(
        &state,
        &context,
        &csrf,
        StatusCode::OK,
        None,
        Default::default(),
        None,
    )
    .await
}

#[route(post, "/console/admin/api-keys",
    access = Permission(crate::api_keys::MANAGE),
    audit = event("api_keys.create", "api_key"),
    rate = Write)]
async fn create_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let caller = context.authenticated()?;
    let scopes: Vec<String> = fields
        .one("scopes")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let typed = (
        fields.one("name").to_owned(),
        fields.one("scopes").to_owned(),
    );
    let created = async {
        let new_key = crate::api_keys::service::NewKey {
            name: KeyName::parse(fields.one("name"))?,
            scopes: Scopes::parse(&scopes)?,
            expires_at: None,
            allowed_ips: None,
        };
        crate::api_keys::service::create(&state, &context, caller, new_key).await
    }
    .await;
    match created {
        Ok(issued) => {
            let revealed = Some((issued.view.name, issued.key));
            keys_answer(
                &state,
                &context,
                &csrf,
                StatusCode::CREATED,
                None,
                Default::default(),
                revealed,
            )
            .await
        }
        Err(error) => {
            let (status, message) = refused(error)?;
            keys_answer(&state, &context, &csrf, status, Some(message), typed, None).await
        }
    }
}

#[route(post, "/console/admin/api-keys/{id}/rotate",
    access = Permission(crate::api_keys::MANAGE),
    audit = event("api_keys.rotate", "api_key").id_from("id"),
    rate = Write)]
async fn rotate_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let key_id = not_found(&path)?;
    let caller = context.authenticated()?;
    let fields = Fields::parse(&body);
    let grace = match fields.one("grace_seconds") {
        "" => None,
        seconds => Some(seconds.parse::<i64>().map_err(|_| {
            ApiError::bad_request("invalid_grace", "the grace period is a number of seconds")
        })?),
    };
    let issued = crate::api_keys::service::rotate(
        &state,
        &context,
        caller,
        key_id,
        GracePeriod::parse(grace)?,
    )
    .await?;
    let revealed = Some((issued.view.name, issued.key));
    keys_answer(
        &state,
        &context,
        &csrf,
        StatusCode::OK,
        None,
        Default::default(),
        revealed,
    )
    .await
}

#[route(post, "/console/admin/api-keys/{id}/revoke",
    access = Permission(crate::api_keys::MANAGE),
    audit = event("api_keys.revoke", "api_key").id_from("id"),
    rate = Write)]
async fn revoke_api_key(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key_id = not_found(&path)?;
    crate::api_keys::service::revoke(&state, &context, key_id).await?;
    Ok(see_other("/console/admin/api-keys"))
}

// --- The audit log --------------------------------------------------------------------------

/// The audit page's filters, as its (GET) form sends them; empty fields filter nothing.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct AuditForm {
    actor: String,
    action: String,
    result: String,
    /// Days, `YYYY-MM-DD` (UTC): from the start of `from` to the end of `to`.
    from: String,
    to: String,
    cursor: String,
}

impl AuditForm {
    fn query(&self, limit: u32) -> crate::audit::service::AuditQuery {
        let some = |value: &str| Some(value.trim().to_owned()).filter(|value| !value.is_empty());
        crate::audit::service::AuditQuery {
            from: some(&self.from).map(|day| format!("{day}T00:00:00Z")),
            to: some(&self.to).map(|day| format!("{day}T23:59:59Z")),
            actor: some(&self.actor),
            action: some(&self.action),
            resource_type: None,
            resource_id: None,
            result: some(&self.result),
            limit: Some(limit.to_string()),
            cursor: some(&self.cursor),
        }
    }

    /// The filters as a query string (without the cursor), for links.
    fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", &self.actor)
            .append_pair("action", &self.action)
            .append_pair("result", &self.result)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .finish()
    }
}

#[derive(Template)]
#[template(path = "console/admin_audit.html")]
struct AuditPage {
    frame: Frame,
    filters: AuditForm,
    events: Vec<crate::audit::service::EventView>,
    next_page: Option<String>,
    export: String,
    error: Option<String>,
    results: &'static [&'static str],
}

const EVENTS_PER_PAGE: u32 = 50;

#[route(get, "/console/admin/audit", access = Permission(crate::audit::READ), rate = Read)]
async fn audit_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Query<AuditForm>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let (frame, _) = Frame::signed_in(&state, &context, &csrf, principal).await?;
    let filters = form.into_inner();
    let tenant_id = context.tenant.tenant.id.to_string();
    let filter =
        match crate::audit::service::filter(filters.query(EVENTS_PER_PAGE), state.clock.now()) {
            Ok(filter) => filter,
            Err(error) => {
                let (status, message) = refused(error)?;
                let page = AuditPage {
                    frame,
                    export: filters.query_string(),
                    filters,
                    events: Vec::new(),
                    next_page: None,
                    error: Some(message),
                    results: crate::audit::service::RESULTS,
                };
                return render(status, &page);
            }
        };
    let page = crate::audit::service::page(&state.clickhouse, &tenant_id, &filter).await?;
    let query = filters.query_string();
    let next_page = page.next_cursor.map(|cursor| {
        format!(
            "/console/admin/audit?{query}&{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("cursor", &cursor)
                .finish()
        )
    });
    render(
        StatusCode::OK,
        &AuditPage {
            frame,
            filters,
            events: page.events,
            next_page,
            export: query,
            error: None,
            results: crate::audit::service::RESULTS,
        },
    )
}

/// Most events one CSV export holds (the newest that match).
const EXPORT_LIMIT: usize = 10_000;

#[route(get, "/console/admin/audit/export.csv", access = Permission(crate::audit::READ), rate = Read)]
async fn audit_export(
    context: RequestContext,
    state: web::Data<DataPlane>,
    form: web::Query<AuditForm>,
) -> Result<HttpResponse, ApiError> {
    let mut filters = form.into_inner();
    let tenant_id = context.tenant.tenant.id.to_string();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |error: csv::Error| ApiError::internal(&error);
    writer
        .write_record([
            "occurred_at",
            "actor_type",
            "actor_id",
            "action",
            "resource_type",
            "resource_id",
            "result",
            "ip",
            "http_method",
            "http_path",
            "http_status",
            "request_id",
        ])
        .map_err(csv_error)?;
    let mut written = 0;
    filters.cursor.clear();
    loop {
        let filter = crate::audit::service::filter(
            filters.query(crate::audit::service::MAX_LIMIT),
            state.clock.now(),
        )?;
        let page = crate::audit::service::page(&state.clickhouse, &tenant_id, &filter).await?;
        for event in &page.events {
            writer
                .write_record([
                    event.occurred_at.as_str(),
                    &event.actor.actor_type,
                    &event.actor.id,
                    &event.action,
                    &event.resource.resource_type,
                    &event.resource.id,
                    &event.result,
                    &event.ip,
                    &event.http.method,
                    &event.http.path,
                    &event.http.status.to_string(),
                    &event.request_id,
                ])
                .map_err(csv_error)?;
        }
        written += page.events.len();
        match page.next_cursor {
            Some(cursor) if written < EXPORT_LIMIT => filters.cursor = cursor,
            _ => break,
        }
    }
    let body = writer
        .into_inner()
        .map_err(|error| ApiError::internal(&error.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"audit.csv\"",
        ))
        .body(body))
}
