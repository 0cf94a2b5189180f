//! The authorization-code flow with PKCE, for OpenID Connect (openidconnect: discovery, ID
//! token signature, issuer, audience, expiry and nonce checks, userinfo) and plain OAuth 2.0
//! providers (oauth2: the user is what the userinfo URL returns).
//!
//! `start` stores a login transaction (`state` digest → nonce, PKCE verifier) and sends the
//! browser to the IdP; `callback` spends the transaction **before** it looks at the IdP's
//! answer, so a `state` works once whatever happens next.

use std::sync::Arc;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdToken, CoreIdTokenVerifier,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, SignatureVerificationError, TokenResponse as _,
};
use serde_json::Value;
use shared::egress::EgressError;
use url::Url;
use zeroize::Zeroizing;

use super::settings::{
    self, ClaimMapping, IdTokenAlgorithm, OAuth2Settings, OidcSettings, ProviderKind,
    TokenEndpointAuth,
};
use super::sign_in::{self, ExternalIdentity};
use super::store::{self, NewTransaction, ProviderRow};
use super::{admin, SsoError, TRANSACTION_LIFETIME};
use super::{oidc_metadata, transactions};
use crate::identity::service::Client;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use crate::tokens::access;

/// Where the IdP sends the browser back: the tenant's own host, so the callback is routed to
/// the tenant by `Host` like any browser request (no custom header survives a redirect).
pub fn redirect_uri(state: &DataPlane, context: &RequestContext, provider: &str) -> String {
    let base = access::issuer(
        &state.config.public_scheme,
        context.tenant.tenant.slug.as_str(),
        &state.config.base_domain,
    );
    format!("{base}/v1/auth/sso/{provider}/callback")
}

/// The enabled provider of this name, read in its own short transaction.
pub async fn enabled_provider(
    state: &DataPlane,
    context: &RequestContext,
    name: &str,
) -> Result<ProviderRow, SsoError> {
    let provider = any_provider(state, context, name).await?;
    if !provider.enabled {
        return Err(SsoError::ProviderNotFound);
    }
    Ok(provider)
}

/// The provider of this name, enabled or not (metadata, callbacks that may be an admin's
/// test of a provider not yet enabled, the set-up pages).
pub async fn any_provider(
    state: &DataPlane,
    context: &RequestContext,
    name: &str,
) -> Result<ProviderRow, SsoError> {
    if !settings::valid_name(name) {
        return Err(SsoError::ProviderNotFound);
    }
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let provider = store::provider_by_name(&mut transaction, name)
        .await?
        .ok_or(SsoError::ProviderNotFound)?;
    transaction.commit().await?;
    Ok(provider)
}

/// The HTTP client the OAuth 2.0 / OpenID Connect library calls: every request goes through
/// the node's egress guard (`shared::egress`).
fn idp_http<'a>(
    state: &'a DataPlane,
) -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, EgressError>> + Send + 'a>,
> + 'a {
    move |request| Box::pin(state.egress.execute_http(request))
}

