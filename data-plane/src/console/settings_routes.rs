//! The tenant console's settings page: the sign-in policy (passwords, lockout, sessions,
//! two-factor, self-registration), the origins allowed to call the API from a browser (CORS)
//! and the redirect URIs applications' SSO sign-ins may return to. Each form is saved through
//! the service of its API route, with its checks; a refused list is shown again as typed.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::{json, Value};
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::page::{refused, render, Fields, Frame};
use crate::identity::policy::{AuthPolicy, MfaRequirement};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use shared::console::{see_other, Csrf};

pub fn routes() -> Vec<Route> {
    routes![
        settings_page,
        save_auth_policy,
        save_cors,
        save_sso_redirects
    ]
}

#[derive(Template)]
#[template(path = "console/settings.html")]
struct SettingsPage {
    frame: Frame,
    policy: AuthPolicy,
    mfa: &'static str,
    origins: String,
    redirect_uris: String,
    policy_error: Option<String>,
    cors_error: Option<String>,
    redirects_error: Option<String>,
}

/// A form the service refused: which, why, and what was typed in its list.
enum Refused {
    Policy(String),
    Cors { message: String, typed: String },
    Redirects { message: String, typed: String },
}

async fn settings_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    status: StatusCode,
    refused: Option<Refused>,
) -> Result<HttpResponse, ApiError> {
    let (frame, _) = Frame::signed_in(state, context, csrf, context.signed_in()?).await?;
    let policy = crate::settings::service::auth_policy(state, context).await?;
    let cors = crate::cors::service::policy(state, context).await?;
    let redirects = crate::sso::handoff::redirects(state, context).await?;
    let mut page_errors = (None, None, None);
    let mut origins = cors.allowed_origins.join("\n");
    let mut redirect_uris = redirects.redirect_uris.join("\n");
    match refused {
        Some(Refused::Policy(message)) => page_errors.0 = Some(message),
        Some(Refused::Cors { message, typed }) => {
            page_errors.1 = Some(message);
            origins = typed;
        }
        Some(Refused::Redirects { message, typed }) => {
            page_errors.2 = Some(message);
            redirect_uris = typed;
        }
        None => {}
    }
    let mfa = match policy.mfa {
        MfaRequirement::Optional => "optional",
        MfaRequirement::Admins => "admins",
        MfaRequirement::All => "all",
    };
    render(
        status,
        &SettingsPage {
            frame,
            policy,
            mfa,
            origins,
            redirect_uris,
            policy_error: page_errors.0,
            cors_error: page_errors.1,
            redirects_error: page_errors.2,
        },
    )
}

#[route(get, "/console/admin/settings", access = Permission(crate::settings::MANAGE), rate = Read)]
async fn settings_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    settings_answer(&state, &context, &csrf, StatusCode::OK, None).await
}

/// A whole number from a form field, or the text itself (the policy's check names it).
fn number(fields: &Fields, name: &str) -> Value {
    let text = fields.one(name).trim();
    text.parse::<u64>()
        .map_or_else(|_| Value::String(text.to_owned()), Value::from)
}

#[route(post, "/console/admin/settings/auth-policy",
    access = Permission(crate::settings::MANAGE),
    audit = event("settings.auth_policy_update", "settings"),
    rate = Write)]
async fn save_auth_policy(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let on = |name: &str| fields.one(name) == "on";
    let max_age = match fields.one("max_age_days").trim() {
        "" => Value::Null,
        _ => number(&fields, "max_age_days"),
    };
    let submitted = json!({
        "password": {
            "min_length": number(&fields, "min_length"),
            "require_lowercase": on("require_lowercase"),
            "require_uppercase": on("require_uppercase"),
            "require_digit": on("require_digit"),
            "require_symbol": on("require_symbol"),
            "history": number(&fields, "history"),
            "max_age_days": max_age,
        },
        "lockout": {
            "max_failures": number(&fields, "max_failures"),
            "lockout_minutes": number(&fields, "lockout_minutes"),
        },
        "sessions": {
            "idle_timeout_minutes": number(&fields, "idle_timeout_minutes"),
            "absolute_lifetime_hours": number(&fields, "absolute_lifetime_hours"),
            "max_concurrent": number(&fields, "max_concurrent"),
        },
        "mfa": fields.one("mfa"),
        "self_signup": on("self_signup"),
    });
    let saved = crate::settings::service::replace_auth_policy(&state, &context, submitted)
        .await
        .map_err(ApiError::from);
    settings_saved(&state, &context, &csrf, saved, Refused::Policy).await
}

/// After one of the page's forms: back to the page, or the page again with the service's
/// refusal (`refusal` says which form, and keeps what was typed).
async fn settings_saved<T>(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    saved: Result<T, ApiError>,
    refusal: impl FnOnce(String) -> Refused,
) -> Result<HttpResponse, ApiError> {
    match saved {
        Ok(_) => Ok(see_other("/console/admin/settings")),
        Err(error) => {
            let (status, message) = refused(error)?;
            settings_answer(state, context, csrf, status, Some(refusal(message))).await
        }
    }
}

#[route(post, "/console/admin/settings/cors",
    access = Permission(crate::settings::MANAGE),
    audit = event("settings.cors_update", "settings"),
    rate = Write)]
async fn save_cors(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let origins: Vec<&str> = fields.one("origins").split_whitespace().collect();
    let submitted = json!({ "allowed_origins": origins });
    let saved = crate::cors::service::replace_policy(&state, &context, submitted)
        .await
        .map_err(ApiError::from);
    let typed = fields.one("origins").to_owned();
    let refusal = |message| Refused::Cors { message, typed };
    settings_saved(&state, &context, &csrf, saved, refusal).await
}

#[route(post, "/console/admin/settings/sso-redirects",
    access = Permission(crate::settings::MANAGE),
    audit = event("settings.sso_redirects_update", "settings"),
    rate = Write)]
async fn save_sso_redirects(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let uris: Vec<&str> = fields.one("redirect_uris").split_whitespace().collect();
    let submitted = json!({ "redirect_uris": uris });
    let saved = crate::sso::handoff::replace_redirects(&state, &context, submitted)
        .await
        .map_err(ApiError::from);
    let typed = fields.one("redirect_uris").to_owned();
    let refusal = |message| Refused::Redirects { message, typed };
    settings_saved(&state, &context, &csrf, saved, refusal).await
}
