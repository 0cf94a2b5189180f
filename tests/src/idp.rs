//! The identity providers of the SSO tests, as a test drives them: npm `oidc-provider` (OIDC
//! and plain OAuth2), the pysaml2 and samlify SAML IdPs, all on loopback and started by
//! `deploy/local/test.sh`; their test hooks (clients, accounts, SP metadata), and a tenant's
//! provider made from them through the admin API.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{Client, Reply, BASE_DOMAIN};

pub fn oidc_issuer() -> String {
    std::env::var("TENANTRY_TEST_OIDC_ISSUER")
        .unwrap_or_else(|_| "http://127.0.0.1:18090".to_owned())
}

pub fn saml_idp_url() -> String {
    std::env::var("TENANTRY_TEST_SAML_IDP_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18092".to_owned())
}

fn random_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// An address at the IdP's domain no other test uses.
pub fn idp_address(label: &str) -> String {
    format!("{label}-{}@corp.example", random_hex())
}

/// The tenant's public base URL (what redirect URIs and SAML URLs are made of).
pub fn tenant_base(slug: &str) -> String {
    format!("https://{slug}.{BASE_DOMAIN}")
}

/// The test OIDC provider's registration and test hooks.
pub struct OidcProvider {
    pub issuer: String,
    http: reqwest::Client,
}

pub struct RegisteredClient {
    pub client_id: String,
    pub client_secret: String,
}

impl Default for OidcProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl OidcProvider {
    pub fn new() -> Self {
        Self {
            issuer: oidc_issuer(),
            http: reqwest::Client::new(),
        }
    }

    /// Registers a client (dynamic client registration) for these redirect URIs.
    pub async fn register(&self, redirect_uris: &[String]) -> RegisteredClient {
        self.register_with(redirect_uris, json!({})).await
    }

    /// [`Self::register`] with more client metadata (`id_token_signed_response_alg`,
    /// `token_endpoint_auth_method`, …), which overrides the defaults.
    pub async fn register_with(
        &self,
        redirect_uris: &[String],
        metadata: Value,
    ) -> RegisteredClient {
        let mut body = json!({
            "redirect_uris": redirect_uris,
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        });
        if let (Value::Object(body), Value::Object(metadata)) = (&mut body, metadata) {
            body.extend(metadata);
        }
        let response = self
            .http
            .post(format!("{}/reg", self.issuer))
            .json(&body)
            .send()
            .await
            .expect("the test OIDC provider answers (deploy/local/test.sh starts it)");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        RegisteredClient {
            client_id: body["client_id"].as_str().unwrap().to_owned(),
            client_secret: body["client_secret"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// Sets the claims of the account `login`.
    pub async fn set_account(&self, login: &str, name: &str, groups: &[&str]) {
        let response = self
            .http
            .post(format!("{}/__test/accounts", self.issuer))
            .json(&json!({"login": login, "name": name, "groups": groups}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    /// The next ID token issued to `client_id` gets `claims` merged in and is re-signed (with
    /// a key the provider does not publish when `foreign_key`).
    pub async fn tamper(&self, client_id: &str, claims: Value, foreign_key: bool) {
        self.tamper_with(
            client_id,
            json!({"claims": claims, "foreign_key": foreign_key}),
        )
        .await;
    }

    /// The next ID token issued to `client_id` is re-signed as `how` says (the IdP script's
    /// `/__test/tamper`: `claims`, `foreign_key`, `rotated_key`, `kid`, `hmac`).
    pub async fn tamper_with(&self, client_id: &str, mut how: Value) {
        how["client_id"] = json!(client_id);
        self.hook("tamper", &how).await;
    }

    /// The IdP publishes a new signing key from now on (`tamper_with` `rotated_key` signs
    /// with it); its key id.
    pub async fn rotate_key(&self) -> String {
        let response = self
            .http
            .post(format!("{}/__test/rotate", self.issuer))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["kid"].as_str().unwrap().to_owned()
    }

    /// How `client_id` last authenticated at the token endpoint (`client_secret_basic` or
    /// `client_secret_post`), as the IdP saw it.
    pub async fn token_auth_of(&self, client_id: &str) -> Option<String> {
        let body: Value = self
            .http
            .get(format!("{}/__test/token-auth", self.issuer))
            .query(&[("client_id", client_id)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["method"].as_str().map(str::to_owned)
    }

    async fn hook(&self, name: &str, body: &Value) {
        let response = self
            .http
            .post(format!("{}/__test/{name}", self.issuer))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

/// The test SAML IdP (pysaml2) and its test hooks.
pub struct SamlIdp {
    pub url: String,
    http: reqwest::Client,
}

impl Default for SamlIdp {
    fn default() -> Self {
        Self::new()
    }
}

impl SamlIdp {
    pub fn new() -> Self {
        Self::at(saml_idp_url())
    }

    /// The second SAML implementation: the samlify IdP (deploy/local/idp/samlify-idp.mjs),
    /// whose endpoints and login form have the pysaml2 IdP's shape.
    pub fn samlify() -> Self {
        Self::at(
            std::env::var("TENANTRY_TEST_SAMLIFY_IDP_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:18094".to_owned()),
        )
    }

    fn at(url: String) -> Self {
        Self {
            url,
            http: reqwest::Client::new(),
        }
    }

    /// What the IdP serves at `path`.
    async fn text(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("the test SAML IdP answers (deploy/local/test.sh starts it)");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.text().await.unwrap()
    }

    pub async fn metadata(&self) -> String {
        self.text("/metadata").await
    }

    /// The same IdP under another entity id, offering its SSO service only by HTTP-POST.
    pub async fn post_only_metadata(&self) -> String {
        self.text("/post-only/metadata").await
    }

    pub async fn certificate(&self) -> String {
        self.text("/cert.pem").await
    }

    /// Tells the IdP about an SP (its metadata, as our data plane serves it).
    pub async fn register_sp(&self, metadata: String) {
        let response = self
            .http
            .post(format!("{}/__test/sp", self.url))
            .body(metadata)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::NO_CONTENT,
            "{:?}",
            response.text().await
        );
    }

    pub async fn set_account(&self, login: &str, name: &str, groups: &[&str]) {
        self.set_account_with(login, json!({"name": name, "groups": groups}))
            .await;
    }

    /// The account `login` as `account` says (`name`, `groups`, `attribute_names`: see
    /// deploy/local/idp/saml_idp.py).
    pub async fn set_account_with(&self, login: &str, mut account: Value) {
        account["login"] = json!(login);
        let response = self
            .http
            .post(format!("{}/__test/accounts", self.url))
            .json(&account)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

/// `POST /v1/admin/sso` as `caller`, whatever the answer.
pub async fn create_provider(caller: &Client, body: &Value) -> Reply {
    caller
        .post("/v1/admin/sso")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// An OIDC provider `name` at tenant `slug`, with its own client at the test provider.
pub async fn oidc_provider(
    slug: &str,
    admin: &Client,
    name: &str,
    users: Value,
) -> RegisteredClient {
    let idp = OidcProvider::new();
    let client = idp
        .register(&[format!("{}/v1/auth/sso/{name}/callback", tenant_base(slug))])
        .await;
    let created = create_provider(
        admin,
        &json!({
            "name": name,
            "display_name": "Corp SSO",
            "provider": {
                "kind": "oidc",
                "issuer": idp.issuer,
                "client_id": client.client_id,
                "scopes": ["email", "profile", "groups"],
            },
            "client_secret": client.client_secret,
            "users": users,
            "domains": [{"domain": "corp.example", "require_sso": false}],
        }),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
    client
}
