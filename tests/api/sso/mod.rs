//! Single sign-on against real identity providers on loopback: npm `oidc-provider` (OIDC and,
//! through its userinfo endpoint, plain OAuth2) and a pysaml2 IdP (SAML 2.0), both started by
//! `deploy/local/test.sh`. The tests drive the browser's part with a cookie-keeping HTTP
//! client: follow redirects, post the IdP's forms, and deliver the final redirect to the
//! tenant's host (`Host: <slug>.tenantry.test`), as a browser would.

mod admin;
mod apps;
mod console;
mod egress;
mod oidc;
mod oidc_interop;
mod oidc_security;
mod operator;
mod presets;
mod saml;

use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::client::Tokens;
pub use tenantry_tests::idp::{
    create_provider, idp_address, oidc_issuer, oidc_provider, saml_idp_url, tenant_base,
    OidcProvider, RegisteredClient, SamlIdp,
};
use tenantry_tests::{Client, Reply, TestApp, BASE_DOMAIN};

/// A browser: keeps the IdP's cookies, follows redirects by hand, and hands the final
/// redirect back to the tenant's host.
pub struct Browser {
    http: reqwest::Client,
    /// The data plane, over the same cookie jar; requests name the tenant by host.
    data_plane: Client,
}

/// The first `attribute="…"` value inside the first tag that matches `tag_start`.
fn html_attribute(html: &str, tag_start: &str, attribute: &str) -> Option<String> {
    let tag = &html[html.find(tag_start)?..];
    let tag = &tag[..tag.find('>')?];
    let marker = format!("{attribute}=\"");
    let value = &tag[tag.find(&marker)? + marker.len()..];
    Some(value[..value.find('"')?].replace("&amp;", "&"))
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self::at(&app.data_url)
    }

    /// A browser whose requests to the tenant go to the data plane at `data_url` (a node
    /// process of its own, say).
    pub fn at(data_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            data_plane: Client::with_http(http.clone(), data_url),
            http,
        }
    }

    /// A GET to the data plane as `https://<slug>.tenantry.test<path_and_query>`.
    pub async fn tenant_get(&self, slug: &str, path_and_query: &str) -> Reply {
        self.data_plane
            .get(path_and_query)
            .header("host", &format!("{slug}.{BASE_DOMAIN}"))
            .send()
            .await
            .unwrap()
    }

    /// A form POST to the data plane at the tenant's host.
    pub async fn tenant_post_form(&self, slug: &str, path: &str, form: &[(&str, &str)]) -> Reply {
        // `application/x-www-form-urlencoded` is what a URL's query pairs are encoded as.
        let mut encoded = reqwest::Url::parse("http://form.invalid/").unwrap();
        encoded.query_pairs_mut().extend_pairs(form);
        self.data_plane
            .post(path)
            .header("host", &format!("{slug}.{BASE_DOMAIN}"))
            .body(
                encoded.query().unwrap_or_default(),
                "application/x-www-form-urlencoded",
            )
            .send()
            .await
            .unwrap()
    }

    /// `GET /v1/auth/sso/{provider}/start` at the tenant: the IdP URL it redirects to.
    pub async fn start(&self, slug: &str, provider: &str) -> String {
        let reply = self
            .tenant_get(slug, &format!("/v1/auth/sso/{provider}/start"))
            .await;
        assert_eq!(
            reply.status(),
            StatusCode::FOUND,
            "start answered {}",
            reply.text()
        );
        reply.header(LOCATION.as_str()).unwrap().to_owned()
    }

    /// Walks the OIDC provider's pages from `url` (signing in as `login`, consenting) until it
    /// redirects to the tenant; returns that redirect (the callback URL with code and state).
    pub async fn sign_in_at_oidc_provider(
        &self,
        url: &str,
        login: &str,
        tenant_base: &str,
    ) -> String {
        let mut next = url.to_owned();
        let mut form: Option<Vec<(String, String)>> = None;
        for _ in 0..20 {
            if next.starts_with(tenant_base) {
                return next;
            }
            let response = match form.take() {
                Some(fields) => self.http.post(&next).form(&fields).send().await.unwrap(),
                None => self.http.get(&next).send().await.unwrap(),
            };
            let base = reqwest::Url::parse(&next).unwrap();
            if response.status().is_redirection() {
                let location = response.headers()[LOCATION].to_str().unwrap();
                next = base.join(location).unwrap().to_string();
                continue;
            }
            let status = response.status();
            let html = response.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "the IdP answered: {html}");
            let action = html_attribute(&html, "<form", "action")
                .unwrap_or_else(|| panic!("no form in the IdP's page: {html}"));
            let prompt = html_attribute(&html, "<input type=\"hidden\" name=\"prompt\"", "value")
                .unwrap_or_else(|| panic!("no prompt in the IdP's form: {html}"));
            next = base.join(&action).unwrap().to_string();
            form = Some(if prompt == "login" {
                vec![
                    ("prompt".to_owned(), "login".to_owned()),
                    ("login".to_owned(), login.to_owned()),
                    ("password".to_owned(), "any password".to_owned()),
                ]
            } else {
                vec![("prompt".to_owned(), prompt)]
            });
        }
        panic!("the IdP never redirected back to {tenant_base}");
    }

    /// Delivers a redirect to `https://<slug>.tenantry.test/...` to the data plane.
    pub async fn follow_to_tenant(&self, slug: &str, url: &str) -> Reply {
        let path_and_query = url
            .strip_prefix(&tenant_base(slug))
            .unwrap_or_else(|| panic!("{url} is not at {slug}'s host"));
        self.tenant_get(slug, path_and_query).await
    }
}

