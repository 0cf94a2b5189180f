//! A provider's configuration: what tenant admins send, how it is checked, and the JSON kept
//! in `sso_providers.settings` (everything but the client secret).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::SsoConfigError as SsoError;

/// Provider names are URL segments: `/v1/auth/sso/{name}/start`.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (2..=40).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
}

/// The kind-specific part, tagged by `kind`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderKind {
    Oidc(OidcSettings),
    Oauth2(OAuth2Settings),
    Saml(SamlSettings),
}

impl ProviderKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Oidc(_) => "oidc",
            Self::Oauth2(_) => "oauth2",
            Self::Saml(_) => "saml",
        }
    }
}

/// OpenID Connect: everything else comes from the issuer's discovery document.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    pub issuer: Url,
    pub client_id: String,
    /// Scopes besides `openid` (default `email`, `profile`).
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// Which claims (ID token, then userinfo) hold the email, name and groups.
    #[serde(default)]
    pub claims: ClaimMapping,
    /// The algorithms an ID token may be signed with (default `RS256`, `ES256`, `PS256`,
    /// `EdDSA`). Only public-key ones: a token signed with the client secret (`HS256`) or not
    /// signed at all is always refused.
    #[serde(default = "IdTokenAlgorithm::defaults")]
    pub id_token_algorithms: Vec<IdTokenAlgorithm>,
    /// How the client authenticates at the token endpoint (default: `client_secret_basic`
    /// unless the discovery document lists only `client_secret_post`). With
    /// `private_key_jwt` there is no client secret: we make the provider a key pair and
    /// publish its public key (`client_jwks_path`) for the IdP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth: Option<TokenEndpointAuth>,
}

/// An ID token signature algorithm (RFC 7518, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum IdTokenAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl IdTokenAlgorithm {
    pub const ALL: [Self; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    fn defaults() -> Vec<Self> {
        vec![Self::RS256, Self::ES256, Self::PS256, Self::EdDSA]
    }
}

/// Client authentication at an OIDC token endpoint (RFC 6749 §2.3.1, OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuth {
    /// The client secret by HTTP Basic authentication (the protocol's default).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with the provider's own private key (RS256), which we make and keep
    /// sealed; the IdP is given the public key.
    PrivateKeyJwt,
}

/// A key pair we make and keep for a provider (sealed where a client secret would be).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnKey {
    /// OIDC `private_key_jwt`: signs our token requests.
    ClientAssertion,
    /// SAML `sign_authn_requests` or `require_encrypted_assertions`: signs our AuthnRequests
    /// and decrypts the assertions the IdP encrypts to it; its certificate is in our SP
    /// metadata.
    SamlKey,
}

impl ProviderKind {
    /// Whether the provider signs its token requests with a key of ours (`private_key_jwt`)
    /// instead of sending a client secret.
    pub fn uses_client_key(&self) -> bool {
        self.own_key() == Some(OwnKey::ClientAssertion)
    }

    /// The key pair of ours this provider's settings need, if any.
    pub fn own_key(&self) -> Option<OwnKey> {
        match self {
            Self::Oidc(OidcSettings {
                token_endpoint_auth: Some(TokenEndpointAuth::PrivateKeyJwt),
                ..
            }) => Some(OwnKey::ClientAssertion),
            Self::Saml(saml) if saml.sign_authn_requests || saml.require_encrypted_assertions => {
                Some(OwnKey::SamlKey)
            }
            _ => None,
        }
    }
}

/// A plain OAuth 2.0 provider (GitHub-style): the user is whatever its userinfo URL returns.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    pub authorization_url: Url,
    pub token_url: Url,
    pub userinfo_url: Url,
    pub client_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Fields of the userinfo JSON (`subject` defaults to `id`, as on GitHub).
    #[serde(default = "ClaimMapping::oauth2_default")]
    pub claims: ClaimMapping,
    /// Where the user's addresses are listed when userinfo does not say which is verified, as
    /// GitHub's `https://api.github.com/user/emails` (`[{email, primary, verified}]`): the
    /// primary verified one is the user's address, verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails_url: Option<Url>,
}

