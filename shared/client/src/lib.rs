//! A typed client of Tenantry's HTTP APIs: the data plane (sign-in, records, administration,
//! API keys, telemetry) as a user or an API key, and the control plane's operator API.
//!
//! ```text
//! let acme = Client::new("https://api.example.com").tenant("acme");
//! let olga = acme.sign_in("olga@acme.example", "correct horse battery staple").await?;
//! let task = olga.records("tasks").create(&json!({"title": "ship it"})).await?;
//! let again = olga.records("tasks").get(task.id).await?;
//! ```
//!
//! A signed-in client keeps its session's tokens and refreshes them itself: shortly before the
//! access token expires, and once more when the server refuses one as `invalid_token`. Every
//! refusal comes back as [`Error::Api`] with the envelope's stable `code`; see [`Error`].
//!
//! Hand-written over its own wire types (docs/clients.md says why): each typed call is one
//! method here, and [`Client::call`] reaches any route, for what has no method yet.

mod admin;
mod auth;
mod error;
mod me;
mod operator;
mod records;
mod scim;
mod secret;
mod telemetry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use admin::{
    ApiKey, ApiKeys, AuditEvent, AuditPage, AuditQuery, CreatedKey, NewKey, Role, Roles, User,
    UserPage, UserStatus, Users,
};
pub use auth::{Activated, Auth, LoginOutcome, MfaChallenge, Tokens};
pub use error::{ApiError, Error};
pub use me::{Me, MeApi, Session, TotpSetup};
pub use operator::{
    Cluster, Clusters, MoveReport, NewCluster, NewTenant, Operator, Tenant, TenantPage,
    TenantPatch, Tenants,
};
pub use records::{ListQuery, Record, RecordPage, Records};
pub use reqwest::{Method, StatusCode};
pub use scim::{Scim, PATCH_OP, SCIM_JSON};
pub use secret::Secret;
pub use telemetry::{OtlpEncoding, Telemetry};

/// How long before its stated expiry an access token is refreshed, so a request does not
/// carry one that expires on the way.
const REFRESH_MARGIN: Duration = Duration::from_secs(10);

/// A client of one data plane (or, through [`Operator`], of a control plane). Cheap to clone;
/// clones share the connection pool and, when signed in, the session's tokens.
#[derive(Clone)]
pub struct Client {
    endpoint: Arc<Endpoint>,
    credential: Credential,
}

struct Endpoint {
    http: reqwest::Client,
    base_url: String,
    /// Sent as `X-Tenant` (when the base URL is not already the tenant's own host).
    tenant: Option<String>,
}

#[derive(Clone)]
enum Credential {
    Anonymous,
    /// A bearer token the client cannot refresh (an operator token, a bare access token).
    Bearer(Arc<Secret>),
    /// An API key, in `X-API-Key`.
    ApiKey(Arc<Secret>),
    /// A signed-in user's session: refreshed on expiry.
    Session(Arc<SessionTokens>),
}

/// A signed-in user's current tokens; a lock, so concurrent requests refresh once.
struct SessionTokens {
    current: tokio::sync::Mutex<Current>,
}

struct Current {
    access: Arc<Secret>,
    refresh: Secret,
    expires_at: Instant,
}

impl Current {
    fn from_tokens(tokens: Tokens) -> Self {
        let lifetime = Duration::from_secs(tokens.expires_in);
        Self {
            access: Arc::new(tokens.access_token),
            refresh: tokens.refresh_token,
            expires_at: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN),
        }
    }
}