/// What a failed request to the IdP means: a configuration error when the egress guard
/// refused its address, else `otherwise` with the whole chain of causes.
fn idp_failure(
    what: &str,
    error: &(dyn std::error::Error + 'static),
    otherwise: fn(String) -> SsoError,
) -> SsoError {
    match shared::egress::refused_in(error) {
        Some(refused) => config_error(what, refused),
        None => otherwise(format!("{what}: {}", shared::egress::describe(error))),
    }
}

fn config_error(what: &str, error: impl std::fmt::Display) -> SsoError {
    SsoError::InvalidConfig(format!("{what}: {error}"))
}

fn issuer_of(oidc: &OidcSettings) -> Result<IssuerUrl, SsoError> {
    IssuerUrl::new(oidc.issuer.as_str().trim_end_matches('/').to_owned())
        .map_err(|error| config_error("issuer", error))
}

/// The issuer's discovery document and keys, from the node's cache (`oidc_metadata`).
async fn discover(
    state: &DataPlane,
    oidc: &OidcSettings,
) -> Result<Arc<oidc_metadata::Fetched>, SsoError> {
    state.oidc_metadata.get(state, &issuer_of(oidc)?).await
}

/// Our client at the issuer `fetched` describes, authenticating at its token endpoint as the
/// provider's settings say (else as its discovery document allows: Basic unless it lists only
/// `client_secret_post`).
fn oidc_client(
    fetched: &oidc_metadata::Fetched,
    oidc: &OidcSettings,
    secret: Option<&Zeroizing<String>>,
    redirect: RedirectUrl,
) -> OidcClient {
    let metadata = &fetched.metadata;
    let post_only = metadata
        .token_endpoint_auth_methods_supported()
        .is_some_and(|methods| {
            !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
        });
    let auth = match oidc.token_endpoint_auth {
        // No secret to send: the client id goes in the body beside the assertion.
        Some(TokenEndpointAuth::ClientSecretPost | TokenEndpointAuth::PrivateKeyJwt) => {
            AuthType::RequestBody
        }
        Some(TokenEndpointAuth::ClientSecretBasic) => AuthType::BasicAuth,
        None if post_only => AuthType::RequestBody,
        None => AuthType::BasicAuth,
    };
    CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(oidc.client_id.clone()),
        secret.map(|secret| ClientSecret::new(secret.to_string())),
    )
    .set_auth_type(auth)
    .set_redirect_uri(redirect)
}

type OidcClient = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The ID token's claims, checked with the provider's algorithms against the issuer's keys:
/// signature, issuer, audience (our client id; with several audiences, `azp` must be ours),
/// expiry and nonce. A key id the cached JWKS lacks gets one fresh fetch of the keys first
/// (the IdP rotated its key), at most once a minute per issuer.
async fn checked_id_token_claims(
    state: &DataPlane,
    oidc: &OidcSettings,
    fetched: &oidc_metadata::Fetched,
    id_token: &CoreIdToken,
    nonce: &Nonce,
) -> Result<Value, SsoError> {
    let algorithms: Vec<CoreJwsSigningAlgorithm> = oidc
        .id_token_algorithms
        .iter()
        .map(|algorithm| signing_algorithm(*algorithm))
        .collect();
    let issuer = issuer_of(oidc)?;
    // A public client's verifier: the client secret only ever verifies HMAC signatures, and
    // no HMAC algorithm is allowed.
    let check = |fetched: &oidc_metadata::Fetched| {
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(oidc.client_id.clone()),
            issuer.clone(),
            fetched.metadata.jwks().clone(),
        )
        .set_allowed_algs(algorithms.iter().cloned());
        id_token
            .claims(&verifier, nonce)
            .map_err(|error| match error {
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                ) => None,
                error => Some(SsoError::Rejected(format!("ID token refused: {error}"))),
            })
            .and_then(|claims| {
                serde_json::to_value(claims)
                    .map_err(|error| Some(SsoError::Rejected(format!("ID token claims: {error}"))))
            })
    };
    let unknown_key = || {
        SsoError::Rejected("ID token refused: signed with no key the issuer publishes".to_owned())
    };
    match check(fetched) {
        Ok(claims) => Ok(claims),
        Err(Some(refused)) => Err(refused),
        Err(None) => {
            let fresh = state
                .oidc_metadata
                .refresh_for_unknown_key(state, &issuer, fetched)
                .await?
                .ok_or_else(unknown_key)?;
            check(&fresh).map_err(|refused| refused.unwrap_or_else(unknown_key))
        }
    }
}

fn signing_algorithm(algorithm: IdTokenAlgorithm) -> CoreJwsSigningAlgorithm {
    match algorithm {
        IdTokenAlgorithm::RS256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        IdTokenAlgorithm::RS384 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        IdTokenAlgorithm::RS512 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        IdTokenAlgorithm::PS256 => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        IdTokenAlgorithm::PS384 => CoreJwsSigningAlgorithm::RsaSsaPssSha384,
        IdTokenAlgorithm::PS512 => CoreJwsSigningAlgorithm::RsaSsaPssSha512,
        IdTokenAlgorithm::ES256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        IdTokenAlgorithm::ES384 => CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        IdTokenAlgorithm::EdDSA => CoreJwsSigningAlgorithm::EdDsa,
    }
}

