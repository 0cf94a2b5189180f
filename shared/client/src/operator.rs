//! The control plane's operator API (`/v1/tenants…`, `/v1/clusters…`), with an operator
//! token.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{resource_path, Call, Client, Error, Method, Secret};

/// A client of a control plane, as a platform operator.
#[derive(Clone)]
pub struct Operator {
    client: Client,
}

/// A tenant as operators see it.
#[derive(Debug, Clone, Deserialize)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// `provisioning`, `active`, `suspended`, `deleting`, `deleted`.
    pub status: String,
    pub plan: String,
    pub schema: String,
    pub role: String,
    pub cluster: String,
    /// A move to another cluster is refusing its writes right now.
    #[serde(default)]
    pub moving: bool,
    pub template: String,
    pub template_version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The tenant's host on the base domain (on one tenant's answers).
    #[serde(default)]
    pub host: Option<String>,
    /// The quotas in force (plan defaults with the tenant's overrides).
    #[serde(default)]
    pub quotas: Option<Value>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub provisioning: Option<Value>,
    /// On creation with an admin email: the first admin's activation token, shown once.
    #[serde(default)]
    pub activation_token: Option<Secret>,
}

/// A tenant to create.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewTenant {
    pub slug: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The first admin, who gets an activation mail (its token is also in the answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_email: Option<String>,
    /// The cluster to place it on (`clusters().list()`); the default cluster when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// A change to a tenant: name, plan, or status (`suspended` / `active`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TenantPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A page of `GET /v1/tenants`.
#[derive(Debug, Deserialize)]
pub struct TenantPage {
    pub tenants: Vec<Tenant>,
    /// The `after` of the next page; `None` on the last.
    pub next_after: Option<String>,
}

/// `/v1/tenants`.
pub struct Tenants<'o> {
    client: &'o Client,
}

impl Operator {
    /// The operator API at `base_url`, with the operator token `token`.
    pub fn new(base_url: impl Into<String>, token: impl Into<String>) -> Self {
        Self::with_http(reqwest::Client::new(), base_url, token)
    }

    pub fn with_http(
        http: reqwest::Client,
        base_url: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        Self {
            client: Client::with_http(http, base_url).with_bearer(token),
        }
    }

    pub fn tenants(&self) -> Tenants<'_> {
        Tenants {
            client: &self.client,
        }
    }

    pub fn clusters(&self) -> Clusters<'_> {
        Clusters {
            client: &self.client,
        }
    }

    /// A request to any operator route, with the operator token.
    pub fn call(&self, method: Method, path: impl Into<String>) -> Call<'_> {
        self.client.call(method, path)
    }

    /// The underlying client (the token as a bearer credential).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Tenants<'_> {
    fn tenant_path(slug: &str, rest: &[&str]) -> String {
        resource_path("/v1/tenants", slug, rest)
    }

    /// Creates and provisions a tenant.
    pub async fn create(&self, tenant: &NewTenant) -> Result<Tenant, Error> {
        self.client.post("/v1/tenants").json(tenant).ok().await
    }

    /// `GET /v1/tenants`: one page of the tenants matching `search` (a slug prefix or part of
    /// a name; "" for all) after slug `after`, at most `limit`.
    pub async fn page(&self, search: &str, after: &str, limit: u32) -> Result<TenantPage, Error> {
        let query = crate::query(&[
            ("q", Some(search.to_owned())),
            ("after", Some(after.to_owned())),
            ("limit", Some(limit.to_string())),
        ]);
        self.client.get(format!("/v1/tenants{query}")).ok().await
    }

    /// Every tenant, page after page.
    pub async fn list(&self) -> Result<Vec<Tenant>, Error> {
        let mut tenants = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.page("", &after, 1000).await?;
            tenants.extend(page.tenants);
            match page.next_after {
                Some(next) => after = next,
                None => return Ok(tenants),
            }
        }
    }

    pub async fn get(&self, slug: &str) -> Result<Tenant, Error> {
        self.client.get(Self::tenant_path(slug, &[])).ok().await
    }

    pub async fn update(&self, slug: &str, patch: &TenantPatch) -> Result<Tenant, Error> {
        self.client
            .patch(Self::tenant_path(slug, &[]))
            .json(patch)
            .ok()
            .await
    }

    /// Deletes the tenant: its schema, role and catalog rows.
    pub async fn delete(&self, slug: &str) -> Result<(), Error> {
        self.client
            .delete(Self::tenant_path(slug, &[]))
            .done()
            .await
    }

    /// Finishes a provisioning that stopped part way (a no-op for an active tenant).
    pub async fn provision(&self, slug: &str) -> Result<Value, Error> {
        self.client
            .post(Self::tenant_path(slug, &["provision"]))
            .ok()
            .await
    }

    /// The quotas in force.
    pub async fn quotas(&self, slug: &str) -> Result<Value, Error> {
        self.client
            .get(Self::tenant_path(slug, &["quotas"]))
            .ok()
            .await
    }

    /// Overrides quotas: a number sets one, `null` resets it to the plan's; the quotas now.
    pub async fn set_quotas(&self, slug: &str, patch: &Value) -> Result<Value, Error> {
        self.client
            .patch(Self::tenant_path(slug, &["quotas"]))
            .json(patch)
            .ok()
            .await
    }

    /// Registers a custom domain for the tenant.
    pub async fn add_domain(&self, slug: &str, domain: &str) -> Result<Tenant, Error> {
        self.client
            .post(Self::tenant_path(slug, &["domains"]))
            .json(&serde_json::json!({ "domain": domain }))
            .ok()
            .await
    }

    pub async fn remove_domain(&self, slug: &str, domain: &str) -> Result<(), Error> {
        self.client
            .delete(Self::tenant_path(slug, &["domains", domain]))
            .done()
            .await
    }

    /// The tenant's data as JSON (an export for the tenant, or before deletion).
    pub async fn export(&self, slug: &str) -> Result<Value, Error> {
        self.client
            .get(Self::tenant_path(slug, &["export"]))
            .ok()
            .await
    }

    /// Moves the tenant to cluster `to`, keeping the source `grace_seconds` after the switch
    /// (the server's default when `None`); also finishes a move to `to` cut short.
    pub async fn move_to(
        &self,
        slug: &str,
        to: &str,
        grace_seconds: Option<u64>,
    ) -> Result<MoveReport, Error> {
        let mut body = serde_json::json!({ "to": to });
        if let Some(grace) = grace_seconds {
            body["grace_seconds"] = grace.into();
        }
        self.client
            .post(Self::tenant_path(slug, &["move"]))
            .json(&body)
            .ok()
            .await
    }

    /// Cancels a move of the tenant that has not switched.
    pub async fn cancel_move(&self, slug: &str) -> Result<MoveReport, Error> {
        self.client
            .post(Self::tenant_path(slug, &["move", "cancel"]))
            .ok()
            .await
    }
}

