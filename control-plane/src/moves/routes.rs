//! The operator REST API for moving a tenant: `POST /v1/tenants/{slug}/move` and
//! `POST /v1/tenants/{slug}/move/cancel`. The CLI (`tenant move`) runs the same service.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use shared::error::ApiError;
use shared::json_body::Json;
use shared::routes::{route, routes, Route};

use super::service::{self, MoveOptions};
use crate::context::ControlPlane;
use crate::tenants::routes::parse_slug;

pub fn routes() -> Vec<Route> {
    routes![move_tenant, cancel_move]
}

/// Longest grace period a move may keep its source for (a week).
const MAX_GRACE_SECONDS: u64 = 7 * 24 * 3600;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"to": "eu-2", "grace_seconds": 60})))]
struct MoveBody {
    /// The cluster to move the tenant to (`GET /v1/clusters`).
    to: String,
    /// How long the source schema is kept after the switch (default 60, at most a week).
    grace_seconds: Option<u64>,
}

#[route(
    post, "/v1/tenants/{slug}/move",
    summary = "Move a tenant to another cluster, or finish a move cut short",
    access = Operator,
    audit = event("tenant.move", "tenant").id_from("slug"),
    rate = Unlimited,
    tag = "tenants",
    request_body = MoveBody,
    responses(
        (status = 200, description = "Switched (the source is kept until `drop_after`) or done", body = crate::moves::service::MoveReport),
        (status = 400, description = "`unknown_cluster`, `invalid_input`"),
        (status = 409, description = "`same_cluster`; `tenant_not_movable`: only an active tenant moves; `move_in_progress`: a move to another cluster is under way; `cluster_drained`; `tenant_busy`: another run holds the tenant"),
        (status = 422, description = "`cluster_unreachable`: the target does not answer")))]
async fn move_tenant(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
    body: Json<MoveBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let grace = body
        .grace_seconds
        .unwrap_or(service::DEFAULT_GRACE.as_secs());
    if grace > MAX_GRACE_SECONDS {
        return Err(ApiError::bad_request(
            "invalid_input",
            format!("grace_seconds is at most {MAX_GRACE_SECONDS}"),
        ));
    }
    let options = MoveOptions {
        grace: std::time::Duration::from_secs(grace),
        interrupt_after: None,
    };
    let slug = parse_slug(&slug)?;
    let progress = |line: &str| tracing::info!(tenant = %slug, "{line}");
    let report = service::move_tenant(&control, &slug, &body.to, &options, &progress).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[route(
    post, "/v1/tenants/{slug}/move/cancel",
    summary = "Cancel a move that has not switched",
    access = Operator,
    audit = event("tenant.move.cancel", "tenant").id_from("slug"),
    rate = Unlimited,
    tag = "tenants",
    responses(
        (status = 200, description = "Cancelled: the tenant stays where it was and takes writes again", body = crate::moves::service::MoveReport),
        (status = 409, description = "`no_move`: no move of this tenant is before its switch; `tenant_busy`")))]
async fn cancel_move(
    control: web::Data<ControlPlane>,
    slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let report = service::cancel(&control, &parse_slug(&slug)?).await?;
    Ok(HttpResponse::Ok().json(report))
}