/// Starts a sign-in: the URL to send the browser to.
pub async fn start(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    login_hint: Option<&str>,
    destination: &super::Destination,
) -> Result<Url, SsoError> {
    let redirect = RedirectUrl::new(redirect_uri(state, context, &provider.name))
        .map_err(|error| config_error("redirect URI", error))?;
    let state_value = transactions::random_value(&state.rng)?;
    let nonce_value = transactions::random_value(&state.rng)?;
    let verifier = transactions::random_value(&state.rng)?;
    let challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));

    let (url, nonce) = match &provider.settings.provider {
        ProviderKind::Oidc(oidc) => {
            let fetched = discover(state, oidc).await?;
            let client = oidc_client(&fetched, oidc, None, redirect);
            let csrf = state_value.clone();
            let nonce = nonce_value.clone();
            let mut request = client
                .authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    move || CsrfToken::new(csrf),
                    move || Nonce::new(nonce),
                )
                .set_pkce_challenge(challenge);
            for scope in &oidc.scopes {
                request = request.add_scope(Scope::new(scope.clone()));
            }
            if let Some(hint) = login_hint {
                request = request.set_login_hint(openidconnect::LoginHint::new(hint.to_owned()));
            }
            let (url, _, _) = request.url();
            (url, Some(nonce_value))
        }
        ProviderKind::Oauth2(oauth2) => {
            let client = oauth2::basic::BasicClient::new(ClientId::new(oauth2.client_id.clone()))
                .set_auth_uri(oauth2::AuthUrl::from_url(oauth2.authorization_url.clone()))
                .set_redirect_uri(redirect);
            let csrf = state_value.clone();
            let mut request = client
                .authorize_url(move || CsrfToken::new(csrf))
                .set_pkce_challenge(challenge);
            for scope in &oauth2.scopes {
                request = request.add_scope(Scope::new(scope.clone()));
            }
            let (url, _) = request.url();
            (url, None)
        }
        ProviderKind::Saml(_) => {
            return Err(SsoError::InvalidInput(
                "this is a SAML provider: use /v1/auth/saml/{provider}/login".to_owned(),
            ))
        }
    };

    let now = state.clock.now();
    let digest = transactions::digest(&state_value);
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::insert_transaction(
        &mut transaction,
        &NewTransaction {
            state_digest: &digest,
            provider_id: provider.id,
            nonce: nonce.as_deref(),
            pkce_verifier: Some(&verifier),
            now,
            expires_at: now + TRANSACTION_LIFETIME,
            destination,
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(url)
}

/// What the IdP appended to the redirect URI.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Sent by IdPs that implement RFC 9207; checked against the configured issuer when present.
    pub iss: Option<String>,
}

