//! The tenant console's directory page (SCIM 2.0): what a tenant admin gives their directory
//! (Okta, Entra ID, …) — the SCIM base URL and a token made for it — and the directory's groups,
//! each mapped to the role its members hold. The mapping goes through the same service as
//! `PUT /v1/admin/scim/groups/{id}/role` (its checks, its audit action).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use shared::console::{refused, see_other, Csrf, Fields};
use shared::error::ApiError;
use shared::routes::{route, routes, Route};
use uuid::Uuid;

use super::page::{render, Frame};
use crate::scim::groups::{self, GroupMapping};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use crate::tokens::access;

pub fn routes() -> Vec<Route> {
    routes![directory_page, map_group_role]
}

/// The name and scope of the API key the page makes for a directory.
const TOKEN_NAME: &str = "directory";

#[derive(Template)]
#[template(path = "console/directory.html")]
struct DirectoryPage {
    frame: Frame,
    scim_url: String,
    token_name: &'static str,
    token_scope: &'static str,
    groups: Vec<GroupMapping>,
    /// Roles a group may give (every role but `owner`).
    roles: Vec<String>,
    /// A refused mapping: the group and why.
    error: Option<(Uuid, String)>,
}

async fn directory_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    status: StatusCode,
    error: Option<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (frame, _) = Frame::signed_in(state, context, csrf, context.signed_in()?).await?;
    let base = access::issuer(
        &state.config.public_scheme,
        context.tenant.tenant.slug.as_str(),
        &state.config.base_domain,
    );
    let roles = super::page::role_names(state, context)
        .await?
        .into_iter()
        .filter(|role| role != crate::users::OWNER)
        .collect();
    let page = DirectoryPage {
        frame,
        scim_url: format!("{base}{}", shared::routes::SCIM_PREFIX),
        token_name: TOKEN_NAME,
        token_scope: crate::scim::MANAGE,
        groups: groups::mappings(state, context).await?,
        roles,
        error,
    };
    render(status, &page)
}

#[route(get, "/console/admin/directory", access = Permission(crate::scim::MANAGE), rate = Read)]
async fn directory_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    directory_answer(&state, &context, &csrf, StatusCode::OK, None).await
}

/// Maps a directory group to a role (empty: to none). A refusal (an unknown role, one beyond
/// the admin's own permissions) shows the page again with the reason beside that group.
#[route(post, "/console/admin/directory/groups/{id}/role",
    access = Permission(crate::users::MANAGE),
    audit = event("scim.groups.map_role", "group").id_from("id"),
    rate = Write)]
async fn map_group_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id =
        Uuid::parse_str(&path).map_err(|_| ApiError::not_found("not_found", "no such group"))?;
    let role = Some(Fields::parse(&body).one("role").trim().to_owned()).filter(|r| !r.is_empty());
    let caller = context.authenticated()?;
    match groups::map_role(&state, &context, caller, id, role).await {
        Ok(_) => Ok(see_other("/console/admin/directory")),
        Err(error) => {
            let (status, message) = refused(error)?;
            directory_answer(&state, &context, &csrf, status, Some((id, message))).await
        }
    }
}
