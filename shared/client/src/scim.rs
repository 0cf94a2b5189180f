//! SCIM 2.0 (`/scim/v2`) as a directory speaks it: documents in and out as JSON values,
//! answers as [`Reply`]s (SCIM errors are SCIM error documents, not the API's envelope, so a
//! caller reads their `status` and `scimType` from the body).
//!
//! A directory authenticates with an API key granted `scim:manage`, sent as a bearer token:
//! `client.with_bearer(key).scim()`.

use serde_json::{json, Value};

use crate::{Client, Error, Reply};

/// SCIM's media type.
pub const SCIM_JSON: &str = "application/scim+json";
/// The schema a PATCH body names.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// `/scim/v2`.
pub struct Scim<'c> {
    pub(crate) client: &'c Client,
}

fn body(document: &Value) -> Vec<u8> {
    document.to_string().into_bytes()
}

impl Scim<'_> {
    fn path(path: &str) -> String {
        format!("/scim/v2/{}", path.trim_start_matches('/'))
    }

    /// `GET /scim/v2/{path}` (`path` may carry a query: `Users?filter=…`).
    pub async fn get(&self, path: &str) -> Result<Reply, Error> {
        self.client.get(Self::path(path)).send().await
    }

    /// `POST` of `document` (a resource to create, or a `SearchRequest` to `…/.search`).
    pub async fn post(&self, path: &str, document: &Value) -> Result<Reply, Error> {
        self.client
            .post(Self::path(path))
            .body(body(document), SCIM_JSON)
            .send()
            .await
    }

    /// `PUT` of `document`: the resource replaced.
    pub async fn put(&self, path: &str, document: &Value) -> Result<Reply, Error> {
        self.client
            .put(Self::path(path))
            .body(body(document), SCIM_JSON)
            .send()
            .await
    }

    /// `PATCH` with `operations` (each `{"op", "path"?, "value"?}`) in a `PatchOp` message.
    pub async fn patch(&self, path: &str, operations: &[Value]) -> Result<Reply, Error> {
        let document = json!({ "schemas": [PATCH_OP], "Operations": operations });
        self.client
            .patch(Self::path(path))
            .body(body(&document), SCIM_JSON)
            .send()
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<Reply, Error> {
        self.client.delete(Self::path(path)).send().await
    }

    /// The resources of a list answer to `GET /scim/v2/{path}`, when it succeeds.
    pub async fn list(&self, path: &str) -> Result<Vec<Value>, Error> {
        let reply = self.get(path).await?.success()?;
        Ok(reply.value()["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}
