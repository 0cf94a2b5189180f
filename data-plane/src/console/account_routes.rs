//! The console's pages for getting into an account: sign-up, the links our mails carry
//! (email verification, activation, invitation, password reset) and asking for a reset.
//! A link's page never acts on a GET (mail scanners follow links): it shows a form that
//! posts the token.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use shared::email::Email;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::page::{failed_rules, form_error, refused, render, Frame, MessagePage};
use crate::accounts::service::{self as accounts, Registration};
use crate::identity::passwords::Password;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use shared::console::Csrf;

pub fn routes() -> Vec<Route> {
    routes![
        sign_up_page,
        sign_up,
        verify_email_page,
        verify_email,
        forgot_password_page,
        forgot_password,
        reset_password_page,
        reset_password,
        activate_page,
        activate,
        invitation_page,
        accept_invitation,
    ]
}

fn message(frame: Frame, heading: &str, text: &str, href: &str, link: &str) -> MessagePage {
    MessagePage {
        frame,
        heading: heading.to_owned(),
        message: text.to_owned(),
        link_href: href.to_owned(),
        link_text: link.to_owned(),
    }
}

// --- Sign-up --------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/sign_up.html")]
struct SignUpPage {
    frame: Frame,
    display_name: String,
    email: String,
    error: Option<String>,
    email_error: Option<String>,
    password_errors: Vec<String>,
}