/// Finishes a sign-in: checks everything, then signs the user in.
pub async fn callback(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    query: CallbackQuery,
    client: Client<'_>,
    browser: Option<&[u8]>,
) -> Result<super::Outcome, SsoError> {
    let state_value = query
        .state
        .as_deref()
        .filter(|value| !value.is_empty() && value.len() <= 512)
        .ok_or(SsoError::InvalidState)?;
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let taken = store::take_transaction(
        &mut transaction,
        &transactions::digest(state_value),
        provider.id,
        now,
    )
    .await?;
    transaction.commit().await?;
    let Some(taken) = taken else {
        sign_in::record_refusal(state, context, provider, "invalid_state", client).await?;
        return Err(SsoError::InvalidState);
    };
    if let Some(error) = &query.error {
        sign_in::record_refusal(state, context, provider, "idp_error", client).await?;
        return Err(SsoError::Rejected(format!(
            "the IdP answered {error}: {}",
            query.error_description.as_deref().unwrap_or("")
        )));
    }
    let code = query
        .code
        .filter(|code| !code.is_empty() && code.len() <= 4096)
        .ok_or_else(|| SsoError::InvalidInput("the callback has no code".to_owned()))?;
    if let super::Destination::Console(landing) = &taken.destination {
        if !super::same_browser(landing, browser) {
            sign_in::record_refusal(state, context, provider, "other_browser", client).await?;
            return Err(SsoError::OtherBrowser);
        }
    }
    if !provider.enabled && !taken.destination.is_test() {
        return Err(SsoError::ProviderNotFound);
    }
    let verifier = taken
        .pkce_verifier
        .ok_or_else(|| SsoError::Rejected("transaction without PKCE verifier".to_owned()))?;

    let secret = admin::open_credential(state, context, provider).await?;
    let redirect = RedirectUrl::new(redirect_uri(state, context, &provider.name))
        .map_err(|error| config_error("redirect URI", error))?;
    let outcome = match &provider.settings.provider {
        ProviderKind::Oidc(oidc) => {
            let nonce = taken
                .nonce
                .ok_or_else(|| SsoError::Rejected("transaction without nonce".to_owned()))?;
            oidc_identity(
                state,
                oidc,
                OidcExchange {
                    secret: secret.as_ref(),
                    redirect,
                    code,
                    verifier,
                    nonce,
                    issuer_param: query.iss.as_deref(),
                },
            )
            .await
        }
        ProviderKind::Oauth2(oauth2) => {
            oauth2_identity(state, oauth2, secret.as_ref(), redirect, code, verifier).await
        }
        ProviderKind::Saml(_) => Err(SsoError::ProviderNotFound),
    };
    let identity = match outcome {
        Ok(identity) => identity,
        Err(error) => {
            if matches!(error, SsoError::Rejected(_)) {
                sign_in::record_refusal(state, context, provider, "rejected", client).await?;
            }
            return Err(error);
        }
    };
    sign_in::conclude(
        state,
        context,
        provider,
        identity,
        client,
        taken.destination,
    )
    .await
}

struct OidcExchange<'a> {
    secret: Option<&'a Zeroizing<String>>,
    redirect: RedirectUrl,
    code: String,
    verifier: String,
    nonce: String,
    issuer_param: Option<&'a str>,
}

async fn oidc_identity(
    state: &DataPlane,
    oidc: &OidcSettings,
    exchange: OidcExchange<'_>,
) -> Result<ExternalIdentity, SsoError> {
    let fetched = discover(state, oidc).await?;
    if let Some(issuer) = exchange.issuer_param {
        if issuer != fetched.metadata.issuer().as_str() {
            return Err(SsoError::Rejected(format!(
                "the callback's iss {issuer:?} is not the provider's issuer"
            )));
        }
    }
    // With private_key_jwt the sealed credential is our key: no secret goes to the IdP, a
    // signed assertion does.
    let client_key = oidc.token_endpoint_auth == Some(TokenEndpointAuth::PrivateKeyJwt);
    let secret = exchange.secret.filter(|_| !client_key);
    let client = oidc_client(&fetched, oidc, secret, exchange.redirect);
    let mut request = client
        .exchange_code(AuthorizationCode::new(exchange.code))
        .map_err(|error| config_error("token endpoint", error))?
        .set_pkce_verifier(PkceCodeVerifier::new(exchange.verifier));
    if client_key {
        let key = exchange
            .secret
            .ok_or_else(|| SsoError::InvalidConfig("the provider has no client key".to_owned()))?;
        let token_endpoint = fetched
            .metadata
            .token_endpoint()
            .map(|url| url.url().to_string())
            .ok_or_else(|| {
                SsoError::InvalidConfig("the issuer has no token endpoint".to_owned())
            })?;
        let assertion = super::client_key::assertion(
            key,
            &oidc.client_id,
            &token_endpoint,
            state.clock.now(),
            &transactions::random_value(&state.rng)?,
        )?;
        request = request
            .add_extra_param("client_assertion_type", super::client_key::ASSERTION_TYPE)
            .add_extra_param("client_assertion", assertion);
    }
    let token_response = request
        .request_async(&idp_http(state))
        .await
        .map_err(|error| idp_failure("code exchange", &error, SsoError::Rejected))?;
    let id_token = token_response
        .id_token()
        .ok_or_else(|| SsoError::Rejected("the token response has no ID token".to_owned()))?;
    let mut merged =
        checked_id_token_claims(state, oidc, &fetched, id_token, &Nonce::new(exchange.nonce))
            .await?;
    let subject = settings::claim_text(&merged, "sub")
        .ok_or_else(|| SsoError::Rejected("the ID token has no subject".to_owned()))?;

    // Userinfo adds what the ID token left out (groups, often the name). It must be about the
    // same subject (checked by openidconnect), and never overrides the ID token's claims.
    if client.user_info_url().is_some() {
        let userinfo = oidc_userinfo(
            state,
            oidc,
            &fetched,
            client
                .user_info_url()
                .map(|url| url.url().clone())
                .ok_or_else(|| SsoError::Rejected("no userinfo URL".to_owned()))?,
            token_response.access_token(),
            &subject,
        )
        .await?;
        if settings::claim_text(&userinfo, "sub").as_deref() != Some(subject.as_str()) {
            return Err(SsoError::Rejected(
                "userinfo is about another subject".to_owned(),
            ));
        }
        if let (Value::Object(merged), Value::Object(userinfo)) = (&mut merged, userinfo) {
            for (key, value) in userinfo {
                merged.entry(key).or_insert(value);
            }
        }
    }
    Ok(identity_from_claims(subject, &merged, &oidc.claims))
}

