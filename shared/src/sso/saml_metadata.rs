//! A SAML IdP's metadata as a provider configuration gives it (metadata XML, or entity id +
//! SSO URL + signing certificate), checked with samael: a configuration without a signing
//! certificate is refused, because samael checks **no signature at all** when the IdP
//! metadata has none.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use samael::metadata::EntityDescriptor;
use samael::service_provider::ServiceProvider;
use url::Url;

use super::settings::SamlSettings;
use super::SsoConfigError as SsoError;

pub const HTTP_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// How an AuthnRequest reaches the IdP: in the URL of a redirect (preferred, when the IdP
/// offers it), or in a form the browser posts (for IdPs that take only that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoBinding {
    Redirect,
    Post,
}

/// An IdP's metadata, checked: it has a signing certificate and an HTTP-Redirect or HTTP-POST
/// SSO URL.
pub struct IdentityProvider {
    pub metadata: EntityDescriptor,
    pub sso_url: String,
    pub sso_binding: SsoBinding,
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The base64 DER of a PEM or bare-base64 certificate, checked to parse as X.509.
fn certificate_base64(text: &str) -> Result<String, SsoError> {
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.chars().filter(|character| !character.is_whitespace()))
        .collect();
    let der = STANDARD
        .decode(&body)
        .map_err(|_| SsoError::Invalid("idp_certificate is not PEM or base64".to_owned()))?;
    openssl::x509::X509::from_der(&der)
        .map_err(|_| SsoError::Invalid("idp_certificate is not an X.509 certificate".to_owned()))?;
    Ok(body)
}

impl IdentityProvider {
    /// Reads the IdP from metadata XML or from entity id + SSO URL + certificate. Refuses
    /// configurations without a signing certificate: samael would check no signature at all.
    pub fn from_settings(settings: &SamlSettings) -> Result<Self, SsoError> {
        let xml = match (
            &settings.idp_metadata_xml,
            &settings.idp_entity_id,
            &settings.idp_sso_url,
            &settings.idp_certificate,
        ) {
            (Some(xml), None, None, None) => {
                if xml.len() > super::settings::MAX_METADATA_BYTES {
                    return Err(SsoError::Invalid(
                        "idp_metadata_xml is too large".to_owned(),
                    ));
                }
                xml.clone()
            }
            (None, Some(entity_id), Some(sso_url), certificate) => {
                let certificate = certificate.as_deref().ok_or_else(|| {
                    SsoError::Invalid(
                        "a SAML provider needs the IdP's signing certificate".to_owned(),
                    )
                })?;
                let certificate = certificate_base64(certificate)?;
                format!(
                    r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{certificate}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="{HTTP_REDIRECT}" Location="{location}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
                    entity = xml_escape(entity_id),
                    location = xml_escape(sso_url.as_str()),
                )
            }
            _ => {
                return Err(SsoError::Invalid(
                    "give either idp_metadata_xml (or idp_metadata_url), or idp_entity_id + \
                     idp_sso_url + idp_certificate"
                        .to_owned(),
                ))
            }
        };
        let metadata: EntityDescriptor = xml.parse().map_err(|error| {
            SsoError::Invalid(format!("the IdP metadata does not parse: {error}"))
        })?;
        if metadata.entity_id.is_none() {
            return Err(SsoError::Invalid(
                "the IdP metadata has no entityID".to_owned(),
            ));
        }
        let probe = ServiceProvider {
            idp_metadata: metadata.clone(),
            ..ServiceProvider::default()
        };
        let certificates = probe
            .idp_signing_certs()
            .map_err(|error| {
                SsoError::Invalid(format!("the IdP certificate does not parse: {error}"))
            })?
            .unwrap_or_default();
        if certificates.is_empty() {
            return Err(SsoError::Invalid(
                "a SAML provider needs the IdP's signing certificate (the metadata has none)"
                    .to_owned(),
            ));
        }
        let (sso_url, sso_binding) = match probe.sso_binding_location(HTTP_REDIRECT) {
            Some(url) => (url, SsoBinding::Redirect),
            None => probe
                .sso_binding_location(HTTP_POST)
                .map(|url| (url, SsoBinding::Post))
                .ok_or_else(|| {
                    SsoError::Invalid(
                        "the IdP metadata has no HTTP-Redirect or HTTP-POST SingleSignOnService"
                            .to_owned(),
                    )
                })?,
        };
        let parsed = Url::parse(&sso_url)
            .map_err(|_| SsoError::Invalid("the IdP SSO URL is not a URL".to_owned()))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(SsoError::Invalid(
                "the IdP SSO URL must be http(s)".to_owned(),
            ));
        }
        Ok(Self {
            metadata,
            sso_url,
            sso_binding,
        })
    }
}