#[route(get, "/console/sign-up", access = Public, rate = Read)]
async fn sign_up_page(context: RequestContext, csrf: Csrf) -> Result<HttpResponse, ApiError> {
    let page = SignUpPage {
        frame: Frame::new(&context, &csrf, None),
        display_name: String::new(),
        email: String::new(),
        error: None,
        email_error: None,
        password_errors: Vec::new(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SignUpForm {
    display_name: String,
    email: String,
    password: String,
}

#[route(post, "/console/sign-up",
    access = Public,
    audit = event("auth.register", "user"),
    rate = Auth)]
async fn sign_up(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Form<SignUpForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let frame = Frame::new(&context, &csrf, None);
    let mut page = SignUpPage {
        frame,
        display_name: form.display_name.clone(),
        email: form.email.clone(),
        error: None,
        email_error: None,
        password_errors: Vec::new(),
    };
    let Ok(email) = Email::parse(form.email.trim()) else {
        page.email_error = Some("enter a valid email address".to_owned());
        return render(StatusCode::BAD_REQUEST, &page);
    };
    let registration = Registration {
        email,
        password: Password::new(form.password),
        display_name: Some(form.display_name).filter(|name| !name.trim().is_empty()),
    };
    match accounts::register(&state, &context, registration).await {
        Ok(()) => render(
            StatusCode::ACCEPTED,
            &message(
                page.frame,
                "Check your mail",
                "We have sent a link to confirm your address. Follow it to finish creating \
                 your account.",
                "/console/sign-in",
                "Back to sign-in",
            ),
        ),
        Err(error) => {
            let error = ApiError::from(error);
            let (status, text) = form_error(&error).ok_or_else(|| error.clone())?;
            page.password_errors = failed_rules(&error);
            if page.password_errors.is_empty() {
                page.error = Some(text);
            }
            render(status, &page)
        }
    }
}

// --- Links from our mails --------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

#[derive(Template)]
#[template(path = "console/confirm_token.html")]
struct ConfirmTokenPage {
    frame: Frame,
    heading: String,
    message: String,
    action: String,
    token: String,
    button: String,
    error: Option<String>,
}

#[route(get, "/console/verify-email", access = Public, rate = Read)]
async fn verify_email_page(
    context: RequestContext,
    csrf: Csrf,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = ConfirmTokenPage {
        frame: Frame::new(&context, &csrf, None),
        heading: "Confirm your email address".to_owned(),
        message: "One click and your address is confirmed.".to_owned(),
        action: "/console/verify-email".to_owned(),
        token: query.into_inner().token,
        button: "Confirm my address".to_owned(),
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[route(post, "/console/verify-email",
    access = Public,
    audit = event("auth.verify_email", "user"),
    rate = Auth)]
async fn verify_email(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Form<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let frame = Frame::new(&context, &csrf, None);
    match accounts::verify_email(&state, &context, &form.token).await {
        Ok(_) => render(
            StatusCode::OK,
            &message(
                frame,
                "Address confirmed",
                "Your email address is confirmed. You can sign in now.",
                "/console/sign-in",
                "Sign in",
            ),
        ),
        Err(error) => {
            let (status, text) = refused(error)?;
            render(
                status,
                &message(
                    frame,
                    "This link does not work",
                    &text,
                    "/console/sign-in",
                    "Sign in",
                ),
            )
        }
    }
}

#[derive(Template)]
#[template(path = "console/forgot_password.html")]
struct ForgotPasswordPage {
    frame: Frame,
    email: String,
    error: Option<String>,
}

#[route(get, "/console/forgot-password", access = Public, rate = Read)]
async fn forgot_password_page(
    context: RequestContext,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    let page = ForgotPasswordPage {
        frame: Frame::new(&context, &csrf, None),
        email: String::new(),
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EmailForm {
    email: String,
}

#[route(post, "/console/forgot-password",
    access = Public,
    audit = event("auth.password_reset_request", "user"),
    rate = Auth)]
async fn forgot_password(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Form<EmailForm>,
) -> Result<HttpResponse, ApiError> {
    let frame = Frame::new(&context, &csrf, None);
    let Ok(email) = Email::parse(form.email.trim()) else {
        let page = ForgotPasswordPage {
            frame,
            email: form.into_inner().email,
            error: Some("enter a valid email address".to_owned()),
        };
        return render(StatusCode::BAD_REQUEST, &page);
    };
    accounts::request_password_reset(&state, &context, &email).await?;
    render(
        StatusCode::ACCEPTED,
        &message(
            frame,
            "Check your mail",
            "If that address has an account here, a link to reset its password is on its way.",
            "/console/sign-in",
            "Back to sign-in",
        ),
    )
}

#[derive(Template)]
#[template(path = "console/set_password.html")]
struct SetPasswordPage {
    frame: Frame,
    heading: String,
    action: &'static str,
    token: String,
    error: Option<String>,
    password_errors: Vec<String>,
}

/// What one of the set-a-password pages is.
#[derive(Clone, Copy)]
enum PasswordPage {
    Reset,
    Activate,
    Invitation,
}

impl PasswordPage {
    fn heading(self) -> &'static str {
        match self {
            Self::Reset => "Choose a new password",
            Self::Activate => "Choose your password",
            Self::Invitation => "Accept your invitation: choose a password",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Self::Reset => "/console/reset-password",
            Self::Activate => "/console/activate",
            Self::Invitation => "/console/accept-invitation",
        }
    }
}

fn password_form(
    which: PasswordPage,
    context: &RequestContext,
    csrf: &Csrf,
    token: String,
) -> SetPasswordPage {
    SetPasswordPage {
        frame: Frame::new(context, csrf, None),
        heading: which.heading().to_owned(),
        action: which.action(),
        token,
        error: None,
        password_errors: Vec::new(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    token: String,
    password: String,
}

/// Sets the password with the form's token, as `which` does; the page that answers.
async fn set_password(
    which: PasswordPage,
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    form: PasswordForm,
) -> Result<HttpResponse, ApiError> {
    let password = Password::new(form.password);
    let outcome = match which {
        PasswordPage::Reset => {
            accounts::confirm_password_reset(state, context, &form.token, &password)
                .await
                .map_err(ApiError::from)
        }
        PasswordPage::Activate | PasswordPage::Invitation => {
            crate::identity::service::activate(state, context, &form.token, &password)
                .await
                .map(|_| ())
                .map_err(ApiError::from)
        }
    };
    match outcome {
        Ok(()) => render(
            StatusCode::OK,
            &message(
                Frame::new(context, csrf, None),
                "Password set",
                "Your password is set. Sign in with it now.",
                "/console/sign-in",
                "Sign in",
            ),
        ),
        Err(error) => {
            let (status, text) = form_error(&error).ok_or_else(|| error.clone())?;
            let mut page = password_form(which, context, csrf, form.token);
            page.password_errors = failed_rules(&error);
            if page.password_errors.is_empty() {
                page.error = Some(text);
            }
            render(status, &page)
        }
    }
}

#[route(get, "/console/reset-password", access = Public, rate = Read)]
async fn reset_password_page(
    context: RequestContext,
    csrf: Csrf,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = password_form(
        PasswordPage::Reset,
        &context,
        &csrf,
        query.into_inner().token,
    );
    render(StatusCode::OK, &page)
}

#[route(post, "/console/reset-password",
    access = Public,
    audit = event("auth.password_reset", "user"),
    rate = Auth)]
async fn reset_password(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, ApiError> {
    set_password(
        PasswordPage::Reset,
        &state,
        &context,
        &csrf,
        form.into_inner(),
    )
    .await
}

#[route(get, "/console/activate", access = Public, rate = Read)]
async fn activate_page(
    context: RequestContext,
    csrf: Csrf,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = password_form(
        PasswordPage::Activate,
        &context,
        &csrf,
        query.into_inner().token,
    );
    render(StatusCode::OK, &page)
}

#[route(post, "/console/activate",
    access = Public,
    audit = event("auth.activate", "user"),
    rate = Auth)]
async fn activate(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, ApiError> {
    set_password(
        PasswordPage::Activate,
        &state,
        &context,
        &csrf,
        form.into_inner(),
    )
    .await
}

#[route(get, "/console/accept-invitation", access = Public, rate = Read)]
async fn invitation_page(
    context: RequestContext,
    csrf: Csrf,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = password_form(
        PasswordPage::Invitation,
        &context,
        &csrf,
        query.into_inner().token,
    );
    render(StatusCode::OK, &page)
}

#[route(post, "/console/accept-invitation",
    access = Public,
    audit = event("auth.activate", "user"),
    rate = Auth)]
async fn accept_invitation(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, ApiError> {
    set_password(
        PasswordPage::Invitation,
        &state,
        &context,
        &csrf,
        form.into_inner(),
    )
    .await
}
