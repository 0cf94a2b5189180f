//! SSO for applications: a web app's back end, a single-page or a native app starts a sign-in
//! with `redirect_uri`, a PKCE `code_challenge` (S256) and its own `state`; the callback sends
//! the browser back to that URI with a one-time `code` and the `state`, and the application
//! exchanges the code with its `code_verifier` at `POST /v1/auth/sso/token` for the tokens.
//! Tokens never travel in a URL or a page, and a code is worth nothing to whoever lacks the
//! verifier (RFC 7636; the shape of OAuth 2.1's authorization code grant).
//!
//! Invariants:
//! - The redirect URI is one the tenant allow-listed (setting `sso_redirects`, tenant admins
//!   with `settings:manage`): exactly, except that a loopback `http` URI matches on any port
//!   (RFC 8252 §7.3, native apps). Anything else is refused at the start (400), before any IdP.
//! - A code is 256 random bits, stored only as its SHA-256, lives 60 seconds and is taken
//!   (deleted) by its first exchange whatever the outcome; the exchange needs the same redirect
//!   URI and the verifier whose S256 is the challenge (compared in constant time).
//! - The session opens at the exchange: a code never exchanged leaves no session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use shared::tenant_context::TenantTransaction;
use url::Url;

use super::sign_in::Admitted;
use super::store::{self, NewHandoffCode};
use super::{transactions, SsoError};
use crate::identity::service::{self as identity, Client, NewSignIn, TokenResponse};
use crate::identity::store as users;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;

/// The `settings` key of the allow-list.
pub const SETTINGS_KEY: &str = "sso_redirects";
/// Most redirect URIs one tenant may allow.
pub const MAX_REDIRECT_URIS: usize = 20;
/// How long a code waits for its exchange.
pub const CODE_LIFETIME: time::Duration = time::Duration::seconds(60);
const MAX_URI_LENGTH: usize = 2048;

/// The redirect URIs applications may ask SSO sign-ins to return to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoRedirects {
    /// `https` URIs, `http` on a loopback address (any port matches), or a native app's
    /// private-use scheme (`com.example.app:/callback`); no fragment. Sorted, without
    /// duplicates.
    pub redirect_uris: Vec<String>,
}

