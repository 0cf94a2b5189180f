//! The console's two cookies and its CSRF tokens.
//!
//! - `tenantry_session`: an opaque secret (`tncs_…`) naming one of the tenant's sessions
//!   (`console_cookies`, stored as a digest). Set at sign-in, cleared at sign-out.
//! - `tenantry_csrf`: a random secret (`tncf_…`) the browser gets with its first page. Every
//!   form carries [`form_token`] of it; a state-changing request whose form token is not the
//!   one of the cookie it sends is refused before anything runs (`super::layer`). A page of
//!   another site can make the browser send the cookie but cannot read it, so it cannot
//!   write the token. It is replaced at sign-in and sign-out.
//!
//! Both are `HttpOnly`, `SameSite=Lax`, `Path=/console`, host-only (no `Domain`: one
//! tenant's host never receives another's cookies) and `Secure` when the public scheme is
//! https.

use crate::secret_token::{token_digest, well_formed, SecretToken};
use actix_web::http::header::{HeaderValue, COOKIE};
use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cookie::{Cookie, SameSite};
use zeroize::Zeroizing;

pub const SESSION_COOKIE: &str = "tenantry_session";
pub const CSRF_COOKIE: &str = "tenantry_csrf";
/// Prefix of a console session cookie's secret.
pub const SESSION_PREFIX: &str = "tncs_";
/// Prefix of a CSRF cookie's secret.
pub const CSRF_PREFIX: &str = "tncf_";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The short-lived cookie that holds an MFA challenge between the two sign-in steps.
pub const MFA_COOKIE: &str = "tenantry_mfa";
/// The cookie that ties an SSO sign-in the console started to the browser that started it.
pub const SSO_COOKIE: &str = "tenantry_sso";
/// Prefix of its secret.
pub const SSO_PREFIX: &str = "tnss_";
/// Where the identity provider sends the browser back: the only path the SSO cookie goes to.
const SSO_PATH: &str = "/v1/auth";

/// The value of cookie `name` in the request, when it is there and well formed for `prefix`.
pub fn read(request: &HttpRequest, name: &str, prefix: &str) -> Option<Zeroizing<String>> {
    request
        .headers()
        .get_all(COOKIE)
        .filter_map(|header| header.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name && well_formed(cookie.value(), prefix))
        .map(|cookie| Zeroizing::new(cookie.value().to_owned()))
}

/// The CSRF token forms carry for the CSRF cookie `secret`: a digest of it, so the page never
/// shows the cookie itself.
pub fn form_token(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(token_digest(&format!("tenantry console csrf:{secret}")))
}

/// Whether `presented` is the form token of the CSRF cookie `secret` (in constant time).
pub fn form_token_matches(secret: &str, presented: &str) -> bool {
    let expected = form_token(secret);
    expected.len() == presented.len()
        && openssl::memcmp::eq(expected.as_bytes(), presented.as_bytes())
}

/// How the console's cookies are written for this deployment.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    /// `Secure` on every cookie (the public scheme is https).
    pub secure: bool,
}

impl CookiePolicy {
    pub fn for_scheme(public_scheme: &str) -> Self {
        Self {
            secure: public_scheme.eq_ignore_ascii_case("https"),
        }
    }

    /// A `Set-Cookie` value that stores `value` under `name` for the browser's session, or
    /// for `max_age` seconds.
    pub fn set(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut cookie = Cookie::build((name.to_owned(), value.to_owned()))
            .path(crate::routes::CONSOLE_PREFIX)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure);
        if let Some(seconds) = max_age {
            cookie = cookie.max_age(cookie::time::Duration::seconds(seconds));
        }
        header_value(&cookie.build())
    }

    /// The SSO cookie, for the ten minutes a sign-in may take. It must reach the SAML ACS,
    /// which the identity provider's page posts to from another site: `SameSite=None` (which
    /// browsers accept only with `Secure`) on https deployments, `Lax` on plain http ones,
    /// where only OIDC/OAuth2 callbacks (top-level GETs) bring it back.
    pub fn set_sso(&self, value: &str) -> HeaderValue {
        let same_site = if self.secure {
            SameSite::None
        } else {
            SameSite::Lax
        };
        let cookie = Cookie::build((SSO_COOKIE, value.to_owned()))
            .path(SSO_PATH)
            .http_only(true)
            .same_site(same_site)
            .secure(self.secure)
            .max_age(cookie::time::Duration::minutes(10))
            .build();
        header_value(&cookie)
    }

    /// Removes the SSO cookie.
    pub fn clear_sso(&self) -> HeaderValue {
        let cookie = Cookie::build((SSO_COOKIE, String::new()))
            .path(SSO_PATH)
            .http_only(true)
            .secure(self.secure)
            .max_age(cookie::time::Duration::ZERO)
            .build();
        header_value(&cookie)
    }

    /// A `Set-Cookie` value that removes cookie `name`.
    pub fn clear(&self, name: &str) -> HeaderValue {
        let cookie = Cookie::build((name.to_owned(), String::new()))
            .path(crate::routes::CONSOLE_PREFIX)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(cookie::time::Duration::ZERO)
            .build();
        header_value(&cookie)
    }
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    // Names and values are ours (fixed names, base64url secrets): always valid header text.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A new CSRF cookie secret.
pub fn new_csrf_secret(
    rng: &ring::rand::SystemRandom,
) -> Result<Zeroizing<String>, crate::envelope::EnvelopeError> {
    SecretToken::generate(rng, CSRF_PREFIX).map(SecretToken::into_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_token_matches_only_its_own_cookie() {
        let rng = ring::rand::SystemRandom::new();
        let secret = new_csrf_secret(&rng).unwrap();
        let other = new_csrf_secret(&rng).unwrap();
        let token = form_token(&secret);
        assert!(form_token_matches(&secret, &token));
        assert!(!form_token_matches(&other, &token));
        assert!(!form_token_matches(&secret, ""));
        assert!(!form_token_matches(&secret, &token[1..]));
        assert!(!token.contains(secret.as_str()));
    }

    #[test]
    fn cookies_are_http_only_lax_host_only_and_secure_on_https() {
        let https = CookiePolicy::for_scheme("https").set(SESSION_COOKIE, "tncs_x", None);
        let text = https.to_str().unwrap();
        for part in ["HttpOnly", "SameSite=Lax", "Path=/console", "Secure"] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!text.contains("Domain"), "{text}");
        let http = CookiePolicy::for_scheme("http").set(SESSION_COOKIE, "tncs_x", None);
        assert!(!http.to_str().unwrap().contains("Secure"));
        let cleared = CookiePolicy::for_scheme("http").clear(SESSION_COOKIE);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }
}
