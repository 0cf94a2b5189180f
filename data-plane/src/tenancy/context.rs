//! The request's context: which tenant, which request, from where. Built once per request by
//! an extractor and passed explicitly to everything that touches tenant data, so no query can
//! run without a tenant.
//!
//! Credentials: an access token (`Authorization: Bearer <JWT>`) makes a [`Principal`]; an API
//! key (`X-API-Key: tnt_…`, or `Authorization: Bearer tnt_…`) makes an [`ApiKeyPrincipal`].
//! A request carrying both is refused (400), so no request ever has both. The source address
//! a key's allow-list is checked against is the TCP peer's (no proxy header is trusted yet).
//!
//! Only `active` tenants get a context. Suspended tenants get 403 `tenant_suspended`; tenants
//! still provisioning, failed or being deleted are not served at all (404, as if absent). While
//! a move to another cluster freezes a tenant's writes, its state-changing requests get 503
//! `tenant_moving` (its reads are served).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use shared::error::ApiError;
use shared::http::request_id_of;
use shared::tenant::TenantStatus;
use shared::tenant_context::TenantScope;

use uuid::Uuid;

use super::registry::ServedTenant;
use super::resolve::{tenant_key, TENANT_HEADER};
use crate::api_keys::{self, key::looks_like_key};
use crate::state::DataPlane;
use crate::tokens::access::{self, Restriction};

/// The header that carries an API key (the other way is `Authorization: Bearer tnt_…`).
pub const API_KEY_HEADER: &str = "x-api-key";

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub tenant: Arc<ServedTenant>,
    /// The tenant's scope for this request's transactions. For a state-changing request it
    /// carries the request's audit event, which its first committing change writes to the
    /// audit outbox (`crate::audit::middleware`): use this scope, not `tenant.scope`.
    pub scope: TenantScope,
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
    ///
    /// A request made with an API key gets 403 `user_required`: the key is valid, but this
    /// endpoint is for people.
    pub fn signed_in(&self) -> Result<&Principal, ApiError> {
        if let Some(principal) = self.principal.as_deref() {
            return Ok(principal);
        }
        if self.api_key.is_some() {
            return Err(ApiError::forbidden(
                "user_required",
                "API keys cannot use this endpoint: it needs a signed-in user's access token",
            ));
        }
        Err(ApiError::unauthorized(
            "sign in first: send an access token as `Authorization: Bearer …`",
        ))
    }

    /// The caller, with no restriction pending.
    pub fn authenticated(&self) -> Result<&Principal, ApiError> {
        let principal = self.signed_in()?;
        refuse_restricted(principal)?;
        Ok(principal)
    }

    /// The caller, a user or an API key, on the routes open to both (the guard admitted it).
    pub fn caller(&self) -> Result<crate::authz::Caller<'_>, ApiError> {
        match (self.api_key.as_deref(), self.principal.as_deref()) {
            (Some(key), _) => Ok(crate::authz::Caller::ApiKey(key)),
            (None, Some(_)) => self.authenticated().map(crate::authz::Caller::User),
            (None, None) => Err(crate::authz::Denial::NoCredential.into()),
        }
    }
}

