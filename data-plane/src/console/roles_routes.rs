//! The tenant console's roles page: built-in and custom roles, and a custom role's
//! permissions picked from the permissions the routes of this plane check (the route table is
//! the catalogue, so a new route's permission shows up here by itself), plus any other
//! pattern typed in (`records.invoices:read`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use shared::error::ApiError;
use shared::routes::{route, routes, Route};

use super::page::{refused, render, Fields, Frame};
use crate::roles::service::{self as roles, RoleDefinition, RoleName};
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use shared::console::{see_other, Csrf};

pub fn routes() -> Vec<Route> {
    routes![roles_page, create_role, role_page, update_role, delete_role]
}

/// Every permission a route of this plane checks, `{collection}` widened to all collections
/// (`records.{collection}:read` → `records:read`), sorted; made once per process.
pub fn permission_catalogue() -> Vec<String> {
    static CATALOGUE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    CATALOGUE.get_or_init(catalogue_of_routes).clone()
}

fn catalogue_of_routes() -> Vec<String> {
    let mut permissions: Vec<String> = crate::route_table::table()
        .iter()
        .filter_map(|route| route.info.policy.access.permission())
        .map(|permission| match permission.split_once(':') {
            Some((resource, action)) if resource.contains('{') => {
                let family = resource.split('.').next().unwrap_or(resource);
                format!("{family}:{action}")
            }
            _ => permission.to_owned(),
        })
        .collect();
    permissions.sort();
    permissions.dedup();
    permissions
}

struct RoleRow {
    name: String,
    description: String,
    permissions: String,
    includes: String,
    built_in: bool,
}

/// The role form: what each checkbox says, and what was typed.
struct RoleForm {
    name: String,
    description: String,
    /// Catalogue permissions and whether each is picked.
    permissions: Vec<(String, bool)>,
    /// Picked patterns that are not in the catalogue, one per line.
    other_permissions: String,
    /// Roles that may be included and whether each is.
    includes: Vec<(String, bool)>,
}

impl RoleForm {
    fn new(
        name: &str,
        description: &str,
        picked: &[String],
        included: &[String],
        roles: &[String],
    ) -> Self {
        let catalogue = permission_catalogue();
        let other = picked
            .iter()
            .filter(|permission| !catalogue.contains(permission))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            permissions: catalogue
                .into_iter()
                .map(|permission| {
                    let on = picked.contains(&permission);
                    (permission, on)
                })
                .collect(),
            other_permissions: other,
            includes: roles
                .iter()
                .filter(|role| role.as_str() != name)
                .map(|role| (role.clone(), included.contains(role)))
                .collect(),
        }
    }

    fn definition(fields: &Fields) -> RoleDefinition {
        let mut permissions = fields.all("permission");
        permissions.extend(
            fields
                .one("other_permissions")
                .split_whitespace()
                .map(str::to_owned),
        );
        RoleDefinition {
            description: fields.one("description").trim().to_owned(),
            permissions,
            includes: fields.all("include"),
        }
    }
}

#[derive(Template)]
#[template(path = "console/roles.html")]
struct RolesPage {
    frame: Frame,
    roles: Vec<RoleRow>,
    form: RoleForm,
    error: Option<String>,
}

async fn roles_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    status: StatusCode,
    typed: Option<&Fields>,
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let (frame, _) = Frame::signed_in(state, context, csrf, context.signed_in()?).await?;
    let all = roles::list(state, context).await?;
    let names: Vec<String> = all.iter().map(|role| role.name.clone()).collect();
    let form = match typed {
        Some(fields) => {
            let definition = RoleForm::definition(fields);
            RoleForm::new(
                fields.one("name"),
                &definition.description,
                &definition.permissions,
                &definition.includes,
                &names,
            )
        }
        None => RoleForm::new("", "", &[], &[], &names),
    };
    let roles = all
        .into_iter()
        .map(|role| RoleRow {
            name: role.name,
            description: role.description,
            permissions: role.permissions.join(" "),
            includes: role.includes.join(", "),
            built_in: role.built_in,
        })
        .collect();
    render(
        status,
        &RolesPage {
            frame,
            roles,
            form,
            error,
        },
    )
}

