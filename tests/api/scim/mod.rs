//! SCIM 2.0 at `/scim/v2`: a directory provisions the tenant's users and groups with an API key
//! granted `scim:manage`. `compliance` runs an independent checker (scim2-tester) over the whole
//! service; `directories` replays the requests Okta and Entra ID send.

mod compliance;
mod directories;
mod groups;
mod users;

use serde_json::Value;
use tenantry_tests::client::NewKey;
use tenantry_tests::{Client, TestApp};

/// A directory of `slug`: a client holding a fresh `scim:manage` key made by `admin`, sent as a
/// bearer token as directories do.
async fn directory(app: &TestApp, slug: &str, admin: &Client) -> Client {
    let key = admin
        .api_keys()
        .create(&NewKey::new("directory", &["scim:manage"]))
        .await
        .unwrap();
    app.tenant(slug).with_bearer(key.key.expose())
}

/// A minimal user document with `user_name` and the address `email`.
fn user_document(user_name: &str, email: &str) -> Value {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": { "givenName": "Grace", "familyName": "Hopper" },
        "emails": [{ "value": email, "type": "work", "primary": true }],
        "active": true,
    })
}

/// A group document named `display_name` with the users `members` (no `members` at all when
/// there are none).
fn group_document(display_name: &str, members: &[uuid::Uuid]) -> Value {
    let mut group = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": display_name,
    });
    if !members.is_empty() {
        group["members"] = members
            .iter()
            .map(|id| serde_json::json!({ "value": id.to_string() }))
            .collect();
    }
    group
}

/// The `id` of a SCIM document.
fn id_of(document: &Value) -> uuid::Uuid {
    uuid::Uuid::parse_str(document["id"].as_str().unwrap()).unwrap()
}