fn refuse_restricted(principal: &Principal) -> Result<(), ApiError> {
    match principal.restrictions.first() {
        None => Ok(()),
        Some(restriction) => Err(crate::authz::Denial::Restricted(*restriction).into()),
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

/// The credentials a request carries, from its `Authorization` and `X-API-Key` headers, or
/// on a console page from its session cookie (and nothing else: a page is for browsers, and
/// an API route never reads the cookie, so no cross-site form can act through the API).
enum Credentials {
    None,
    /// A console session cookie's secret.
    ConsoleCookie(zeroize::Zeroizing<String>),
    /// The `Authorization` header's value, for [`principal`].
    AccessToken(String),
    ApiKey(String),
}

type Header = Option<Result<String, actix_web::http::header::ToStrError>>;

impl Credentials {
    fn from_headers(authorization: Header, api_key: Header) -> Result<Self, ApiError> {
        match (authorization, api_key) {
            (None, None) => Ok(Self::None),
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                "ambiguous_credentials",
                "send either an API key (X-API-Key) or an Authorization header, not both",
            )),
            (None, Some(Err(_))) => Err(api_keys::KeyRefused::Invalid.into()),
            (None, Some(Ok(key))) => Ok(Self::ApiKey(key.trim().to_owned())),
            (Some(Err(_)), None) => Err(invalid_token(&"non-ASCII header")),
            (Some(Ok(header)), None) => match header.strip_prefix("Bearer ").map(str::trim) {
                Some(bearer) if looks_like_key(bearer) => Ok(Self::ApiKey(bearer.to_owned())),
                _ => Ok(Self::AccessToken(header)),
            },
        }
    }
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
        .await?;
    let issuer = access::issuer(
        &state.config.public_scheme,
        tenant.tenant.slug.as_str(),
        &state.config.base_domain,
    );
    let claims = state
        .verified_tokens
        .verify(&keys, token, tenant.tenant.id, &issuer, state.clock.now())
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
        .await?;
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
        {
            use actix_web::HttpMessage as _;
            // Built and admitted already by the route guard (`crate::authz::guard`).
            if let Some(context) = req.extensions().get::<RequestContext>() {
                let context = context.clone();
                return Box::pin(async move { Ok(context) });
            }
        }
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
        let changes_state = !matches!(
            *req.method(),
            actix_web::http::Method::GET
                | actix_web::http::Method::HEAD
                | actix_web::http::Method::OPTIONS
        );
        let source_ip = crate::hygiene::client_address(req);
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let authorization = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(|value| value.to_str().map(str::to_owned));
        let console_cookie = shared::routes::is_console_path(req.path()).then(|| {
            shared::console::cookies::read(
                req,
                shared::console::cookies::SESSION_COOKIE,
                shared::console::cookies::SESSION_PREFIX,
            )
        });
        let request = req.clone();
        let api_key = req
            .headers()
            .get(API_KEY_HEADER)
            .map(|value| value.to_str().map(str::to_owned));
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
            if let Some(served) = &tenant {
                shared::http::record_tenant(served.tenant.slug.as_str());
            }
            match tenant {
                // A move freezes its writes for a moment; its reads are served.
                Some(tenant)
                    if tenant.tenant.status == TenantStatus::Active
                        && tenant.tenant.moving
                        && changes_state =>
                {
                    Err(shared::tenant_context::tenant_moving())
                }
                Some(tenant) if tenant.tenant.status == TenantStatus::Active => {
                    let credentials = match console_cookie {
                        Some(Some(secret)) => Credentials::ConsoleCookie(secret),
                        Some(None) => Credentials::None,
                        None => Credentials::from_headers(authorization, api_key)?,
                    };
                    let (principal, api_key) = match credentials {
                        Credentials::None => (None, None),
                        Credentials::ConsoleCookie(secret) => (
                            crate::console::service::principal(&state, &tenant, &secret)
                                .await?
                                .map(Arc::new),
                            None,
                        ),
                        Credentials::AccessToken(header) => (
                            Some(Arc::new(principal(&state, &tenant, &header).await?)),
                            None,
                        ),
                        Credentials::ApiKey(key) => (
                            None,
                            Some(
                                api_keys::service::authenticate(&state, &tenant, &key, source_ip)
                                    .await?,
                            ),
                        ),
                    };
                    let scope;
                    {
                        use actix_web::HttpMessage as _;
                        let actor = match (&principal, &api_key) {
                            (Some(principal), _) => Some(crate::audit::AuditActor {
                                actor_type: "user",
                                actor_id: principal.user_id.to_string(),
                            }),
                            (None, Some(key)) => Some(crate::audit::AuditActor {
                                actor_type: "api_key",
                                actor_id: key.key_id.to_string(),
                            }),
                            (None, None) => None,
                        };
                        let intent =
                            crate::audit::middleware::complete_intent(&request, actor.as_ref());
                        scope = match intent {
                            Some(intent) => tenant.scope.with_audit(intent),
                            None => tenant.scope.clone(),
                        };
                        if let Some(actor) = actor {
                            request.extensions_mut().insert(actor);
                        }
                    }
                    let context = RequestContext {
                        scope,
                        tenant,
                        request_id,
                        source_ip,
                        user_agent,
                        principal,
                        api_key,
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
