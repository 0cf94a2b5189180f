//! `/v1/clusters`: the Postgres clusters tenants are placed on. Every route is declared
//! `access = Operator`.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::service::{self, ClusterView, NewCluster};
use crate::context::ControlPlane;

pub fn routes() -> Vec<Route> {
    // `rebalance` before `/v1/clusters/{name}`, which would take its path (the name is
    // reserved, `ClusterName`).
    routes![
        rebalance,
        list_clusters,
        add_cluster,
        get_cluster,
        drain_cluster,
        undrain_cluster,
        make_default,
        remove_cluster,
        pin_plan,
        unpin_plan,
    ]
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"apply": false})))]
struct RebalanceBody {
    /// Run the planned moves (one after another) instead of only planning them.
    apply: bool,
}

#[route(
    post, "/v1/clusters/rebalance",
    summary = "Plan, or run, the moves that even out the clusters",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    request_body = RebalanceBody,
    responses(
        (status = 200, description = "The plan, and with `apply` the moves run", body = super::rebalance::Rebalance),
        (status = 409, description = "`tenant_busy`, `move_in_progress`: a move of the plan could not start; the moves before it are done")))]
async fn rebalance(
    control: web::Data<ControlPlane>,
    body: Json<RebalanceBody>,
) -> Result<HttpResponse, ApiError> {
    let progress = |line: &str| tracing::info!("{line}");
    let plan = super::rebalance::rebalance(&control, body.apply, &progress).await?;
    Ok(HttpResponse::Ok().json(plan))
}

/// What `GET /v1/clusters` answers.
#[derive(Serialize, utoipa::ToSchema)]
struct ClusterList {
    clusters: Vec<ClusterView>,
}

#[route(
    get, "/v1/clusters",
    summary = "List the Postgres clusters",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    responses((status = 200, description = "Every registered cluster, with its tenants and whether it answers now", body = ClusterList)))]
async fn list_clusters(control: web::Data<ControlPlane>) -> Result<HttpResponse, ApiError> {
    let clusters = service::list(&control).await?;
    Ok(HttpResponse::Ok().json(ClusterList { clusters }))
}

#[route(
    post, "/v1/clusters",
    summary = "Register a Postgres cluster",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    request_body = NewCluster,
    responses(
        (status = 201, description = "Registered and prepared", body = ClusterView),
        (status = 409, description = "`cluster_exists`"),
        (status = 422, description = "`cluster_unreachable`: nothing was stored")))]
async fn add_cluster(
    control: web::Data<ControlPlane>,
    body: Json<NewCluster>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(service::add(&control, &body).await?))
}

#[route(
    get, "/v1/clusters/{name}",
    summary = "Get a Postgres cluster",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    responses((status = 200, description = "The cluster", body = ClusterView)))]
async fn get_cluster(
    control: web::Data<ControlPlane>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::get(&control, &name).await?))
}

#[route(
    post, "/v1/clusters/{name}/drain",
    summary = "Stop placing new tenants on a cluster",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    responses(
        (status = 200, description = "Drained; its tenants stay where they are", body = ClusterView),
        (status = 409, description = "`cluster_is_default`: make another cluster default first")))]
async fn drain_cluster(
    control: web::Data<ControlPlane>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::set_drained(&control, &name, true).await?))
}

#[route(
    post, "/v1/clusters/{name}/undrain",
    summary = "Place new tenants on a cluster again",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    responses((status = 200, description = "Takes new tenants again", body = ClusterView)))]
async fn undrain_cluster(
    control: web::Data<ControlPlane>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::set_drained(&control, &name, false).await?))
}

#[route(
    post, "/v1/clusters/{name}/default",
    summary = "Make a cluster the default",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    responses(
        (status = 200, description = "The default cluster now", body = ClusterView),
        (status = 409, description = "`cluster_drained`")))]
async fn make_default(
    control: web::Data<ControlPlane>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::set_default(&control, &name).await?))
}

#[route(
    delete, "/v1/clusters/{name}",
    summary = "Forget a cluster",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    responses(
        (status = 204, description = "Forgotten (its databases are left alone)"),
        (status = 409, description = "`cluster_in_use`: tenants are placed on it, a plan is pinned to it or a move under way names it, or it is the default or the catalog's")))]
async fn remove_cluster(
    control: web::Data<ControlPlane>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service::remove(&control, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[route(
    put, "/v1/clusters/{name}/plans/{plan}",
    summary = "Pin a plan's new tenants to a cluster",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    responses(
        (status = 200, description = "The cluster, with its pinned plans", body = ClusterView),
        (status = 400, description = "`unknown_plan`"),
        (status = 404, description = "`cluster_not_found`"),
        (status = 409, description = "`cluster_drained`")))]
async fn pin_plan(
    control: web::Data<ControlPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, plan) = path.into_inner();
    Ok(HttpResponse::Ok().json(service::pin_plan(&control, &name, &plan).await?))
}

#[route(
    delete, "/v1/clusters/{name}/plans/{plan}",
    summary = "Unpin a plan from a cluster",
    access = Operator,
    rate = Unlimited,
    tag = "clusters",
    responses(
        (status = 204, description = "Unpinned: the plan's new tenants are placed by the policy"),
        (status = 400, description = "`unknown_plan`"),
        (status = 404, description = "`plan_not_pinned`: the plan is not pinned to this cluster")))]
async fn unpin_plan(
    control: web::Data<ControlPlane>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, plan) = path.into_inner();
    service::unpin_plan(&control, &name, &plan).await?;
    Ok(HttpResponse::NoContent().finish())
}