/// What the IdP's auto-submitting page would post to the ACS.
#[derive(Debug, Clone)]
pub struct SamlPost {
    pub acs: String,
    pub saml_response: String,
    pub relay_state: Option<String>,
}

impl Browser {
    /// Starts a SAML sign-in at the tenant and signs in at the IdP as `login`; `variant`
    /// asks the IdP for a forged response (see deploy/local/idp/saml_idp.py).
    pub async fn saml_response(
        &self,
        slug: &str,
        provider: &str,
        login: &str,
        variant: &str,
        victim: &str,
    ) -> SamlPost {
        let redirect = self.start(slug, provider).await;
        self.saml_response_from(&redirect, login, variant, victim)
            .await
    }

    /// Signs in at the IdP as `login` from `redirect`, the start's redirect to the IdP; what
    /// the IdP's page would post to the ACS.
    pub async fn saml_response_from(
        &self,
        redirect: &str,
        login: &str,
        variant: &str,
        victim: &str,
    ) -> SamlPost {
        assert!(redirect.contains("SAMLRequest="), "{redirect}");
        let page = self.http.get(redirect).send().await.unwrap();
        let status = page.status();
        let page = page.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "the IdP answered {page}");
        let hidden = |html: &str, name: &str| {
            html_attribute(
                html,
                &format!("<input type=\"hidden\" name=\"{name}\""),
                "value",
            )
        };
        let request = hidden(&page, "SAMLRequest").unwrap();
        let relay_state = hidden(&page, "RelayState").unwrap_or_default();
        let login_url = reqwest::Url::parse(redirect)
            .unwrap()
            .join("/sso/login")
            .unwrap();
        let answer = self
            .http
            .post(login_url)
            .form(&[
                ("SAMLRequest", request.as_str()),
                ("RelayState", relay_state.as_str()),
                ("username", login),
                ("variant", variant),
                ("victim", victim),
            ])
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let answer = answer.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "the IdP answered {answer}");
        SamlPost {
            acs: html_attribute(&answer, "<form", "action").unwrap(),
            saml_response: hidden(&answer, "SAMLResponse").unwrap(),
            relay_state: hidden(&answer, "RelayState"),
        }
    }

    /// The form of a start's page for an IdP that takes requests by HTTP-POST: where it posts,
    /// and its fields (`SAMLRequest`, `RelayState`).
    pub fn posted_form(page: &str) -> (String, Vec<(String, String)>) {
        let action = html_attribute(page, "<form", "action").expect("a form");
        let fields = ["SAMLRequest", "RelayState"]
            .iter()
            .map(|name| {
                let value = html_attribute(
                    page,
                    &format!("<input type=\"hidden\" name=\"{name}\""),
                    "value",
                )
                .unwrap_or_else(|| panic!("no {name} in {page}"));
                ((*name).to_owned(), value)
            })
            .collect();
        (action, fields)
    }

    /// Posts `fields` to the IdP at `action` as the page's form would, then signs in there as
    /// `login`: what the IdP's page would post to the ACS. The IdP's answer to the posted
    /// request when it refuses it.
    pub async fn saml_response_posted(
        &self,
        action: &str,
        fields: &[(String, String)],
        login: &str,
    ) -> Result<SamlPost, (StatusCode, String)> {
        let page = self.http.post(action).form(fields).send().await.unwrap();
        let status = page.status();
        let page = page.text().await.unwrap();
        if status != StatusCode::OK {
            return Err((status, page));
        }
        let mut form: Vec<(String, String)> = fields.to_vec();
        form.push(("username".to_owned(), login.to_owned()));
        form.push(("binding".to_owned(), "post".to_owned()));
        let login_url = reqwest::Url::parse(action)
            .unwrap()
            .join("/sso/login")
            .unwrap();
        let answer = self.http.post(login_url).form(&form).send().await.unwrap();
        let status = answer.status();
        let answer = answer.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "the IdP answered {answer}");
        let hidden = |name: &str| {
            html_attribute(
                &answer,
                &format!("<input type=\"hidden\" name=\"{name}\""),
                "value",
            )
        };
        Ok(SamlPost {
            acs: html_attribute(&answer, "<form", "action").unwrap(),
            saml_response: hidden("SAMLResponse").unwrap(),
            relay_state: hidden("RelayState"),
        })
    }

    /// Posts a SAML response to `provider`'s ACS at `slug` (with its RelayState unless
    /// `relay_state` is false).
    pub async fn post_to_acs(
        &self,
        slug: &str,
        provider: &str,
        post: &SamlPost,
        relay_state: bool,
    ) -> Reply {
        let mut form = vec![("SAMLResponse", post.saml_response.as_str())];
        if let (true, Some(relay)) = (relay_state, post.relay_state.as_deref()) {
            form.push(("RelayState", relay));
        }
        self.tenant_post_form(slug, &format!("/v1/auth/saml/{provider}/acs"), &form)
            .await
    }

    /// A genuine SAML sign-in as `login` through `provider` at `slug`, asserted to succeed.
    pub async fn saml_sign_in(&self, slug: &str, provider: &str, login: &str) {
        let post = self.saml_response(slug, provider, login, "", "").await;
        let reply = self.post_to_acs(slug, provider, &post, true).await;
        assert_eq!(reply.status(), StatusCode::OK, "{}", reply.text());
    }
}

