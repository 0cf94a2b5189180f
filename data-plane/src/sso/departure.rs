//! How a sign-in's start sends the browser to its identity provider: a redirect (OIDC, OAuth2,
//! SAML's HTTP-Redirect binding), or, for a SAML IdP that takes requests only by HTTP-POST, a
//! page whose form the browser posts there at once (SAML bindings §3.5).
//!
//! The page runs one inline script (`document.forms[0].submit()`), allowed by its hash and
//! nothing else; its CSP lets forms go only to the IdP's origin. Without script the browser
//! shows a "Continue" button that does the same.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::HttpResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use shared::http::escape_html;
use url::Url;

/// Where the browser goes to sign in.
#[derive(Debug, Clone)]
pub enum Departure {
    /// A 302 to the URL.
    Redirect(Url),
    /// A page that posts `fields` to `action`.
    Post {
        action: Url,
        fields: Vec<(&'static str, String)>,
    },
}

/// The page's only script.
const SUBMIT: &str = "document.forms[0].submit();";

impl Departure {
    /// The answer sending the browser on, with `extra` headers (a console's cookie).
    pub fn response(&self, extra: &[(HeaderName, HeaderValue)]) -> HttpResponse {
        let mut response = match self {
            Self::Redirect(url) => HttpResponse::Found()
                .insert_header((header::LOCATION, url.as_str()))
                .finish(),
            Self::Post { action, fields } => post_page(action, fields),
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in extra {
            headers.append(name.clone(), value.clone());
        }
        response
    }
}

fn post_page(action: &Url, fields: &[(&'static str, String)]) -> HttpResponse {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape_html(name),
                escape_html(value)
            )
        })
        .collect();
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signing in\
         </title></head><body><form method=\"post\" action=\"{action}\">{inputs}<p>Sending you \
         to your identity provider.</p><button type=\"submit\">Continue</button></form>\
         <script>{SUBMIT}</script></body></html>",
        action = escape_html(action.as_str()),
    );
    let script_hash = STANDARD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        SUBMIT.as_bytes(),
    ));
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{script_hash}'; form-action {origin}; \
         frame-ancestors 'none'; base-uri 'none'",
        origin = action.origin().ascii_serialization(),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, policy))
        .body(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_post_page_escapes_its_fields_and_lets_forms_go_only_to_the_idp() {
        let action = Url::parse("https://idp.example/sso?x=1&y=2").unwrap();
        let departure = Departure::Post {
            action,
            fields: vec![("SAMLRequest", "PD94\"><script>".to_owned())],
        };
        let response = departure.response(&[]);
        assert_eq!(response.status(), actix_web::http::StatusCode::OK);
        let policy = response
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            policy.contains("form-action https://idp.example;"),
            "{policy}"
        );
        assert!(policy.contains("script-src 'sha256-"), "{policy}");
        let body = actix_web::body::MessageBody::try_into_bytes(response.into_body()).unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            body.contains(r#"action="https://idp.example/sso?x=1&amp;y=2""#),
            "{body}"
        );
        assert!(
            body.contains("value=\"PD94&quot;&gt;&lt;script&gt;\""),
            "{body}"
        );
    }
}
