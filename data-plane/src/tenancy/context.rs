//! The request's context: which tenant, which request, from where. Built once per request by
//! an extractor and passed explicitly to everything that touches tenant data, so no query can
//! run without a tenant.
//!
//! Only `active` tenants get a context. Suspended tenants get 403 `tenant_suspended`; tenants
//! still provisioning, failed or being deleted are not served at all (404, as if absent).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use shared::error::ApiError;
use shared::http::request_id_of;
use shared::tenant::TenantStatus;

use uuid::Uuid;

use super::registry::ServedTenant;
use super::resolve::{tenant_key, TENANT_HEADER};
use crate::state::DataPlane;
use crate::tokens::access::{self, Restriction};

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub tenant: Arc<ServedTenant>,
    pub request_id: String,
    pub source_ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// Who is calling, when the request carries a valid access token of this tenant.
    pub principal: Option<Arc<Principal>>,
    /// The API key the request presented, when it carries a valid key of this tenant instead
    /// of an access token.
    pub api_key: Option<Arc<ApiKeyPrincipal>>,
}

/// A live API key of this tenant, presented with the request.
#[derive(Debug, Clone)]
pub struct ApiKeyPrincipal {
    pub key_id: Uuid,
    pub name: String,
    /// Permission patterns (`records:read`, `telemetry:write`): all the key may do.
    pub scopes: Vec<String>,
    /// The user who created the key.
    pub created_by: Option<Uuid>,
}

/// A signed-in user, from a verified access token whose session is live.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub roles: Vec<String>,
    pub amr: Vec<String>,
    pub restrictions: Vec<Restriction>,
}

impl RequestContext {
    /// The caller, even one whose session is restricted (must change its password or enrol
    /// in MFA first): for the endpoints that let it do so.
    pub fn signed_in(&self) -> Result<&Principal, ApiError> {
        self.principal.as_deref().ok_or_else(|| {
            ApiError::unauthorized(
                "sign in first: send an access token as `Authorization: Bearer …`",
            )
        })
    }

    /// The caller, with no restriction pending.
    pub fn authenticated(&self) -> Result<&Principal, ApiError> {
        let principal = self.signed_in()?;
        refuse_restricted(principal)?;
        Ok(principal)
    }
}

/// Paths a restricted session may call: where it lifts its restriction (password change, MFA
/// enrolment), sees itself, manages its sessions and signs out. Every other path refuses it
/// in the extractor, so an endpoint cannot forget to.
fn open_to_restricted_sessions(path: &str) -> bool {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    path == "/v1/me"
        || under("/v1/me/password")
        || under("/v1/me/mfa")
        || under("/v1/me/sessions")
        || under("/v1/auth")
        || under("/v1/.well-known")
}

fn refuse_restricted(principal: &Principal) -> Result<(), ApiError> {
    match principal.restrictions.first() {
        None => Ok(()),
        Some(Restriction::PasswordChange) => Err(ApiError::forbidden(
            "password_change_required",
            "the password has expired: change it with POST /v1/me/password",
        )),
        Some(Restriction::MfaEnrollment) => Err(ApiError::forbidden(
            "mfa_enrollment_required",
            "this tenant requires MFA: set it up under /v1/me/mfa",
        )),
    }
}

fn invalid_token(reason: &dyn std::fmt::Display) -> ApiError {
    tracing::debug!(%reason, "access token refused");
    ApiError::new(
        actix_web::http::StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the access token is invalid or expired",
    )
}

/// Verifies a bearer token for `tenant` and checks its session is live.
async fn principal(
    state: &DataPlane,
    tenant: &ServedTenant,
    authorization: &str,
) -> Result<Principal, ApiError> {
    let token = authorization
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| invalid_token(&"not a bearer token"))?;
    let keys = state
        .signing_keys
        .for_tenant(&state.tenant_db, &state.data_keys, &tenant.scope)
        .await
        .map_err(|error| ApiError::internal(&error))?;
    let issuer = access::issuer(
        &state.config.public_scheme,
        tenant.tenant.slug.as_str(),
        &state.config.base_domain,
    );
    let claims = state
        .verified_tokens
        .verify(&keys, token, tenant.tenant.id, &issuer)
        .await
        .map_err(|rejection| invalid_token(&rejection))?;
    let live = state
        .sessions
        .is_live(
            &state.tenant_db,
            &tenant.scope,
            claims.sid,
            claims.sub,
            state.clock.now(),
        )
        .await
        .map_err(|error| ApiError::internal(&error))?;
    if !live {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "session_ended",
            "the session has ended; sign in again",
        ));
    }
    Ok(Principal {
        user_id: claims.sub,
        session_id: claims.sid,
        roles: claims.roles.clone(),
        amr: claims.amr.clone(),
        restrictions: claims.restr.clone(),
    })
}

impl FromRequest for RequestContext {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<DataPlane>>().cloned();
        let host = req
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let header = req
            .headers()
            .get(TENANT_HEADER)
            .map(|value| value.to_str().map(str::to_owned));
        let request_id = request_id_of(req);
        let restricted_allowed = open_to_restricted_sessions(req.path());
        let source_ip = req.peer_addr().map(|address| address.ip());
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let authorization = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(|value| value.to_str().map(str::to_owned));
        let request = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(&"data plane state missing"))?;
            let header = header
                .transpose()
                .map_err(|_| ApiError::bad_request("invalid_header", "X-Tenant must be ASCII"))?;
            let key = tenant_key(
                host.as_deref(),
                header.as_deref(),
                &state.config.base_domain,
            )?;
            let tenant = state.registry.lookup(&key).await?;
            match tenant {
                Some(tenant) if tenant.tenant.status == TenantStatus::Active => {
                    let principal = match authorization {
                        None => None,
                        Some(Err(_)) => return Err(invalid_token(&"non-ASCII header")),
                        Some(Ok(header)) => {
                            Some(Arc::new(principal(&state, &tenant, &header).await?))
                        }
                    };
                    if let Some(principal) = principal.as_deref() {
                        if !restricted_allowed {
                            refuse_restricted(principal)?;
                        }
                    }
                    let context = RequestContext {
                        tenant,
                        request_id,
                        source_ip,
                        user_agent,
                        principal,
                        api_key: None,
                    };
                    // Each key has its own limit besides the tenant's (`rate_limit`).
                    if let Some(key) = context.api_key.as_deref() {
                        crate::rate_limit::middleware::admit_api_key(
                            &state,
                            &request,
                            &context.tenant.quotas,
                            key.key_id,
                        )
                        .await?;
                    }
                    Ok(context)
                }
                Some(tenant) if tenant.tenant.status == TenantStatus::Suspended => {
                    Err(ApiError::forbidden(
                        "tenant_suspended",
                        format!("tenant '{}' is suspended", tenant.tenant.slug),
                    ))
                }
                _ => Err(ApiError::not_found("tenant_not_found", "no such tenant")),
            }
        })
    }
}