/// Names of the claims or userinfo fields that hold the user's attributes. A dotted name
/// walks into nested objects (`profile.email`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    #[serde(default = "default_subject")]
    pub subject: String,
    #[serde(default = "default_email")]
    pub email: String,
    #[serde(default = "default_email_verified")]
    pub email_verified: String,
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_groups")]
    pub groups: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            subject: default_subject(),
            email: default_email(),
            email_verified: default_email_verified(),
            name: default_name(),
            groups: default_groups(),
        }
    }
}

impl ClaimMapping {
    fn oauth2_default() -> Self {
        Self {
            subject: "id".to_owned(),
            ..Self::default()
        }
    }
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["email".to_owned(), "profile".to_owned()]
}
fn default_subject() -> String {
    "sub".to_owned()
}
fn default_email() -> String {
    "email".to_owned()
}
fn default_email_verified() -> String {
    "email_verified".to_owned()
}
fn default_name() -> String {
    "name".to_owned()
}
fn default_groups() -> String {
    "groups".to_owned()
}

/// SAML 2.0: the IdP's metadata XML (given, or fetched once from `idp_metadata_url` when the
/// provider is saved), or its entity id, SSO URL and signing certificate.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamlSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_metadata_xml: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_metadata_url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_entity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_sso_url: Option<Url>,
    /// PEM or bare base64 DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_certificate: Option<String>,
    /// Attribute names (the NameID is the subject, unless it is transient).
    #[serde(default)]
    pub attributes: SamlAttributes,
    /// The NameID format the AuthnRequest asks for (its `NameIDPolicy`): `unspecified` (the
    /// default: the IdP's choice), `persistent`, `transient` or `email`.
    #[serde(default)]
    pub name_id_format: NameIdFormat,
    /// The attribute that identifies a user when the NameID is transient (asked for, or
    /// sent as such): a transient NameID changes at every sign-in, so it cannot. Default: the
    /// `email` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_attribute: Option<String>,
    /// Whether assertions must arrive encrypted (XML Encryption, to a key made for this
    /// provider whose certificate our SP metadata offers for encryption): a plain assertion is
    /// then refused. A provider with a key (this, or `sign_authn_requests`) decrypts encrypted
    /// assertions either way. Off by default.
    #[serde(default)]
    pub require_encrypted_assertions: bool,
    /// Accept responses no AuthnRequest of ours asked for. Off by default.
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// Sign our AuthnRequests (HTTP-Redirect binding, RSA-SHA256) with a key made for this
    /// provider, whose certificate our SP metadata then names (`AuthnRequestsSigned`), for
    /// IdPs that want signed requests. Off by default.
    #[serde(default)]
    pub sign_authn_requests: bool,
}

/// A SAML NameID format (SAML 2.0 core §8.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NameIdFormat {
    #[default]
    Unspecified,
    Persistent,
    Transient,
    Email,
}

impl NameIdFormat {
    pub const TRANSIENT_URI: &'static str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

    /// The format's URI, as a `NameIDPolicy` states it.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Unspecified => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
            Self::Persistent => "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            Self::Transient => Self::TRANSIENT_URI,
            Self::Email => "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamlAttributes {
    #[serde(default = "default_email")]
    pub email: String,
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_groups")]
    pub groups: String,
}

impl Default for SamlAttributes {
    fn default() -> Self {
        Self {
            email: default_email(),
            name: default_name(),
            groups: default_groups(),
        }
    }
}

/// What happens to the users a provider signs in (just-in-time provisioning).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// Role of a user created at their first sign-in when no group maps to a role.
    #[serde(default = "default_role")]
    pub default_role: String,
    /// Group (or attribute value) → role. The roles named here are managed by the IdP: every
    /// sign-in adds those the user's groups map to and removes the others.
    #[serde(default)]
    pub role_mapping: BTreeMap<String, String>,
    /// Whether a first sign-in whose (IdP-verified) address belongs to an existing user signs
    /// in as that user. Off: such a sign-in is refused (409 `sso_account_exists`).
    #[serde(default)]
    pub link_existing_users: bool,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            default_role: default_role(),
            role_mapping: BTreeMap::new(),
            link_existing_users: false,
        }
    }
}

fn default_role() -> String {
    "member".to_owned()
}

/// What is stored in `sso_providers.settings`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredSettings {
    pub provider: ProviderKind,
    #[serde(default)]
    pub users: UserSettings,
}

/// An email domain bound to a provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainBinding {
    pub domain: String,
    #[serde(default)]
    pub require_sso: bool,
}

