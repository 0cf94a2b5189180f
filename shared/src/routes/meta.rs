//! The routes every plane serves about its own API: the OpenAPI document
//! (`GET /v1/openapi.json`) and the reference page made from it (`GET /v1/reference`). The
//! plane hands its [`ApiDocuments`] to [`super::configure`], which registers them as app data.

use actix_web::{web, HttpResponse};
use serde_json::Value;

use super::{route, routes, Route};

/// A plane's API documents, built once per process (`route_table::documents`).
#[derive(Debug)]
pub struct ApiDocuments {
    pub openapi: Value,
    /// [`super::reference::page`] of `openapi`.
    pub reference: String,
}

impl ApiDocuments {
    /// The documents of `plane`, whose routes are `routes` (its console pages are not API
    /// operations and are left out).
    pub fn build(plane: &super::openapi::Plane, routes: &[Route]) -> Self {
        let openapi = super::openapi::document(plane, &super::operations(routes));
        let reference = super::reference::page(&openapi);
        Self { openapi, reference }
    }
}

/// What `GET /healthz` answers on every plane: the process is up (it says nothing of its
/// dependencies; the data plane's `/readyz` does).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(examples(json!({ "status": "ok" })))]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
}

impl Liveness {
    pub const UP: Self = Self { status: "ok" };
}

pub fn routes() -> Vec<Route> {
    routes![get_openapi, get_reference]
}

/// This plane's OpenAPI 3.1 document.
#[route(get, "/v1/openapi.json",
    access = Public,
    audit = Never,
    rate = Unlimited,
    tag = "meta",
    summary = "This API's OpenAPI document",
    responses((status = 200, description = "This document (OpenAPI 3.1, JSON)", body = Object)))]
async fn get_openapi(documents: web::Data<&'static ApiDocuments>) -> HttpResponse {
    HttpResponse::Ok().json(&documents.openapi)
}

/// This plane's API reference, for people: one HTML page made from the document.
#[route(get, "/v1/reference",
    access = Public,
    audit = Never,
    rate = Unlimited,
    tag = "meta",
    responses((status = 200, description = "The reference page (HTML)", content_type = "text/html")))]
async fn get_reference(documents: web::Data<&'static ApiDocuments>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(documents.reference.clone())
}
