//! The tenant console's pages for everyone with an account: signing in (password, then a
//! code when two-factor is on) and out, the profile, sessions, two-factor enrolment. Each
//! page calls the same service as the API route that does the same thing; the route's
//! declaration carries the same access, audit event and rate class.

use actix_web::http::header::SET_COOKIE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};
use uuid::Uuid;

use super::page::{self, form_error, refused, render, safe_next, Fields, Frame};
use super::service::{self, SignIn};
use crate::identity::passwords::Password;
use crate::identity::service::Client;
use crate::mfa::codes::{OneTimeCode, TotpCode};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use shared::console::cookies::{self, CookiePolicy, MFA_COOKIE};
use shared::console::{see_other, Csrf};

pub fn routes() -> Vec<Route> {
    let mut routes = routes![
        sign_in_page,
        sign_in,
        mfa_page,
        mfa_answer,
        sign_out,
        home,
        sessions_page,
        end_session,
        mfa_settings,
        mfa_setup,
        mfa_enable,
        change_password,
        rename,
        erase,
        export,
    ];
    routes.extend(shared::console::routes());
    routes.extend(super::account_routes::routes());
    routes.extend(super::admin_routes::routes());
    routes.extend(super::sso::routes());
    routes.extend(super::sso_setup::routes());
    routes.extend(super::directory_routes::routes());
    routes.extend(super::usage_routes::routes());
    routes.extend(super::roles_routes::routes());
    routes.extend(super::settings_routes::routes());
    routes
}

fn client(context: &RequestContext) -> Client<'_> {
    Client {
        ip: context.source_ip,
        user_agent: context.user_agent.as_deref(),
    }
}

fn cookie_policy(state: &DataPlane) -> CookiePolicy {
    CookiePolicy::for_scheme(&state.config.public_scheme)
}

/// Signed in (`shared::console::signed_in`), the MFA step's cookie no longer needed.
fn signed_in(state: &DataPlane, secret: &str, next: &str) -> Result<HttpResponse, ApiError> {
    let policy = cookie_policy(state);
    let mut answer = shared::console::signed_in(&policy, next, secret)?;
    answer
        .headers_mut()
        .append(SET_COOKIE, policy.clear(MFA_COOKIE));
    Ok(answer)
}

// --- Signing in ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    frame: Frame,
    email: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
    self_signup: bool,
    /// The tenant's enabled SSO providers: name and what the button says.
    providers: Vec<(String, String)>,
    /// After `sso_required`: the provider the address must use.
    sso_required: Option<String>,
}

impl SignInPage {
    /// The sign-in page for this tenant, with its sign-up link and SSO buttons.
    async fn new(
        state: &DataPlane,
        context: &RequestContext,
        csrf: &Csrf,
        next: String,
    ) -> Result<Self, ApiError> {
        let options = service::sign_in_options(state, context).await?;
        Ok(Self {
            frame: Frame::new(context, csrf, None),
            email: String::new(),
            next,
            error: None,
            notice: None,
            self_signup: options.self_signup,
            providers: options.providers,
            sso_required: None,
        })
    }
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
    /// Set after the user erased their account.
    erased: Option<String>,
}

#[route(get, "/console/sign-in", access = Public, rate = Read)]
async fn sign_in_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut page =
        SignInPage::new(&state, &context, &csrf, safe_next(query.next.as_deref())).await?;
    if query.erased.is_some() {
        page.notice = Some("Your account is erased.".to_owned());
    }
    render(StatusCode::OK, &page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignInForm {
    email: String,
    password: String,
    next: Option<String>,
}

#[route(post, "/console/sign-in",
    access = Public,
    audit = event("auth.login", "session"),
    rate = Auth)]
