//! API keys (`/v1/admin/api-keys`) and `GET /v1/usage`: both ways of presenting a key, the
//! secret shown once and stored as a digest, tenant isolation, revocation on another node,
//! expiry and rotation grace (manual clock), IP allow-lists, the escalation guard at creation,
//! rotation and request time, admin endpoints refusing keys, usage counters, the quota under
//! concurrent creations, and malformed input.

mod admin;
mod authentication;
mod lifecycle;
mod privileges;

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp, TestOptions};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::mfa::app_with_clock;
use crate::users_admin::{
    access, call, error_code, invite_and_activate, tenant_schema, tenant_with_owner, PASSWORD,
};

pub const KEYS: &str = "/v1/admin/api-keys";

/// How a request presents its key.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    XApiKey,
    Bearer,
}

/// A request to `url` (a data-plane node) for tenant `slug` with the API key `key`.
pub async fn with_key_on(
    app: &TestApp,
    url: &str,
    method: Method,
    slug: &str,
    path: &str,
    key: &str,
    via: Via,
) -> reqwest::Response {
    let request = app
        .http
        .request(method, format!("{url}{path}"))
        .header("X-Tenant", slug);
    let request = match via {
        Via::XApiKey => request.header("X-API-Key", key),
        Via::Bearer => request.bearer_auth(key),
    };
    request.send().await.unwrap()
}

/// `GET /v1/usage` on the first node with `key` in `X-API-Key`.
pub async fn usage_with(app: &TestApp, slug: &str, key: &str) -> reqwest::Response {
    with_key_on(
        app,
        &app.data_url,
        Method::GET,
        slug,
        "/v1/usage",
        key,
        Via::XApiKey,
    )
    .await
}

/// Creates a key as the holder of `token`; the 201 body (with the full `key`).
pub async fn create_key(app: &TestApp, slug: &str, token: &str, body: Value) -> Value {
    let response = call(app, Method::POST, slug, KEYS, token, Some(body)).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// A key scoped to `usage:read` only; its 201 body.
pub async fn usage_key(app: &TestApp, slug: &str, token: &str) -> Value {
    create_key(
        app,
        slug,
        token,
        json!({"name": "usage reader", "scopes": ["usage:read"]}),
    )
    .await
}

pub fn key_text(created: &Value) -> String {
    created["key"].as_str().unwrap().to_owned()
}

pub fn key_path(created: &Value) -> String {
    format!("{KEYS}/{}", created["id"].as_str().unwrap())
}

pub async fn listed(app: &TestApp, slug: &str, token: &str) -> Vec<Value> {
    let response = call(app, Method::GET, slug, KEYS, token, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["api_keys"].as_array().unwrap().clone()
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}
