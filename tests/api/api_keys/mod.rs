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
use serde_json::json;
use tenantry_tests::client::{CreatedKey, NewKey};
use tenantry_tests::{unique_address, Client, Reply, TestApp, TestOptions, PASSWORD};
use time::OffsetDateTime;
use uuid::Uuid;

pub const KEYS: &str = "/v1/admin/api-keys";

/// How a request presents its key.
#[derive(Debug, Clone, Copy)]
enum Via {
    XApiKey,
    Bearer,
}

/// `client` presenting the API key `key` as `via` says.
fn presenting(client: &Client, key: &str, via: Via) -> Client {
    match via {
        Via::XApiKey => client.with_api_key(key),
        Via::Bearer => client.with_bearer(key),
    }
}

/// `GET /v1/usage` at tenant `slug` with `key` in `X-API-Key`: the answer, whatever it is.
async fn usage_with(app: &TestApp, slug: &str, key: &str) -> Reply {
    app.tenant(slug)
        .with_api_key(key)
        .get("/v1/usage")
        .send()
        .await
        .unwrap()
}

/// A key scoped to `usage:read` only, made by `admin`.
async fn usage_key(admin: &Client) -> CreatedKey {
    admin
        .api_keys()
        .create(&NewKey::new("usage reader", &["usage:read"]))
        .await
        .unwrap()
}

/// The path of key `id` in the admin API.
fn key_path(id: Uuid) -> String {
    format!("{KEYS}/{id}")
}