#[route(get, "/console/admin/roles", access = Permission(crate::roles::READ), rate = Read)]
async fn roles_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
) -> Result<HttpResponse, ApiError> {
    roles_answer(&state, &context, &csrf, StatusCode::OK, None, None).await
}

#[route(post, "/console/admin/roles",
    access = Permission(crate::roles::MANAGE),
    audit = event("roles.create", "role"),
    rate = Write)]
async fn create_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let caller = context.authenticated()?;
    let saved = match RoleName::parse(fields.one("name").trim()) {
        Ok(name) => roles::save(
            &state,
            &context,
            caller,
            &name,
            &RoleForm::definition(&fields),
            true,
        )
        .await
        .map(|_| name),
        Err(error) => Err(error),
    };
    match saved {
        Ok(name) => Ok(see_other(&format!(
            "/console/admin/roles/{}",
            name.as_str()
        ))),
        Err(error) => {
            let (status, message) = refused(error)?;
            roles_answer(
                &state,
                &context,
                &csrf,
                status,
                Some(&fields),
                Some(message),
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "console/role.html")]
struct RolePage {
    frame: Frame,
    built_in: bool,
    effective: String,
    form: RoleForm,
    error: Option<String>,
}

async fn role_answer(
    state: &DataPlane,
    context: &RequestContext,
    csrf: &Csrf,
    name: &str,
    status: StatusCode,
    typed: Option<&Fields>,
    error: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let (frame, _) = Frame::signed_in(state, context, csrf, context.signed_in()?).await?;
    let detail = roles::get(state, context, &RoleName::parse(name)?).await?;
    let names: Vec<String> = roles::list(state, context)
        .await?
        .into_iter()
        .map(|role| role.name)
        .collect();
    let form = match typed {
        Some(fields) => {
            let definition = RoleForm::definition(fields);
            RoleForm::new(
                name,
                &definition.description,
                &definition.permissions,
                &definition.includes,
                &names,
            )
        }
        None => RoleForm::new(
            name,
            &detail.role.description,
            &detail.role.permissions,
            &detail.role.includes,
            &names,
        ),
    };
    render(
        status,
        &RolePage {
            frame,
            built_in: detail.role.built_in,
            effective: detail.effective_permissions.join(" "),
            form,
            error,
        },
    )
}

#[route(get, "/console/admin/roles/{name}", access = Permission(crate::roles::READ), rate = Read)]
async fn role_page(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    role_answer(&state, &context, &csrf, &path, StatusCode::OK, None, None).await
}

#[route(post, "/console/admin/roles/{name}",
    access = Permission(crate::roles::MANAGE),
    audit = event("roles.update", "role").id_from("name"),
    rate = Write)]
async fn update_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    csrf: Csrf,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields::parse(&body);
    let name = RoleName::parse(&path)?;
    let caller = context.authenticated()?;
    let definition = RoleForm::definition(&fields);
    match roles::save(&state, &context, caller, &name, &definition, false).await {
        Ok(_) => Ok(see_other(&format!(
            "/console/admin/roles/{}",
            name.as_str()
        ))),
        Err(error) => {
            let (status, message) = refused(error)?;
            role_answer(
                &state,
                &context,
                &csrf,
                &path,
                status,
                Some(&fields),
                Some(message),
            )
            .await
        }
    }
}

#[route(post, "/console/admin/roles/{name}/delete",
    access = Permission(crate::roles::MANAGE),
    audit = event("roles.delete", "role").id_from("name"),
    rate = Write)]
async fn delete_role(
    context: RequestContext,
    state: web::Data<DataPlane>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = RoleName::parse(&path)?;
    roles::delete(&state, &context, &name).await?;
    Ok(see_other("/console/admin/roles"))
}