impl SsoRedirects {
    /// The allow-list in `submitted` (JSON as sent), validated and normalised.
    pub fn parse(submitted: serde_json::Value) -> Result<Self, SsoError> {
        let raw: SsoRedirects = serde_json::from_value(submitted)
            .map_err(|error| SsoError::InvalidAppReturn(error.to_string()))?;
        if raw.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(SsoError::InvalidAppReturn(format!(
                "at most {MAX_REDIRECT_URIS} redirect URIs"
            )));
        }
        let mut redirect_uris = raw
            .redirect_uris
            .iter()
            .map(|uri| redirect_uri(uri).map(|uri| uri.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        redirect_uris.sort();
        redirect_uris.dedup();
        Ok(Self { redirect_uris })
    }

    /// Whether the application may return to `requested`.
    fn allows(&self, requested: &Url) -> bool {
        self.redirect_uris.iter().any(|allowed| {
            let Ok(mut allowed) = Url::parse(allowed) else {
                return false;
            };
            // Native apps listen on a port the system picks (RFC 8252 §7.3).
            let any_port = is_loopback(&allowed) && is_loopback(requested);
            if any_port && allowed.set_port(requested.port()).is_err() {
                return false;
            }
            &allowed == requested
        })
    }
}

fn is_loopback(uri: &Url) -> bool {
    uri.scheme() == "http" && matches!(uri.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
}

/// `uri` as a redirect URI an application may use, or why not.
fn redirect_uri(uri: &str) -> Result<Url, SsoError> {
    let refuse = |why: &str| SsoError::InvalidAppReturn(format!("redirect URI {uri:?}: {why}"));
    if uri.len() > MAX_URI_LENGTH {
        return Err(refuse("too long"));
    }
    let parsed = Url::parse(uri).map_err(|_| refuse("not an absolute URI"))?;
    if parsed.fragment().is_some() {
        return Err(refuse("a redirect URI has no fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse("no credentials in a redirect URI"));
    }
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(refuse("http only on a loopback address; use https")),
        // A private-use scheme is a reversed domain name the app owns (RFC 8252 §7.1).
        scheme if scheme.contains('.') => Ok(parsed),
        _ => Err(refuse(
            "use https, http on a loopback address, or a private-use scheme like com.example.app",
        )),
    }
}

/// The tenant's allow-list.
pub async fn redirects(
    state: &DataPlane,
    context: &RequestContext,
) -> Result<SsoRedirects, SsoError> {
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let allowed = crate::settings::store::read(&mut transaction, SETTINGS_KEY).await?;
    transaction.commit().await?;
    Ok(allowed)
}

/// Replaces the allow-list with `submitted` (JSON as sent): anything invalid is a 400 and
/// nothing changes.
pub async fn replace_redirects(
    state: &DataPlane,
    context: &RequestContext,
    submitted: serde_json::Value,
) -> Result<SsoRedirects, SsoError> {
    let allowed = SsoRedirects::parse(submitted)?;
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    crate::settings::store::write(&mut transaction, SETTINGS_KEY, &allowed).await?;
    transaction.commit().await?;
    Ok(allowed)
}

/// Where an application's sign-in returns, kept with its login transaction.
#[derive(Debug, Clone)]
pub struct AppReturn {
    pub redirect_uri: String,
    /// base64url(SHA-256(verifier)).
    pub code_challenge: String,
    /// The application's own value, returned as it was sent.
    pub state: Option<String>,
}

/// What a start may carry for an application.
pub struct AppStart<'a> {
    pub redirect_uri: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// The application return a start asks for (`None`: no `redirect_uri`, the tokens are the
/// callback's answer), checked against the tenant's allow-list.
pub async fn app_return(
    state: &DataPlane,
    context: &RequestContext,
    start: AppStart<'_>,
) -> Result<Option<AppReturn>, SsoError> {
    let Some(requested) = start.redirect_uri else {
        if start.code_challenge.is_some() || start.state.is_some() {
            return Err(SsoError::InvalidAppReturn(
                "code_challenge and state go with a redirect_uri".to_owned(),
            ));
        }
        return Ok(None);
    };
    let code_challenge = start
        .code_challenge
        .filter(|challenge| {
            challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
        .ok_or_else(|| {
            SsoError::InvalidAppReturn(
                "code_challenge must be the base64url SHA-256 of a PKCE verifier (43 characters)"
                    .to_owned(),
            )
        })?;
    if start.code_challenge_method != Some("S256") {
        return Err(SsoError::InvalidAppReturn(
            "code_challenge_method must be S256".to_owned(),
        ));
    }
    if start
        .state
        .is_some_and(|value| value.len() > 512 || value.chars().any(char::is_control))
    {
        return Err(SsoError::InvalidAppReturn(
            "state is at most 512 characters, none of them control characters".to_owned(),
        ));
    }
    let requested = redirect_uri(requested)?;
    if !redirects(state, context).await?.allows(&requested) {
        return Err(SsoError::InvalidAppReturn(format!(
            "redirect URI {:?} is not one this tenant allows (settings: sso-redirects)",
            requested.as_str()
        )));
    }
    Ok(Some(AppReturn {
        redirect_uri: requested.to_string(),
        code_challenge: code_challenge.to_owned(),
        state: start.state.map(str::to_owned),
    }))
}

/// Leaves a code for the admitted user in `transaction` and commits it; the application's
/// redirect URI with `code` and `state`.
pub async fn issue_code(
    state: &DataPlane,
    mut transaction: TenantTransaction,
    admitted: &Admitted,
    app: &AppReturn,
) -> Result<String, SsoError> {
    let code = transactions::random_value(&state.rng)?;
    let now = state.clock.now();
    store::insert_handoff_code(
        &mut transaction,
        &NewHandoffCode {
            code_digest: &transactions::digest(&code),
            user_id: admitted.user.id,
            provider_id: admitted.provider_id,
            redirect_uri: &app.redirect_uri,
            code_challenge: &app.code_challenge,
            now,
            expires_at: now + CODE_LIFETIME,
        },
    )
    .await?;
    transaction.commit().await?;
    let mut redirect = Url::parse(&app.redirect_uri)
        .map_err(|_| SsoError::InvalidAppReturn("stored redirect URI".to_owned()))?;
    {
        let mut query = redirect.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(app_state) = &app.state {
            query.append_pair("state", app_state);
        }
    }
    Ok(redirect.to_string())
}

/// `POST /v1/auth/sso/token`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeExchange {
    /// The `code` the redirect URI received.
    pub code: String,
    /// The PKCE verifier whose S256 was the start's `code_challenge`.
    pub code_verifier: String,
    /// The redirect URI the start named, exactly.
    pub redirect_uri: String,
}

/// Exchanges a code for the session's tokens (the code is spent whatever the answer).
pub async fn exchange(
    state: &DataPlane,
    context: &RequestContext,
    request: &CodeExchange,
    client: Client<'_>,
) -> Result<TokenResponse, SsoError> {
    if request.code.is_empty() || request.code.len() > 128 {
        return Err(SsoError::InvalidGrant);
    }
    let now = state.clock.now();
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let taken =
        store::take_handoff_code(&mut transaction, &transactions::digest(&request.code), now)
            .await?;
    // The code is spent from here on, whatever follows.
    let Some(taken) = taken.filter(|taken| {
        verifier_matches(&request.code_verifier, &taken.code_challenge)
            && request.redirect_uri == taken.redirect_uri
    }) else {
        transaction.commit().await?;
        return Err(SsoError::InvalidGrant);
    };
    let user = users::user_by_id(&mut transaction, taken.user_id)
        .await?
        .filter(|user| user.status == "active");
    let Some(user) = user else {
        transaction.commit().await?;
        return Err(SsoError::AccountDisabled);
    };
    let policy = users::policy(&mut transaction).await?;
    let sign_in = NewSignIn {
        user: &user,
        policy: &policy,
        amr: vec![taken.provider_kind],
        idp: Some(&taken.provider_name),
        client,
        now,
    };
    Ok(identity::open_session(state, context, transaction, sign_in).await?)
}

/// Whether `verifier` is a PKCE verifier (RFC 7636 §4.1) whose S256 is `challenge`.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte));
    if !well_formed {
        return false;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    let computed = URL_SAFE_NO_PAD.encode(digest.as_ref());
    computed.len() == challenge.len()
        && openssl::memcmp::eq(computed.as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_allow_list_takes_https_loopback_http_and_private_schemes_only() {
        let list = SsoRedirects::parse(json!({ "redirect_uris": [
            "https://app.example.com/callback",
            "http://127.0.0.1/cb",
            "com.example.app:/oauth",
            "https://app.example.com/callback",
        ]}))
        .unwrap();
        assert_eq!(list.redirect_uris.len(), 3);
        for refused in [
            "http://app.example.com/cb",
            "https://app.example.com/cb#fragment",
            "https://user:pw@app.example.com/cb",
            "javascript:alert(1)",
            "/relative",
        ] {
            assert!(
                SsoRedirects::parse(json!({ "redirect_uris": [refused] })).is_err(),
                "{refused}"
            );
        }
        let url = |uri: &str| Url::parse(uri).unwrap();
        assert!(list.allows(&url("https://app.example.com/callback")));
        assert!(
            list.allows(&url("http://127.0.0.1:53124/cb")),
            "any loopback port"
        );
        assert!(!list.allows(&url("https://app.example.com/callback/other")));
        assert!(!list.allows(&url("https://app.example.com/callback?x=1")));
        assert!(!list.allows(&url("http://127.0.0.1:53124/other")));
    }

    #[test]
    fn a_verifier_matches_only_its_own_s256_challenge() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        assert!(!verifier_matches(challenge, challenge));
        assert!(!verifier_matches("short", challenge));
    }
}
