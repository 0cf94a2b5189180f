//! A browser's view of the tenant console for the integration tests: plain HTTP, cookies
//! kept as a browser keeps them (per tenant: each tenant is a host of its own), redirects
//! not followed so tests can see them, and forms posted with the CSRF token of the page they
//! came from. The real browser runs in `tests/console/` (Playwright); this is for the
//! properties a browser would hide.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

/// A console page as the browser received it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
    }

    /// The CSRF token the page's forms carry.
    pub fn csrf(&self) -> Option<String> {
        let marker = "name=\"csrf\" value=\"";
        let start = self.html.find(marker)? + marker.len();
        let end = self.html[start..].find('"')? + start;
        Some(self.html[start..end].to_owned())
    }

    /// The `Set-Cookie` line the page set for `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|line| line.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

/// One browser on one tenant's host.
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    base_url: String,
    tenant: String,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(http: reqwest::Client, base_url: &str, tenant: &str) -> Self {
        Self {
            http,
            base_url: base_url.to_owned(),
            tenant: tenant.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    /// A browser on `tenant`'s console of `app` (the same as `TestApp::browser`).
    pub fn new_for(app: &crate::TestApp, tenant: &str) -> Self {
        app.browser(tenant)
    }

    /// The same browser's cookies sent to another tenant's host (what a browser never does:
    /// cookies are host-only; a test of what happens if they were).
    pub fn on_tenant(&self, tenant: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            ..self.clone()
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        // What a browser asks for when it follows a link or posts a form.
        let mut request = request.header("X-Tenant", &self.tenant).header(
            reqwest::header::ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        );
        if !self.cookies.is_empty() {
            request = request.header(COOKIE, self.cookie_header());
        }
        let reply = request.send().await.expect("the console answers");
        for line in reply.headers().get_all(SET_COOKIE) {
            let line = line.to_str().unwrap_or_default();
            let pair = line.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || line.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        Page {
            status: reply.status(),
            headers: reply.headers().clone(),
            html: reply.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base_url));
        self.send(request).await
    }

    /// Posts `fields` as a form, as they are (a test of CSRF sets the token itself).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .form(fields);
        self.send(request).await
    }

    /// Opens `page_path`, then posts `fields` to `action` with that page's CSRF token, as
    /// submitting the page's form does.
    pub async fn submit(&mut self, page_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(page_path).await;
        let csrf = page
            .csrf()
            .unwrap_or_else(|| panic!("{page_path} has no form: {} {}", page.status, page.html));
        let mut fields = fields.to_vec();
        fields.push(("csrf", &csrf));
        self.post_raw(action, &fields).await
    }

    /// Opens `page_path`, then posts `fields` and `files` (field, file name, content) to
    /// `action` as a `multipart/form-data` form with that page's CSRF token, as submitting a
    /// form with a file field does.
    pub async fn upload(
        &mut self,
        page_path: &str,
        action: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, Vec<u8>)],
    ) -> Page {
        let page = self.get(page_path).await;
        let csrf = page
            .csrf()
            .unwrap_or_else(|| panic!("{page_path} has no form: {} {}", page.status, page.html));
        let mut form = reqwest::multipart::Form::new().text("csrf", csrf);
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        for (name, file_name, content) in files {
            form = form.part(
                name.to_string(),
                reqwest::multipart::Part::bytes(content.clone()).file_name(file_name.to_string()),
            );
        }
        let request = self
            .http
            .post(format!("{}{action}", self.base_url))
            .multipart(form);
        self.send(request).await
    }

    /// Signs in with a password (no second factor); the page the sign-in redirected to.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.submit(
            "/console/sign-in",
            "/console/sign-in",
            &[("email", email), ("password", password)],
        )
        .await
    }
}

/// The operator account [`Browser::operator`] signs in as.
pub const OPERATOR: &str = "ops@tenantry.example";
pub const OPERATOR_PASSWORD: &str = "an operator's long passphrase";

impl Browser {
    /// A browser on the control plane (the operator console), nobody signed in.
    pub fn on_control_plane(app: &crate::TestApp) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self::new(http, &app.control_url, "")
    }

    /// A browser on the control plane, signed in as a fresh operator account ([`OPERATOR`]).
    pub async fn operator(app: &crate::TestApp) -> Self {
        control_plane::operators::accounts::add(
            &app.control,
            &shared::email::Email::parse(OPERATOR).unwrap(),
            zeroize::Zeroizing::new(OPERATOR_PASSWORD.to_owned()),
        )
        .await
        .unwrap();
        let mut browser = Self::on_control_plane(app);
        let landed = browser.sign_in(OPERATOR, OPERATOR_PASSWORD).await;
        assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.html);
        browser
    }
}