impl Client {
    /// An anonymous client of the API at `base_url` (scheme, host and port; no path).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_http(reqwest::Client::new(), base_url)
    }

    /// The same over a `reqwest::Client` of the caller's (its timeouts, proxy, TLS roots).
    /// Redirects are answers the caller reads (SSO), so give it `redirect::Policy::none()`
    /// if you need to see them.
    pub fn with_http(http: reqwest::Client, base_url: impl Into<String>) -> Self {
        let base_url: String = base_url.into();
        Self {
            endpoint: Arc::new(Endpoint {
                http,
                base_url: base_url.trim_end_matches('/').to_owned(),
                tenant: None,
            }),
            credential: Credential::Anonymous,
        }
    }

    /// This client naming tenant `slug` in `X-Tenant` on every request. Not needed when the
    /// base URL is the tenant's own host (`https://acme.example.com`).
    pub fn tenant(&self, slug: impl Into<String>) -> Self {
        Self {
            endpoint: Arc::new(Endpoint {
                http: self.endpoint.http.clone(),
                base_url: self.endpoint.base_url.clone(),
                tenant: Some(slug.into()),
            }),
            credential: self.credential.clone(),
        }
    }

    /// The same client on another node of the same API (a second data-plane node behind the
    /// same load balancer), keeping its tenant and credential.
    pub fn on(&self, base_url: impl Into<String>) -> Self {
        let base_url: String = base_url.into();
        Self {
            endpoint: Arc::new(Endpoint {
                http: self.endpoint.http.clone(),
                base_url: base_url.trim_end_matches('/').to_owned(),
                tenant: self.endpoint.tenant.clone(),
            }),
            credential: self.credential.clone(),
        }
    }

    /// This client without credentials.
    pub fn anonymous(&self) -> Self {
        self.with_credential(Credential::Anonymous)
    }

    /// This client signed in with `tokens` (from [`Auth::login`], [`Auth::verify_mfa`] or
    /// [`Auth::refresh`]); it refreshes them on expiry.
    pub fn with_tokens(&self, tokens: Tokens) -> Self {
        self.with_credential(Credential::Session(Arc::new(SessionTokens {
            current: tokio::sync::Mutex::new(Current::from_tokens(tokens)),
        })))
    }

    /// This client presenting `token` as `Authorization: Bearer` (an access token it must not
    /// refresh, or an API key presented as a bearer token).
    pub fn with_bearer(&self, token: impl Into<String>) -> Self {
        self.with_credential(Credential::Bearer(Arc::new(Secret::new(token.into()))))
    }

    /// This client presenting the API key `key` in `X-API-Key`.
    pub fn with_api_key(&self, key: impl Into<String>) -> Self {
        self.with_credential(Credential::ApiKey(Arc::new(Secret::new(key.into()))))
    }

    fn with_credential(&self, credential: Credential) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
            credential,
        }
    }

    /// Signs in with email and password: a client holding the session. A user with MFA gets
    /// [`Error::MfaRequired`] with the challenge to answer through [`Auth::verify_mfa`].
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Self, Error> {
        match self.auth().login(email, password).await? {
            LoginOutcome::Tokens(tokens) => Ok(self.with_tokens(tokens)),
            LoginOutcome::MfaRequired(challenge) => Err(Error::MfaRequired(challenge)),
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.endpoint.base_url
    }

    /// The tenant named in `X-Tenant`, if any.
    pub fn tenant_slug(&self) -> Option<&str> {
        self.endpoint.tenant.as_deref()
    }

    /// The access token requests carry now (refreshed first if it is about to expire); `None`
    /// for a client that is not signed in.
    pub async fn access_token(&self) -> Result<Option<Secret>, Error> {
        match &self.credential {
            Credential::Session(session) => {
                Ok(Some(Secret::clone(&*self.fresh_access(session).await?)))
            }
            Credential::Bearer(token) => Ok(Some(Secret::clone(token))),
            Credential::Anonymous | Credential::ApiKey(_) => Ok(None),
        }
    }

    /// The session's refresh token as it stands (it changes at every refresh).
    pub async fn refresh_token(&self) -> Option<Secret> {
        match &self.credential {
            Credential::Session(session) => Some(session.current.lock().await.refresh.clone()),
            _ => None,
        }
    }

    /// Refreshes the session's tokens now, whatever their expiry.
    pub async fn refresh_now(&self) -> Result<(), Error> {
        if let Credential::Session(session) = &self.credential {
            let mut current = session.current.lock().await;
            self.refresh_locked(&mut current).await?;
        }
        Ok(())
    }

    /// A request to `path` (with its query string, if any), with this client's tenant and
    /// credential: for any route, including those with no typed method.
    pub fn call(&self, method: Method, path: impl Into<String>) -> Call<'_> {
        Call {
            client: self,
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    pub fn get(&self, path: impl Into<String>) -> Call<'_> {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: impl Into<String>) -> Call<'_> {
        self.call(Method::POST, path)
    }

    pub fn put(&self, path: impl Into<String>) -> Call<'_> {
        self.call(Method::PUT, path)
    }

    pub fn patch(&self, path: impl Into<String>) -> Call<'_> {
        self.call(Method::PATCH, path)
    }

    pub fn delete(&self, path: impl Into<String>) -> Call<'_> {
        self.call(Method::DELETE, path)
    }

    pub fn auth(&self) -> Auth<'_> {
        Auth { client: self }
    }

    pub fn me(&self) -> MeApi<'_> {
        MeApi { client: self }
    }

    pub fn records(&self, collection: &str) -> Records<'_> {
        Records {
            client: self,
            collection: collection.to_owned(),
        }
    }

    pub fn users(&self) -> Users<'_> {
        Users { client: self }
    }

    /// SCIM 2.0, as a directory (authenticated with a `scim:manage` key as a bearer token).
    pub fn scim(&self) -> Scim<'_> {
        Scim { client: self }
    }

    pub fn roles(&self) -> Roles<'_> {
        Roles { client: self }
    }

    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys { client: self }
    }

    pub fn telemetry(&self) -> Telemetry<'_> {
        Telemetry { client: self }
    }

    /// The session's access token, refreshed first when it is about to expire.
    async fn fresh_access(&self, session: &SessionTokens) -> Result<Arc<Secret>, Error> {
        let mut current = session.current.lock().await;
        if Instant::now() >= current.expires_at {
            self.refresh_locked(&mut current).await?;
        }
        Ok(current.access.clone())
    }

    /// After the server refused `used`: refreshes unless another request already has.
    async fn refresh_after_refusal(
        &self,
        session: &SessionTokens,
        used: &Arc<Secret>,
    ) -> Result<Arc<Secret>, Error> {
        let mut current = session.current.lock().await;
        if Arc::ptr_eq(&current.access, used) {
            self.refresh_locked(&mut current).await?;
        }
        Ok(current.access.clone())
    }

    async fn refresh_locked(&self, current: &mut Current) -> Result<(), Error> {
        // Sent once, as an anonymous call: a refresh is never itself refreshed.
        let anonymous = self.anonymous();
        let tokens: Tokens = anonymous
            .post("/v1/auth/refresh")
            .json(&auth::RefreshRequest {
                refresh_token: current.refresh.expose(),
            })
            .send_once(None)
            .await?
            .success()?
            .json()?;
        *current = Current::from_tokens(tokens);
        Ok(())
    }
}

