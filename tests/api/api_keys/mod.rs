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

use data_plane::clock::ManualClock;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
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

/// Creates a key as the holder of `token`; the 201 body (with the full `key`).
///
/// Not used here any more: kept for `route_table` until it moves to the client (the lead
/// removes it then).
pub async fn create_key(app: &TestApp, slug: &str, token: &str, body: Value) -> Value {
    let response = app
        .as_bearer(slug, token)
        .post(KEYS)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text()
    );
    response.value()
}

/// An app whose data plane reads the time from a clock that moves only when told, starting
/// on a whole second (so times the server stores and returns compare exactly).
async fn app_with_clock() -> (TestApp, ManualClock) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let clock = ManualClock::new(OffsetDateTime::from_unix_timestamp(now).unwrap());
    let app = TestApp::spawn_with(TestOptions {
        clock: Some(clock.clone()),
        ..TestOptions::default()
    })
    .await;
    (app, clock)
}