async fn sign_in(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let outcome = match Email::parse(form.email.trim()) {
        Ok(email) => {
            let password = Password::new(form.password);
            service::sign_in(&state, &context, &email, &password, client(&context))
                .await
                .map_err(ApiError::from)
        }
        Err(_) => Err(ApiError::bad_request(
            "invalid_email",
            "enter your email address",
        )),
    };
    match outcome {
        Ok(SignIn::Session(secret)) => signed_in(&state, &secret, &next),
        Ok(SignIn::MfaRequired(challenge)) => {
            let mut answer = see_other(&format!(
                "/console/sign-in/mfa?next={}",
                percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC)
            ));
            let lifetime = crate::mfa::CHALLENGE_LIFETIME.whole_seconds();
            answer.headers_mut().append(
                SET_COOKIE,
                cookie_policy(&state).set(MFA_COOKIE, &challenge, Some(lifetime)),
            );
            Ok(answer)
        }
        Err(error) => {
            let (status, message) = form_error(&error).ok_or_else(|| error.clone())?;
            let mut page = SignInPage::new(&state, &context, &csrf, next).await?;
            page.email = form.email;
            page.error = Some(message);
            page.sso_required = error
                .details()
                .filter(|_| error.code() == "sso_required")
                .and_then(|details| details.get("provider"))
                .and_then(|provider| provider.as_str())
                .map(str::to_owned);
            render(status, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "console/mfa_challenge.html")]
struct MfaChallengePage {
    frame: Frame,
    next: String,
    error: Option<String>,
}

#[route(get, "/console/sign-in/mfa", access = Public, rate = Read)]
async fn mfa_page(
    context: RequestContext,
    request: HttpRequest,
    csrf: Csrf,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, ApiError> {
    if cookies::read(&request, MFA_COOKIE, crate::mfa::CHALLENGE_PREFIX).is_none() {
        return Ok(see_other("/console/sign-in"));
    }
    let page = MfaChallengePage {
        frame: Frame::new(&context, &csrf, None),
        next: safe_next(query.next.as_deref()),
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    code: String,
    next: Option<String>,
}

#[route(post, "/console/sign-in/mfa",
    access = Public,
    audit = event("auth.mfa_verify", "session"),
    rate = Auth)]
async fn mfa_answer(
    context: RequestContext,
    state: web::Data<DataPlane>,
    request: HttpRequest,
    csrf: Csrf,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, ApiError> {
    let next = safe_next(form.next.as_deref());
    let Some(challenge) = cookies::read(&request, MFA_COOKIE, crate::mfa::CHALLENGE_PREFIX) else {
        return Ok(see_other("/console/sign-in"));
    };
    let outcome = match OneTimeCode::parse(&form.code) {
        Ok(code) => {
            match crate::mfa::service::verify(&state, &context, &challenge, &code, client(&context))
                .await
            {
                Ok(tokens) => service::bind(&state, &context, &tokens)
                    .await
                    .map_err(ApiError::from),
                Err(error) => Err(ApiError::from(error)),
            }
        }
        Err(error) => Err(ApiError::from(error)),
    };
    match outcome {
        Ok(secret) => signed_in(&state, &secret, &next),
        // A dead challenge (expired, spent, too many wrong codes): start again.
        Err(error) if error.code() == "invalid_mfa_token" => Ok(see_other("/console/sign-in")),
        Err(error) => {
            let (status, message) = refused(error)?;
            let page = MfaChallengePage {
                frame: Frame::new(&context, &csrf, None),
                next,
                error: Some(message),
            };
            render(status, &page)
        }
    }
}

#[route(post, "/console/sign-out",
    access = RestrictedOk,
    audit = event("auth.logout", "session"),
    rate = Write)]
async fn sign_out(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    crate::sessions::service::end(&state, &context, principal, principal.session_id, "logout")
        .await?;
    shared::console::signed_out(&cookie_policy(&state), "/console/sign-in")
}

// --- The signed-in user's pages ------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    frame: Frame,
    me: crate::identity::service::Me,
    restrictions: Vec<&'static str>,
    outcome: HomeOutcome,
}

/// What the profile page says about the form just posted, if any.
#[derive(Default)]
struct HomeOutcome {
    notice: Option<String>,
    password_error: Option<String>,
    password_rules: Vec<String>,
    /// The name as typed, when refused.
    name_error: Option<(String, String)>,
    erasure_error: Option<String>,
}