/// A SAML provider `name` at tenant `slug` from the test IdP's metadata; the IdP learns the
/// tenant's SP metadata.
pub async fn saml_provider(
    app: &TestApp,
    slug: &str,
    admin: &Client,
    name: &str,
    extra: Value,
) -> Value {
    let idp = SamlIdp::new();
    let mut provider = json!({"kind": "saml", "idp_metadata_xml": idp.metadata().await});
    if let (Value::Object(provider), Value::Object(extra)) = (&mut provider, extra) {
        provider.extend(extra);
    }
    let created = create_provider(
        admin,
        &json!({"name": name, "provider": provider,
                "users": {"role_mapping": {"auditors": "manager"}}}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    let metadata = Browser::new(app)
        .tenant_get(slug, &format!("/v1/auth/saml/{name}/metadata"))
        .await;
    assert_eq!(metadata.status(), StatusCode::OK);
    idp.register_sp(metadata.text()).await;
    created.value()
}

/// Runs a whole OIDC sign-in at `slug` through provider `name` as `login`; the callback's
/// answer.
pub async fn oidc_sign_in(app: &TestApp, slug: &str, name: &str, login: &str) -> Reply {
    let browser = Browser::new(app);
    let authorize = browser.start(slug, name).await;
    let callback = browser
        .sign_in_at_oidc_provider(&authorize, login, &tenant_base(slug))
        .await;
    browser.follow_to_tenant(slug, &callback).await
}

/// The tokens a successful SSO sign-in answered with.
pub fn tokens_of(signed_in: &Reply) -> Tokens {
    assert_eq!(signed_in.status(), StatusCode::OK, "{}", signed_in.text());
    signed_in.json().unwrap()
}

/// A client of tenant `slug` holding the session an SSO sign-in answered with.
pub fn session_of(app: &TestApp, slug: &str, signed_in: &Reply) -> Client {
    app.tenant(slug).with_tokens(tokens_of(signed_in))
}

/// The claims of an access token (no verification: the data plane checks it when used).
pub fn claims(access_token: &str) -> Value {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
