//! HTTP for a user's own sessions: `GET /v1/me/sessions`, `DELETE /v1/me/sessions/{id}`,
//! and `POST /v1/auth/logout` (ends the calling session).

use actix_web::{web, HttpResponse};
use shared::error::ApiError;
use shared::routes::{route, routes, Route};
use uuid::Uuid;

use super::{service, store};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

pub fn routes() -> Vec<Route> {
    routes![list_sessions, delete_session, logout,]
}

/// The caller's live sessions, as `GET /v1/me/sessions` answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct SessionList {
    sessions: Vec<store::SessionView>,
}

#[route(
    get, "/v1/me/sessions",
    summary = "List my sessions",
    access = RestrictedOk,
    rate = Read,
    tag = "me",
    responses((status = 200, description = "The caller's live sessions", body = SessionList)))]
async fn list_sessions(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let sessions = service::list(&state, &context, context.signed_in()?).await?;
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

#[route(
    delete, "/v1/me/sessions/{id}",
    summary = "End one of my sessions",
    access = RestrictedOk,
    audit = event("session.revoke", "session").id_from("id"),
    rate = Write,
    tag = "me",
    responses((status = 204, description = "Ended")))]
async fn delete_session(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session_id = Uuid::parse_str(&path)
        .map_err(|_| ApiError::not_found("session_not_found", "no such session"))?;
    if !service::end(
        &state,
        &context,
        context.signed_in()?,
        session_id,
        "revoked_by_user",
    )
    .await?
    {
        return Err(ApiError::not_found("session_not_found", "no such session"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[route(
    post, "/v1/auth/logout",
    summary = "Sign out",
    access = RestrictedOk,
    audit = event("auth.logout", "session"),
    rate = Write,
    tag = "auth",
    responses((status = 204, description = "Signed out: the caller's session is ended")))]
async fn logout(
    context: RequestContext,
    state: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let principal = context.signed_in()?;
    service::end(&state, &context, principal, principal.session_id, "logout").await?;
    Ok(HttpResponse::NoContent().finish())
}