/// The profile page, with the outcome of a form if one was just posted.
async fn home_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    status: StatusCode,
    outcome: HomeOutcome,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let (frame, me) = Frame::signed_in(state, context, csrf, principal).await?;
    let restrictions = principal
        .restrictions
        .iter()
        .map(|restriction| match restriction {
            crate::tokens::access::Restriction::PasswordChange => "change your password",
            crate::tokens::access::Restriction::MfaEnrollment => "set up two-factor authentication",
        })
        .collect();
    render(
        status,
        &HomePage {
            frame,
            me,
            restrictions,
            outcome,
        },
    )
}

#[route(get, "/console", access = RestrictedOk, rate = Read)]
async fn home(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    home_answer(
        &state,
        &context,
        &csrf,
        StatusCode::OK,
        HomeOutcome::default(),
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordChangeForm {
    current_password: String,
    new_password: String,
}

#[route(post, "/console/password",
    access = RestrictedOk,
    audit = event("me.password_change", "user"),
    rate = Auth)]
async fn change_password(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Form<PasswordChangeForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let changed = crate::identity::service::change_password(
        &state,
        &context,
        context.signed_in()?,
        &Password::new(form.current_password),
        &Password::new(form.new_password),
    )
    .await
    .map_err(ApiError::from);
    match changed {
        Ok(()) => {
            let notice = "Your password is changed; your other sessions are ended.".to_owned();
            let outcome = HomeOutcome {
                notice: Some(notice),
                ..HomeOutcome::default()
            };
            home_answer(&state, &context, &csrf, StatusCode::OK, outcome).await
        }
        Err(error) => {
            let (status, message) = form_error(&error).ok_or_else(|| error.clone())?;
            let rules = page::failed_rules(&error);
            let outcome = HomeOutcome {
                password_error: rules.is_empty().then_some(message),
                password_rules: rules,
                ..HomeOutcome::default()
            };
            home_answer(&state, &context, &csrf, status, outcome).await
        }
    }
}

#[route(post, "/console/name",
    access = SignedIn,
    audit = event("me.update", "user"),
    rate = Write)]
async fn rename(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let typed = fields.one("display_name");
    let renamed =
        crate::identity::service::rename(&state, &context, context.authenticated()?, typed).await;
    match renamed {
        Ok(_) => Ok(see_other("/console")),
        Err(error) => {
            let (status, message) = refused(error)?;
            let outcome = HomeOutcome {
                name_error: Some((typed.to_owned(), message)),
                ..HomeOutcome::default()
            };
            home_answer(&state, &context, &csrf, status, outcome).await
        }
    }
}

/// The user erases their account: the same service as `POST /v1/me/erasure`. Afterwards the
/// browser's cookie names nothing; it is cleared and the user sees the signed-out page.
#[route(post, "/console/erase",
    access = SignedIn,
    audit = event("me.erase", "user"),
    rate = Auth)]
async fn erase(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let principal = context.authenticated()?;
    let erased =
        crate::users::service::erase_self(&state, &context, principal, fields.one("confirm_email"))
            .await;
    match erased {
        Ok(()) => shared::console::signed_out(&cookie_policy(&state), "/console/sign-in?erased=1"),
        Err(error) => {
            let (status, message) = refused(error)?;
            let outcome = HomeOutcome {
                erasure_error: Some(message),
                ..HomeOutcome::default()
            };
            home_answer(&state, &context, &csrf, status, outcome).await
        }
    }
}

/// Everything the tenant holds about the signed-in user, as a JSON download.
#[route(get, "/console/export", access = SignedIn, rate = Read)]
async fn export(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.authenticated()?;
    let document = crate::privacy::service::export(&state, &context, principal).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"export-{}.json\"", principal.user_id),
        ))
        .json(document))
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct SessionsPage {
    frame: Frame,
    sessions: Vec<SessionRow>,
    notice: Option<String>,
}

/// A session as the page shows it.
struct SessionRow {
    id: Uuid,
    created_at: String,
    last_seen_at: String,
    ip: String,
    user_agent: String,
    current: bool,
}