/// One request being built; [`send`](Call::send) it for the raw answer, or
/// [`ok`](Call::ok) / [`done`](Call::done) for a typed one.
pub struct Call<'c> {
    client: &'c Client,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

impl Call<'_> {
    /// `value` as the JSON body (`Content-Type: application/json`).
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        // Serialising our own and the caller's plain data cannot fail; an empty body would
        // be refused by the server as a bad request, which is what it is.
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.body(body, "application/json")
    }

    /// `body` as it is, with its content type.
    pub fn body(mut self, body: impl Into<Vec<u8>>, content_type: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(content_type) {
            self.headers.insert(CONTENT_TYPE, value);
        }
        self.body = Some(body.into());
        self
    }

    /// A header besides those the client sets (a header that is not valid is left out).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.append(name, value);
        }
        self
    }

    /// Sends the request: any answer, success or refusal, is a [`Reply`]; only a failure to
    /// get one is an error. A signed-in client refreshes its tokens when they are about to
    /// expire, and retries once when the server refuses its access token.
    pub async fn send(self) -> Result<Reply, Error> {
        let Credential::Session(session) = &self.client.credential else {
            return self.send_once(None).await;
        };
        let used = self.client.fresh_access(session).await?;
        let reply = self.send_once(Some(&used)).await?;
        if reply.status() != StatusCode::UNAUTHORIZED || reply.code() != Some("invalid_token") {
            return Ok(reply);
        }
        let renewed = self.client.refresh_after_refusal(session, &used).await?;
        self.send_once(Some(&renewed)).await
    }

    /// Sends, and reads a 2xx answer's JSON as `T`; any other answer is [`Error::Api`].
    pub async fn ok<T: DeserializeOwned>(self) -> Result<T, Error> {
        self.send().await?.success()?.json()
    }

    /// Sends, and expects a 2xx answer whose body does not matter (a 204, say).
    pub async fn done(self) -> Result<(), Error> {
        self.send().await?.success().map(drop)
    }

    async fn send_once(&self, session_token: Option<&Secret>) -> Result<Reply, Error> {
        let endpoint = &self.client.endpoint;
        let mut request = endpoint
            .http
            .request(
                self.method.clone(),
                format!("{}{}", endpoint.base_url, self.path),
            )
            .headers(self.headers.clone());
        if let Some(tenant) = &endpoint.tenant {
            request = request.header("X-Tenant", tenant);
        }
        let bearer = session_token.or(match &self.client.credential {
            Credential::Bearer(token) => Some(token),
            _ => None,
        });
        if let Some(token) = bearer {
            if !self.headers.contains_key(AUTHORIZATION) {
                request = request.bearer_auth(token.expose());
            }
        }
        if let Credential::ApiKey(key) = &self.client.credential {
            request = request.header("X-API-Key", key.expose());
        }
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(Reply::new(status, headers, body))
    }
}