/// A provider as an admin sends it (create or replace). No `Debug`: it holds the secret.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    pub provider: ProviderKind,
    /// OIDC/OAuth2 only. On replace, absent keeps the stored secret.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub users: UserSettings,
    #[serde(default)]
    pub domains: Vec<DomainBinding>,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

/// Whether `url` may be fetched by the data plane: `https`, or `http` on a loopback host
/// (local IdPs in development and tests).
fn check_fetchable(field: &str, url: &Url) -> Result<(), SsoError> {
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(SsoError::Invalid(format!("{field} must be an https URL"))),
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), SsoError> {
    if value.trim().is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(SsoError::Invalid(format!(
            "{field} must be 1 to {max} printable characters"
        )));
    }
    Ok(())
}

fn check_scopes(scopes: &[String]) -> Result<(), SsoError> {
    if scopes.len() > 20
        || scopes.iter().any(|scope| {
            scope.is_empty()
                || scope.len() > 100
                || !scope
                    .bytes()
                    .all(|byte| byte.is_ascii_graphic() && byte != b'"' && byte != b'\\')
        })
    {
        return Err(SsoError::Invalid(
            "scopes must be at most 20 words of visible ASCII".to_owned(),
        ));
    }
    Ok(())
}

/// Lower-cased, checked domain names.
pub fn normalise_domains(domains: &[DomainBinding]) -> Result<Vec<DomainBinding>, SsoError> {
    let mut normalised: Vec<DomainBinding> = Vec::with_capacity(domains.len());
    for binding in domains {
        let domain = binding.domain.trim().to_ascii_lowercase();
        let valid = (3..=253).contains(&domain.len())
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            });
        if !valid {
            return Err(SsoError::Invalid(format!(
                "{:?} is not a domain name",
                binding.domain
            )));
        }
        if normalised.iter().any(|seen| seen.domain == domain) {
            return Err(SsoError::Invalid(format!(
                "domain {domain} is listed twice"
            )));
        }
        normalised.push(DomainBinding {
            domain,
            require_sso: binding.require_sso,
        });
    }
    if normalised.len() > 50 {
        return Err(SsoError::Invalid(
            "at most 50 domains per provider".to_owned(),
        ));
    }
    Ok(normalised)
}

/// Largest IdP metadata document accepted.
pub const MAX_METADATA_BYTES: usize = 512 * 1024;

impl ProviderInput {
    /// Fetches a SAML IdP's metadata from `idp_metadata_url` (when given without the XML) and
    /// keeps it in `idp_metadata_xml`: the provider then works from the stored copy, and a
    /// later change at the IdP needs a `PUT` (re-fetch) — a deliberate pin, so a hijacked
    /// metadata URL cannot swap the signing certificate behind the tenant's back. Runs before
    /// any transaction is opened.
    pub async fn fetch_saml_metadata(
        &mut self,
        egress: &crate::egress::Egress,
    ) -> Result<(), SsoError> {
        let ProviderKind::Saml(saml) = &mut self.provider else {
            return Ok(());
        };
        let Some(url) = saml.idp_metadata_url.clone() else {
            return Ok(());
        };
        if saml.idp_metadata_xml.is_some() {
            return Err(SsoError::Invalid(
                "give idp_metadata_url or idp_metadata_xml, not both".to_owned(),
            ));
        }
        check_fetchable("idp_metadata_url", &url)?;
        let fetch_error = |error: crate::egress::EgressError| {
            SsoError::Invalid(format!("idp_metadata_url: {error}"))
        };
        let response = egress
            .get(url)
            .map_err(fetch_error)?
            .send()
            .await
            .map_err(|error| fetch_error(error.into()))?;
        if !response.status().is_success() {
            return Err(SsoError::Invalid(format!(
                "idp_metadata_url answered {}",
                response.status()
            )));
        }
        let bytes = crate::egress::read_body(response, MAX_METADATA_BYTES)
            .await
            .map_err(fetch_error)?;
        let xml = String::from_utf8(bytes)
            .map_err(|_| SsoError::Invalid("the IdP metadata is not UTF-8".to_owned()))?;
        saml.idp_metadata_xml = Some(xml);
        Ok(())
    }