async fn oauth2_identity(
    state: &DataPlane,
    oauth2: &OAuth2Settings,
    secret: Option<&Zeroizing<String>>,
    redirect: RedirectUrl,
    code: String,
    verifier: String,
) -> Result<ExternalIdentity, SsoError> {
    let mut client = oauth2::basic::BasicClient::new(ClientId::new(oauth2.client_id.clone()))
        .set_token_uri(oauth2::TokenUrl::from_url(oauth2.token_url.clone()))
        .set_redirect_uri(redirect);
    if let Some(secret) = secret {
        client = client.set_client_secret(ClientSecret::new(secret.to_string()));
    }
    let token_response = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&idp_http(state))
        .await
        .map_err(|error| idp_failure("code exchange", &error, SsoError::Rejected))?;
    let userinfo = fetch_userinfo(
        state,
        oauth2.userinfo_url.clone(),
        token_response.access_token(),
    )
    .await?;
    let subject = settings::claim_text(&userinfo, &oauth2.claims.subject)
        .ok_or_else(|| SsoError::Rejected("userinfo has no subject".to_owned()))?;
    let mut identity = identity_from_claims(subject, &userinfo, &oauth2.claims);
    if let Some(emails_url) = &oauth2.emails_url {
        let listed = fetch_json(
            state,
            "emails",
            emails_url.clone(),
            token_response.access_token(),
        )
        .await?;
        let (email, verified) = primary_email(&listed)?;
        identity.email = email;
        identity.email_verified = verified;
    }
    Ok(identity)
}

/// The address a GitHub-style list (`[{email, primary, verified}]`) makes the user's: the
/// primary one if verified, else the first verified one; none verified, no address (userinfo's
/// unverified one would let anyone claim any address).
fn primary_email(listed: &Value) -> Result<(Option<String>, bool), SsoError> {
    let entries = listed.as_array().ok_or_else(|| {
        SsoError::Rejected("the emails endpoint did not answer a list".to_owned())
    })?;
    let verified = |entry: &&Value| entry["verified"] == Value::Bool(true);
    let chosen = entries
        .iter()
        .filter(verified)
        .find(|entry| entry["primary"] == Value::Bool(true))
        .or_else(|| entries.iter().find(verified))
        .and_then(|entry| entry["email"].as_str());
    Ok((chosen.map(str::to_owned), chosen.is_some()))
}

