//! The operator console's template page: where the tenant template stands over the fleet
//! (tenants by version, failed migrations, from the catalog) and a roll-out of its newest
//! version started in the background, whose progress the page shows while it runs (it
//! reloads itself every two seconds, a `<meta http-equiv="refresh">`: no script).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use shared::console::{refused, render, see_other, Csrf, Fields};
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::Frame;
use crate::context::ControlPlane;
use crate::operators::auth::Operator;
use crate::templates::{self, Overview, Progressing, RolloutOptions};

pub fn routes() -> Vec<Route> {
    routes![templates_page, start_rollout]
}

#[derive(Template)]
#[template(path = "console/templates.html")]
struct TemplatesPage {
    frame: Frame,
    overview: Overview,
    rollout: Option<Progressing>,
    error: Option<String>,
}

async fn templates_answer(
    control: &ControlPlane,
    operator: &Operator,
    csrf: &Csrf,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let page = TemplatesPage {
        frame: super::routes::frame(csrf, Some(operator)),
        overview: templates::overview(control).await?,
        rollout: control.rollouts.current(),
        error,
    };
    render(status, &page)
}

#[route(get, "/console/templates", access = Operator, rate = Unlimited)]
async fn templates_page(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    templates_answer(&control, &operator, &csrf, StatusCode::OK, None).await
}

/// A whole number in 1..=`max` from a form field (empty: `default`).
fn bounded(fields: &Fields, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match fields.one(name).trim() {
        "" => Ok(default),
        text => text
            .parse::<usize>()
            .ok()
            .filter(|value| (1..=max).contains(value))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_input",
                    format!("{name} is a whole number from 1 to {max}"),
                )
            }),
    }
}

#[route(post, "/console/templates/rollout",
    access = Operator,
    audit = event("template.rollout", "template"),
    rate = Unlimited)]
async fn start_rollout(
    control: web::Data<ControlPlane>,
    operator: Operator,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let started = (|| {
        let concurrency = bounded(&fields, "concurrency", 4, 32)?;
        let canary = match fields.one("canary").trim() {
            "" | "0" => None,
            _ => Some(bounded(&fields, "canary", 1, 1000)?),
        };
        let options = RolloutOptions {
            concurrency,
            canary,
        };
        templates::start_in_background(&control, options).map_err(ApiError::from)
    })();
    match started {
        Ok(()) => Ok(see_other("/console/templates")),
        Err(error) => {
            let (status, message) = refused(error)?;
            templates_answer(&control, &operator, &csrf, status, Some(message)).await
        }
    }
}