/// An answer as it came: status, headers, body; and the error envelope of a refusal.
#[derive(Debug)]
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    error: Option<ApiError>,
}

impl Reply {
    fn new(status: StatusCode, headers: HeaderMap, body: Vec<u8>) -> Self {
        let refused = status.is_client_error() || status.is_server_error();
        let error = refused.then(|| ApiError::from_answer(status, &headers, &body));
        Self {
            status,
            headers,
            body,
            error,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The refusal's envelope (`None` unless the status is 4xx or 5xx).
    pub fn error(&self) -> Option<&ApiError> {
        self.error.as_ref()
    }

    /// The refusal's stable code (`error.code`); `None` unless the status is 4xx or 5xx.
    pub fn code(&self) -> Option<&str> {
        self.error().map(|error| error.code.as_str())
    }

    /// The status and the refusal's code (empty for an answer that is not a refusal): what
    /// a caller branches on.
    pub fn error_code(&self) -> (StatusCode, &str) {
        (self.status, self.code().unwrap_or_default())
    }

    /// The body read as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|source| Error::Decode {
            status: self.status,
            source,
        })
    }

    /// The body as JSON; `Null` when it is empty or not JSON.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// This reply when it is a 2xx; otherwise [`Error::Api`] with its refusal.
    pub fn success(self) -> Result<Self, Error> {
        if self.status.is_success() {
            return Ok(self);
        }
        let error = match self.error {
            Some(error) => error,
            None => ApiError::from_answer(self.status, &self.headers, &self.body),
        };
        Err(Error::Api(Box::new(error)))
    }
}

/// `prefix/segment/…` with each segment percent-encoded, for ids and names in paths.
fn path(prefix: &str, segments: &[&str]) -> String {
    let mut path = prefix.to_owned();
    for segment in segments {
        path.push('/');
        encode_into(&mut path, segment);
    }
    path
}

/// `prefix/resource/rest…`, each segment percent-encoded: one resource and what is under it.
fn resource_path(prefix: &str, resource: &str, rest: &[&str]) -> String {
    let mut segments = vec![resource];
    segments.extend_from_slice(rest);
    path(prefix, &segments)
}

/// `?key=value&…` of the pairs whose value is present, values percent-encoded.
fn query<K: AsRef<str>>(pairs: &[(K, Option<String>)]) -> String {
    let mut query = String::new();
    for (key, value) in pairs {
        let Some(value) = value else { continue };
        query.push(if query.is_empty() { '?' } else { '&' });
        query.push_str(key.as_ref());
        query.push('=');
        encode_into(&mut query, value);
    }
    query
}

/// Appends `text` with every byte but RFC 3986's unreserved characters percent-encoded.
fn encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
}