    /// Checks everything that can be checked without the network. SAML settings are also
    /// parsed into a service provider (`saml::idp_from_settings`) so a configuration without
    /// a signing certificate is refused here.
    pub fn validate(&self) -> Result<(), SsoError> {
        if !valid_name(&self.name) {
            return Err(SsoError::Invalid(
                "name must be 2-40 characters of a-z, 0-9 and '-', starting with a letter"
                    .to_owned(),
            ));
        }
        if self.name == "presets" {
            return Err(SsoError::Invalid(
                "\"presets\" is taken (GET /v1/admin/sso/presets); choose another name".to_owned(),
            ));
        }
        if self.display_name.len() > 200 || self.display_name.chars().any(char::is_control) {
            return Err(SsoError::Invalid(
                "display_name must be at most 200 printable characters".to_owned(),
            ));
        }
        if let Some(secret) = &self.client_secret {
            check_text("client_secret", secret, 1000)?;
            if self.provider.uses_client_key() {
                return Err(SsoError::Invalid(
                    "with private_key_jwt there is no client_secret: give the IdP the public key at client_jwks_path".to_owned(),
                ));
            }
        }
        match &self.provider {
            ProviderKind::Oidc(oidc) => {
                check_fetchable("issuer", &oidc.issuer)?;
                check_text("client_id", &oidc.client_id, 500)?;
                check_scopes(&oidc.scopes)?;
                if oidc.id_token_algorithms.is_empty() || oidc.id_token_algorithms.len() > 9 {
                    return Err(SsoError::Invalid(
                        "id_token_algorithms must name 1 to 9 algorithms".to_owned(),
                    ));
                }
            }
            ProviderKind::Oauth2(oauth2) => {
                check_fetchable("authorization_url", &oauth2.authorization_url)?;
                check_fetchable("token_url", &oauth2.token_url)?;
                check_fetchable("userinfo_url", &oauth2.userinfo_url)?;
                if let Some(emails_url) = &oauth2.emails_url {
                    check_fetchable("emails_url", emails_url)?;
                }
                check_text("client_id", &oauth2.client_id, 500)?;
                check_scopes(&oauth2.scopes)?;
            }
            ProviderKind::Saml(saml) => {
                if self.client_secret.is_some() {
                    return Err(SsoError::Invalid(
                        "a SAML provider has no client_secret".to_owned(),
                    ));
                }
                if let Some(attribute) = &saml.subject_attribute {
                    check_text("subject_attribute", attribute, 500)?;
                }
                super::saml_metadata::IdentityProvider::from_settings(saml)?;
            }
        }
        check_text("users.default_role", &self.users.default_role, 63)?;
        if self.users.role_mapping.len() > 100 {
            return Err(SsoError::Invalid("at most 100 role mappings".to_owned()));
        }
        for (group, role) in &self.users.role_mapping {
            check_text("users.role_mapping group", group, 200)?;
            check_text("users.role_mapping role", role, 63)?;
        }
        Ok(())
    }

    /// Roles this configuration names (default and mapped), to check they exist and that the
    /// admin holds them.
    pub fn roles(&self) -> Vec<String> {
        let mut roles: Vec<String> = std::iter::once(self.users.default_role.clone())
            .chain(self.users.role_mapping.values().cloned())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }
}

/// Reads a claim by a dotted path from a JSON object.
pub fn claim<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(value, |current, segment| current.get(segment))
}

/// A claim as text (strings, numbers: GitHub's `id` is a number).
pub fn claim_text(value: &serde_json::Value, path: &str) -> Option<String> {
    match claim(value, path)? {
        serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A claim as a list of strings (a single string counts as a list of one).
pub fn claim_list(value: &serde_json::Value, path: &str) -> Vec<String> {
    match claim(value, path) {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(text)) => vec![text.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_url_segments() {
        assert!(valid_name("okta"));
        assert!(valid_name("azure-ad2"));
        assert!(!valid_name("Okta"));
        assert!(!valid_name("a"));
        assert!(!valid_name("9abc"));
        assert!(!valid_name("a/b"));
    }

    #[test]
    fn claims_are_read_by_dotted_path() {
        let value = serde_json::json!({"id": 42, "profile": {"email": "a@b.c"}, "groups": "x"});
        assert_eq!(claim_text(&value, "id").as_deref(), Some("42"));
        assert_eq!(
            claim_text(&value, "profile.email").as_deref(),
            Some("a@b.c")
        );
        assert_eq!(claim_list(&value, "groups"), vec!["x".to_owned()]);
        assert!(claim_text(&value, "missing.field").is_none());
    }
}