/// What a move did.
#[derive(Debug, Clone, Deserialize)]
pub struct MoveReport {
    pub tenant: String,
    pub source: String,
    pub target: String,
    /// `copying`, `frozen`, `switched`, `done` or `cancelled`.
    pub step: String,
    pub tables: usize,
    /// Rows written to the target before the freeze (the bulk copy and a first catch-up).
    pub rows: u64,
    /// Rows written since, copied again in the freeze.
    pub caught_up: u64,
    pub freeze_ms: Option<u64>,
    pub total_ms: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub drop_after: Option<OffsetDateTime>,
}

/// A Postgres cluster tenants are placed on.
#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub description: String,
    /// `catalog`, `env:VARIABLE` or `file:PATH`: where each plane reads its URL.
    pub url: String,
    pub default: bool,
    pub drained: bool,
    pub tenants: i64,
    /// Plans pinned to it.
    #[serde(default)]
    pub plans: Vec<String>,
    pub reachable: bool,
    pub database_bytes: Option<i64>,
    pub connections: Option<i64>,
}

/// A cluster to register: a name and exactly one of `url_env` and `url_file`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewCluster {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
}

#[derive(Deserialize)]
struct ClusterList {
    clusters: Vec<Cluster>,
}

/// `/v1/clusters`.
pub struct Clusters<'o> {
    client: &'o Client,
}

impl Clusters<'_> {
    fn cluster_path(name: &str, rest: &[&str]) -> String {
        resource_path("/v1/clusters", name, rest)
    }

    /// Registers and prepares a cluster.
    pub async fn add(&self, cluster: &NewCluster) -> Result<Cluster, Error> {
        self.client.post("/v1/clusters").json(cluster).ok().await
    }

    pub async fn list(&self) -> Result<Vec<Cluster>, Error> {
        let list: ClusterList = self.client.get("/v1/clusters").ok().await?;
        Ok(list.clusters)
    }

    pub async fn get(&self, name: &str) -> Result<Cluster, Error> {
        self.client.get(Self::cluster_path(name, &[])).ok().await
    }

    /// Places no new tenants on the cluster.
    pub async fn drain(&self, name: &str) -> Result<Cluster, Error> {
        self.client
            .post(Self::cluster_path(name, &["drain"]))
            .ok()
            .await
    }

    pub async fn undrain(&self, name: &str) -> Result<Cluster, Error> {
        self.client
            .post(Self::cluster_path(name, &["undrain"]))
            .ok()
            .await
    }

    pub async fn set_default(&self, name: &str) -> Result<Cluster, Error> {
        self.client
            .post(Self::cluster_path(name, &["default"]))
            .ok()
            .await
    }

    /// Forgets a cluster no tenant is placed on.
    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        self.client
            .delete(Self::cluster_path(name, &[]))
            .done()
            .await
    }

    /// Pins `plan`'s new tenants to cluster `name`.
    pub async fn pin(&self, name: &str, plan: &str) -> Result<Cluster, Error> {
        self.client
            .put(Self::cluster_path(name, &["plans", plan]))
            .ok()
            .await
    }

    /// Unpins `plan` from cluster `name`.
    pub async fn unpin(&self, name: &str, plan: &str) -> Result<(), Error> {
        self.client
            .delete(Self::cluster_path(name, &["plans", plan]))
            .done()
            .await
    }

    /// The moves that would even out the clusters (`apply` false), or runs them.
    pub async fn rebalance(&self, apply: bool) -> Result<Value, Error> {
        self.client
            .post("/v1/clusters/rebalance")
            .json(&serde_json::json!({ "apply": apply }))
            .ok()
            .await
    }
}