/// GETs `url` with the access token: the body, and whether it is a signed JWT
/// (`application/jwt`, a signed userinfo) rather than JSON.
async fn fetch_with_token(
    state: &DataPlane,
    what: &str,
    url: Url,
    access_token: &AccessToken,
) -> Result<(Vec<u8>, bool), SsoError> {
    let failed = |error: EgressError| idp_failure(what, &error, SsoError::ProviderUnavailable);
    let response = state
        .egress
        .get(url)
        .map_err(failed)?
        .bearer_auth(access_token.secret())
        .header("Accept", "application/json, application/jwt")
        .send()
        .await
        .map_err(|error| failed(error.into()))?;
    if !response.status().is_success() {
        return Err(SsoError::Rejected(format!(
            "{what} answered {}",
            response.status()
        )));
    }
    let jwt = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().starts_with("application/jwt"));
    let bytes = shared::egress::read_body(response, 256 * 1024)
        .await
        .map_err(failed)?;
    Ok((bytes, jwt))
}

/// GETs JSON with the access token (an emails list).
async fn fetch_json(
    state: &DataPlane,
    what: &str,
    url: Url,
    access_token: &AccessToken,
) -> Result<Value, SsoError> {
    let (bytes, _) = fetch_with_token(state, what, url, access_token).await?;
    serde_json::from_slice(&bytes)
        .map_err(|error| SsoError::Rejected(format!("{what} is not JSON: {error}")))
}

/// A plain OAuth 2.0 provider's userinfo: a JSON object.
async fn fetch_userinfo(
    state: &DataPlane,
    url: Url,
    access_token: &AccessToken,
) -> Result<Value, SsoError> {
    let value = fetch_json(state, "userinfo", url, access_token).await?;
    if !value.is_object() {
        return Err(SsoError::Rejected(
            "userinfo is not a JSON object".to_owned(),
        ));
    }
    Ok(value)
}

/// Claims besides the standard ones (groups and the like), kept as they came.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, Value>,
}

impl openidconnect::AdditionalClaims for OtherClaims {}

type SignedUserInfo = openidconnect::UserInfoJsonWebToken<
    OtherClaims,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// An OpenID provider's userinfo about `subject`: JSON, or a JWT signed with one of the
/// issuer's keys (RS256: what openidconnect's userinfo verifier accepts), naming the issuer,
/// our client and the same subject.
async fn oidc_userinfo(
    state: &DataPlane,
    oidc: &OidcSettings,
    fetched: &oidc_metadata::Fetched,
    url: Url,
    access_token: &AccessToken,
    subject: &str,
) -> Result<Value, SsoError> {
    let (bytes, jwt) = fetch_with_token(state, "userinfo", url, access_token).await?;
    let value: Value = if jwt {
        let text = String::from_utf8(bytes)
            .map_err(|_| SsoError::Rejected("signed userinfo is not text".to_owned()))?;
        let token: SignedUserInfo = serde_json::from_value(Value::String(text.trim().to_owned()))
            .map_err(|error| {
            SsoError::Rejected(format!("signed userinfo is not a JWT: {error}"))
        })?;
        let verifier = openidconnect::core::CoreUserInfoVerifier::new(
            ClientId::new(oidc.client_id.clone()),
            issuer_of(oidc)?,
            fetched.metadata.jwks().clone(),
            Some(openidconnect::SubjectIdentifier::new(subject.to_owned())),
        );
        let claims = token
            .claims(&verifier)
            .map_err(|error| SsoError::Rejected(format!("signed userinfo refused: {error}")))?;
        serde_json::to_value(claims)
            .map_err(|error| SsoError::Rejected(format!("signed userinfo claims: {error}")))?
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|error| SsoError::Rejected(format!("userinfo is not JSON: {error}")))?
    };
    if !value.is_object() {
        return Err(SsoError::Rejected(
            "userinfo is not a JSON object".to_owned(),
        ));
    }
    Ok(value)
}

fn identity_from_claims(
    subject: String,
    claims: &Value,
    mapping: &ClaimMapping,
) -> ExternalIdentity {
    let email_verified = match settings::claim(claims, &mapping.email_verified) {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::String(verified)) => verified == "true",
        _ => false,
    };
    ExternalIdentity {
        subject,
        email: settings::claim_text(claims, &mapping.email),
        email_verified,
        name: settings::claim_text(claims, &mapping.name),
        groups: settings::claim_list(claims, &mapping.groups),
        received: claims.clone(),
    }
}