fn when(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

async fn sessions_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    notice: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let (frame, _) = Frame::signed_in(state, context, csrf, principal).await?;
    let sessions = crate::sessions::service::list(state, context, principal)
        .await?
        .into_iter()
        .map(|session| SessionRow {
            id: session.id,
            created_at: when(session.created_at),
            last_seen_at: when(session.last_seen_at),
            ip: session.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            user_agent: session.user_agent.unwrap_or_default(),
            current: session.current,
        })
        .collect();
    render(
        StatusCode::OK,
        &SessionsPage {
            frame,
            sessions,
            notice,
        },
    )
}

#[route(get, "/console/sessions", access = RestrictedOk, rate = Read)]
async fn sessions_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    sessions_answer(&state, &context, &csrf, None).await
}

#[route(post, "/console/sessions/{id}/revoke",
    access = RestrictedOk,
    audit = event("session.revoke", "session").id_from("id"),
    rate = Write)]
async fn end_session(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session_id = Uuid::parse_str(&path)
        .map_err(|_| ApiError::not_found("session_not_found", "no such session"))?;
    let principal = context.signed_in()?;
    if !crate::sessions::service::end(&state, &context, principal, session_id, "revoked_by_user")
        .await?
    {
        return Err(ApiError::not_found("session_not_found", "no such session"));
    }
    sessions_answer(
        &state,
        &context,
        &csrf,
        Some("Signed out of that session.".to_owned()),
    )
    .await
}

// --- Two-factor enrolment -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/mfa.html")]
struct MfaPage {
    frame: Frame,
    enabled: bool,
    backup_codes_left: i64,
}

#[route(get, "/console/mfa", access = RestrictedOk, rate = Read)]
async fn mfa_settings(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let (frame, _) = Frame::signed_in(&state, &context, &csrf, principal).await?;
    let status = crate::mfa::service::status(&state, &context, principal).await?;
    render(
        StatusCode::OK,
        &MfaPage {
            frame,
            enabled: status.totp_enabled,
            backup_codes_left: status.backup_codes_remaining,
        },
    )
}

#[derive(Template)]
#[template(path = "console/mfa_setup.html")]
struct MfaSetupPage {
    frame: Frame,
    secret: String,
    qr_data_uri: String,
    error: Option<String>,
}

#[route(post, "/console/mfa/setup",
    access = RestrictedOk,
    audit = event("mfa.totp_setup", "user"),
    rate = Write)]
async fn mfa_setup(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let (frame, _) = Frame::signed_in(&state, &context, &csrf, principal).await?;
    let setup = crate::mfa::service::setup(&state, &context, principal).await?;
    use base64::Engine as _;
    let qr_data_uri = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(setup.qr_svg.as_bytes())
    );
    render(
        StatusCode::OK,
        &MfaSetupPage {
            frame,
            secret: setup.secret.to_string(),
            qr_data_uri,
            error: None,
        },
    )
}

#[derive(Template)]
#[template(path = "console/backup_codes.html")]
struct BackupCodesPage {
    frame: Frame,
    codes: Vec<String>,
}

#[route(post, "/console/mfa/enable",
    access = RestrictedOk,
    audit = event("mfa.totp_enable", "user"),
    rate = Auth)]
async fn mfa_enable(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    let (frame, _) = Frame::signed_in(&state, &context, &csrf, principal).await?;
    let outcome = match TotpCode::parse(&form.code) {
        Ok(code) => crate::mfa::service::enable(&state, &context, principal, &code).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(codes) => render(
            StatusCode::OK,
            &BackupCodesPage {
                frame,
                codes: codes.backup_codes,
            },
        ),
        Err(error) => {
            let (status, message) = refused(error)?;
            // The pending secret stays; a new one is made only by starting again.
            let page = page::MessagePage {
                frame,
                heading: "That code did not work".to_owned(),
                message: format!("{message}. Start the set-up again to see the key once more."),
                link_href: "/console/mfa".to_owned(),
                link_text: "Two-factor settings".to_owned(),
            };
            render(status, &page)
        }
    }
}
