//! SAML 2.0 service provider (samael with libxmlsec): per-tenant SP metadata, SP-initiated
//! login (AuthnRequest over HTTP-Redirect or HTTP-POST) and the assertion consumer service
//! (HTTP-POST; encrypted assertions are opened by `saml_encryption`).
//!
//! Checks on every response: exactly one assertion in the whole document (an extra one
//! anywhere — before or after the signed one, in `Extensions`, nested — is refused before
//! any signature work), an XML signature on the Response or the Assertion by the
//! configured IdP certificate with RSA-SHA256 or stronger (samael keeps only the signed part
//! of the document, so an unsigned assertion injected beside a signed one is never read), the
//! issuer, `Destination` and `Recipient` = our ACS URL, the audience = our entity id (an
//! assertion without an audience restriction is refused too), `NotBefore`/`NotOnOrAfter` with
//! 60 s of skew, `InResponseTo` = the request of the login transaction named by `RelayState`
//! (spent on first use), and the assertion id not seen before. IdP-initiated responses are
//! refused unless the provider allows them.
//!
//! samael's checks read the system clock (chrono), not the injected one.

use std::sync::Arc;

use base64::Engine as _;
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::{EncryptionMethod, KeyDescriptor};
use samael::schema::{Assertion, AuthnRequest};
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use samael::traits::ToXml;
use url::Url;

use shared::sso::saml_metadata::{IdentityProvider, SsoBinding};

use super::departure::Departure;
use super::saml_encryption;
use super::settings::{NameIdFormat, ProviderKind, SamlSettings};
use super::sign_in::{self, ExternalIdentity};
use super::store::{self, NewTransaction, ProviderRow};
use super::transactions;
use super::{SsoError, TRANSACTION_LIFETIME};
use crate::identity::service::Client;
use crate::state::DataPlane;
use crate::tenancy::RequestContext;
use crate::tokens::access;

/// Clock skew allowed on NotBefore/NotOnOrAfter.
const CLOCK_SKEW_SECONDS: i64 = 60;
/// Largest SAMLResponse accepted (base64).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Our entity id (also where the SP metadata is served) and ACS URL at this tenant.
pub struct SpUrls {
    pub entity_id: String,
    pub acs_url: String,
}

pub fn sp_urls(state: &DataPlane, context: &RequestContext, provider: &str) -> SpUrls {
    let base = access::issuer(
        &state.config.public_scheme,
        context.tenant.tenant.slug.as_str(),
        &state.config.base_domain,
    );
    SpUrls {
        entity_id: format!("{base}/v1/auth/saml/{provider}/metadata"),
        acs_url: format!("{base}/v1/auth/saml/{provider}/acs"),
    }
}

fn saml_settings(provider: &ProviderRow) -> Result<&SamlSettings, SsoError> {
    match &provider.settings.provider {
        ProviderKind::Saml(saml) => Ok(saml),
        _ => Err(SsoError::ProviderNotFound),
    }
}

/// A provider's own key and its certificate (made when a provider with `sign_authn_requests`
/// or `require_encrypted_assertions` was saved, sealed with the tenant's data key): it signs
/// our AuthnRequests when the provider signs them, and opens the assertions the IdP encrypts
/// to it.
pub struct SpKey {
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    certificate: Vec<u8>,
}

/// The provider's [`SpKey`], if it has one.
pub async fn sp_key(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
) -> Result<Option<SpKey>, SsoError> {
    saml_settings(provider)?;
    if provider.settings.provider.own_key().is_none() {
        return Ok(None);
    }
    let pem = super::admin::open_credential(state, context, provider)
        .await?
        .ok_or_else(|| SsoError::InvalidConfig("the provider has no signing key".to_owned()))?;
    let failed = |error: openssl::error::ErrorStack| {
        SsoError::InvalidConfig(format!("the provider's signing key: {error}"))
    };
    Ok(Some(SpKey {
        key: openssl::pkey::PKey::private_key_from_pem(pem.as_bytes()).map_err(failed)?,
        certificate: openssl::x509::X509::from_pem(pem.as_bytes())
            .and_then(|certificate| certificate.to_der())
            .map_err(failed)?,
    }))
}

fn service_provider(
    urls: &SpUrls,
    idp: &IdentityProvider,
    saml: &SamlSettings,
    sp_key: Option<&SpKey>,
) -> Result<ServiceProvider, SsoError> {
    ServiceProviderBuilder::default()
        .certificate(sp_key.map(|sp_key| sp_key.certificate.clone().into()))
        .entity_id(urls.entity_id.clone())
        .acs_url(urls.acs_url.clone())
        .metadata_url(urls.entity_id.clone())
        .idp_metadata(idp.metadata.clone())
        .allow_idp_initiated(saml.allow_idp_initiated)
        .authn_name_id_format(Some(saml.name_id_format.uri().to_owned()))
        .max_clock_skew(chrono::Duration::seconds(CLOCK_SKEW_SECONDS))
        .allowed_signature_algorithms(
            ALLOWED_SIGNATURES
                .iter()
                .map(|(algorithm, _)| *algorithm)
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(|error| SsoError::InvalidConfig(format!("service provider: {error}")))
}

/// The SP metadata XML of this tenant and provider.
pub async fn metadata(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
) -> Result<String, SsoError> {
    let saml = saml_settings(provider)?;
    let idp = IdentityProvider::from_settings(saml)?;
    let urls = sp_urls(state, context, &provider.name);
    let sp_key = sp_key(state, context, provider).await?;
    let sp = service_provider(&urls, &idp, saml, sp_key.as_ref())?;
    let mut descriptor = sp
        .metadata()
        .map_err(|error| SsoError::InvalidConfig(format!("SP metadata: {error}")))?;
    for sp_descriptor in descriptor.sp_sso_descriptors.iter_mut().flatten() {
        // samael always describes a single logout service (at its default localhost URL when
        // none is set); we serve none, so the metadata names none (docs/sso.md, "Known
        // limits").
        sp_descriptor.single_logout_services = None;
        // With a key, samael names its certificate twice, both times for signing (the second
        // with encryption methods). Ours: for signing when the requests are signed, and for
        // encryption with the algorithms we decrypt, most preferred first.
        if let Some(descriptors) = &mut sp_descriptor.key_descriptors {
            descriptors.retain(|descriptor| descriptor.encryption_methods.is_none());
            if let Some(signing) = descriptors.pop() {
                let encryption = KeyDescriptor {
                    key_use: Some("encryption".to_owned()),
                    encryption_methods: Some(
                        saml_encryption::OFFERED
                            .iter()
                            .map(|algorithm| EncryptionMethod {
                                algorithm: (*algorithm).to_owned(),
                            })
                            .collect(),
                    ),
                    key_info: signing.key_info.clone(),
                };
                if saml.sign_authn_requests {
                    descriptors.push(signing);
                }
                descriptors.push(encryption);
            }
        }
        sp_descriptor.authn_requests_signed = Some(saml.sign_authn_requests);
    }
    descriptor
        .to_string()
        .map_err(|error| SsoError::InvalidConfig(format!("SP metadata: {error:?}")))
}

/// Starts an SP-initiated sign-in: the way to the IdP carrying the AuthnRequest and a
/// `RelayState` that names the login transaction (a redirect, or a form to post when the IdP
/// takes requests only by HTTP-POST; signed either way when the provider signs requests).
pub async fn start(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    destination: &super::Destination,
) -> Result<Departure, SsoError> {
    let saml = saml_settings(provider)?;
    let idp = IdentityProvider::from_settings(saml)?;
    let urls = sp_urls(state, context, &provider.name);
    let sp_key = sp_key(state, context, provider).await?;
    let signing_key = sp_key.as_ref().filter(|_| saml.sign_authn_requests);
    let sp = service_provider(&urls, &idp, saml, sp_key.as_ref())?;
    let mut request = sp
        .make_authentication_request(&idp.sso_url)
        .map_err(|error| SsoError::InvalidConfig(format!("AuthnRequest: {error}")))?;
    // samael's ids carry 32 random bits; ours 256 (an NCName: letters first).
    request.id = format!(
        "id-{}",
        transactions::random_value(&state.rng)?.replace('-', "_")
    );
    request.issue_instant = chrono::DateTime::from_timestamp(state.clock.now().unix_timestamp(), 0)
        .unwrap_or(request.issue_instant);
    let relay_state = transactions::random_value(&state.rng)?;
    let departure = match idp.sso_binding {
        SsoBinding::Redirect => Departure::Redirect(
            match signing_key {
                Some(sp_key) => request.signed_redirect(&relay_state, &sp_key.key),
                None => request.redirect(&relay_state),
            }
            .map_err(|error| SsoError::InvalidConfig(format!("AuthnRequest: {error}")))?
            .ok_or_else(|| SsoError::InvalidConfig("AuthnRequest has no destination".to_owned()))?,
        ),
        SsoBinding::Post => Departure::Post {
            action: Url::parse(&idp.sso_url)
                .map_err(|_| SsoError::InvalidConfig("the IdP SSO URL is not a URL".to_owned()))?,
            fields: vec![
                ("SAMLRequest", posted_request(request.clone(), signing_key)?),
                ("RelayState", relay_state.clone()),
            ],
        },
    };

    let now = state.clock.now();
    let digest = transactions::digest(&relay_state);
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    store::insert_transaction(
        &mut transaction,
        &NewTransaction {
            state_digest: &digest,
            provider_id: provider.id,
            nonce: Some(&request.id),
            pkce_verifier: None,
            now,
            expires_at: now + TRANSACTION_LIFETIME,
            destination,
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(departure)
}

/// The HTTP-POST binding's `SAMLRequest`: the request's XML in base64, with an enveloped
/// signature when the provider signs its requests.
fn posted_request(mut request: AuthnRequest, sp_key: Option<&SpKey>) -> Result<String, SsoError> {
    let failed = |error: Box<dyn std::error::Error>| {
        SsoError::InvalidConfig(format!("AuthnRequest: {error}"))
    };
    let xml = match sp_key {
        Some(sp_key) => {
            let certificate = samael::crypto::CertificateDer::from(sp_key.certificate.clone());
            request.signature = Some(samael::signature::Signature::template(
                &request.id,
                &certificate,
            ));
            let key = sp_key
                .key
                .private_key_to_der()
                .map_err(|error| SsoError::InvalidConfig(format!("SP key: {error}")))?;
            request.to_signed_xml(&key).map_err(failed)?
        }
        None => request.to_string().map_err(failed)?,
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(xml))
}

/// What the IdP's browser form posts to the ACS.
#[derive(serde::Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    pub saml_response: String,
    #[serde(rename = "RelayState")]
    pub relay_state: Option<String>,
}

fn attribute_values(assertion: &Assertion, name: &str) -> Vec<String> {
    assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|statement| statement.attributes.iter())
        .filter(|attribute| {
            attribute.name.as_deref() == Some(name)
                || attribute.friendly_name.as_deref() == Some(name)
        })
        .flat_map(|attribute| attribute.values.iter())
        .filter_map(|value| value.value.clone())
        .collect()
}

/// What a response says about itself, read before any verification: how many assertions it
/// holds, each signature's algorithm, and the certificates its signatures carry (to say why
/// a signature failed: the log tells a missing signature, a refused algorithm and a foreign
/// key apart).
#[derive(Debug, Default)]
struct Scanned {
    /// Whether the one assertion is an `EncryptedAssertion`.
    encrypted: bool,
    algorithms: Vec<String>,
    certificates: Vec<Vec<u8>>,
}

/// The signature algorithms samael is told to accept (`service_provider`), with their URIs
/// (to name a refused one in the log).
const ALLOWED_SIGNATURES: [(AllowedSignatureAlgorithm, &str); 6] = [
    (
        AllowedSignatureAlgorithm::RsaSha256,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    ),
    (
        AllowedSignatureAlgorithm::RsaSha384,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    ),
    (
        AllowedSignatureAlgorithm::RsaSha512,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    ),
    (
        AllowedSignatureAlgorithm::EcdsaSha256,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    ),
    (
        AllowedSignatureAlgorithm::EcdsaSha384,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    ),
    (
        AllowedSignatureAlgorithm::EcdsaSha512,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    ),
];

/// Reads the response, and refuses it unless it holds exactly one assertion, plain or
/// encrypted, at any depth (in `Extensions`, nested, before or after the signed one): the
/// assertion the signature covers must be the only one there is, so no reader can be handed
/// another (XML signature wrapping), as ruby-saml, python3-saml and Spring Security refuse
/// too. Not well-formed XML is refused here as well.
fn scan(xml: &str) -> Result<Scanned, SsoError> {
    use quick_xml::events::Event;
    let base64 = base64::engine::general_purpose::STANDARD;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut assertions = 0usize;
    let mut scanned = Scanned::default();
    let mut certificate: Option<String> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(element) | Event::Empty(element)) => {
                match element.local_name().as_ref() {
                    b"Assertion" => assertions += 1,
                    b"EncryptedAssertion" => {
                        assertions += 1;
                        scanned.encrypted = true;
                    }
                    b"SignatureMethod" => {
                        if let Ok(Some(algorithm)) = element.try_get_attribute("Algorithm") {
                            scanned
                                .algorithms
                                .push(String::from_utf8_lossy(&algorithm.value).into_owned());
                        }
                    }
                    b"X509Certificate" => certificate = Some(String::new()),
                    _ => {}
                }
            }
            Ok(Event::Text(text)) => {
                if let Some(certificate) = &mut certificate {
                    certificate.push_str(&String::from_utf8_lossy(&text));
                }
            }
            Ok(Event::End(element)) if element.local_name().as_ref() == b"X509Certificate" => {
                let text: String = certificate
                    .take()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                if let Ok(der) = base64.decode(text) {
                    scanned.certificates.push(der);
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(error) => {
                return Err(SsoError::Rejected(format!(
                    "SAMLResponse is not well-formed XML: {error}"
                )))
            }
        }
    }
    match assertions {
        1 => Ok(scanned),
        count => Err(SsoError::Rejected(format!(
            "the response holds {count} assertions; exactly one is allowed"
        ))),
    }
}

/// Why verification failed, as precisely as the response tells: samael says "must be
/// signed" for every signature failure (FIELD-NOTES), so a missing signature, a refused
/// algorithm and a key other than the provider's are told apart here, for the log.
fn refusal_reason(scanned: &Scanned, configured: &[Vec<u8>], samael: &str) -> String {
    if !samael.contains("must be signed") {
        return samael.to_owned();
    }
    if scanned.algorithms.is_empty() {
        return "missing signature: neither the Response nor its Assertion is signed".to_owned();
    }
    if let Some(algorithm) = scanned
        .algorithms
        .iter()
        .find(|algorithm| !ALLOWED_SIGNATURES.iter().any(|(_, uri)| uri == algorithm))
    {
        return format!(
            "disallowed signature algorithm {algorithm}: RSA or ECDSA with SHA-256 or stronger is accepted"
        );
    }
    if !scanned.certificates.is_empty()
        && !scanned
            .certificates
            .iter()
            .any(|certificate| configured.contains(certificate))
    {
        return "wrong key: signed with a certificate other than the provider's".to_owned();
    }
    "the signature does not verify with the provider's certificate (the signed content was changed, or another key signed it)".to_owned()
}

/// The response's XML.
fn decode(response: &str) -> Result<String, SsoError> {
    let compact: String = response
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let xml = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| SsoError::Rejected("SAMLResponse is not base64".to_owned()))?;
    String::from_utf8(xml).map_err(|_| SsoError::Rejected("SAMLResponse is not UTF-8".to_owned()))
}

/// Verifies the response (signature and every condition; with `decryption_key`, its
/// encrypted assertion opened) on the blocking pool: xmlsec is CPU work, and samael's errors
/// are not `Send`, so they become text here.
async fn verify(
    sp: ServiceProvider,
    xml: String,
    request_id: Option<String>,
    decryption_key: Option<SpKey>,
) -> Result<Assertion, saml_encryption::Refused> {
    let sp = Arc::new(sp);
    tokio::task::spawn_blocking(move || {
        let ids: Vec<&str> = request_id.iter().map(String::as_str).collect();
        let possible = (!ids.is_empty()).then_some(ids.as_slice());
        match decryption_key {
            Some(key) => saml_encryption::open_and_verify(&sp, &xml, possible, &key.key),
            None => {
                sp.parse_xml_response(&xml, possible)
                    .map_err(|error| saml_encryption::Refused {
                        reason: error.to_string(),
                        document: xml,
                    })
            }
        }
    })
    .await
    .unwrap_or_else(|error| {
        Err(saml_encryption::Refused {
            reason: format!("verification task: {error}"),
            document: String::new(),
        })
    })
}

/// The assertion consumer service: checks the response and signs the user in.
pub async fn acs(
    state: &DataPlane,
    context: &RequestContext,
    provider: &ProviderRow,
    form: AcsForm,
    client: Client<'_>,
    browser: Option<&[u8]>,
) -> Result<super::Outcome, SsoError> {
    let saml = saml_settings(provider)?;
    if form.saml_response.is_empty() || form.saml_response.len() > MAX_RESPONSE_BYTES {
        return Err(SsoError::InvalidInput(
            "SAMLResponse is missing or too large".to_owned(),
        ));
    }
    let now = state.clock.now();
    // IdP-initiated (no transaction): the tokens are the answer.
    let mut destination = super::Destination::Tokens;
    // SP-initiated: RelayState names our transaction and with it the request id the response
    // must answer. Without one, only a provider allowing IdP-initiated sign-in goes on.
    let request_id = match form
        .relay_state
        .as_deref()
        .filter(|relay| !relay.is_empty())
    {
        Some(relay_state) if relay_state.len() <= 512 => {
            let mut transaction = state.tenant_db.begin(&context.scope).await?;
            let taken = store::take_transaction(
                &mut transaction,
                &transactions::digest(relay_state),
                provider.id,
                now,
            )
            .await?;
            transaction.commit().await?;
            if let Some(super::Destination::Console(expected)) =
                taken.as_ref().map(|taken| &taken.destination)
            {
                if !super::same_browser(expected, browser) {
                    sign_in::record_refusal(state, context, provider, "other_browser", client)
                        .await?;
                    return Err(SsoError::OtherBrowser);
                }
            }
            let taken = taken.map(|taken| {
                destination = taken.destination;
                taken.nonce
            });
            match taken.flatten() {
                Some(request_id) => Some(request_id),
                None if saml.allow_idp_initiated => None,
                None => {
                    sign_in::record_refusal(state, context, provider, "invalid_state", client)
                        .await?;
                    return Err(SsoError::InvalidState);
                }
            }
        }
        _ if saml.allow_idp_initiated => None,
        _ => {
            sign_in::record_refusal(state, context, provider, "invalid_state", client).await?;
            return Err(SsoError::InvalidState);
        }
    };
    if !provider.enabled && !destination.is_test() {
        return Err(SsoError::ProviderNotFound);
    }

    let read = decode(&form.saml_response).and_then(|xml| Ok((scan(&xml)?, xml)));
    let (scanned, xml) = match read {
        Ok(read) => read,
        Err(error) => {
            sign_in::record_refusal(state, context, provider, "rejected", client).await?;
            return Err(error);
        }
    };
    let decryption_key = match scanned.encrypted {
        true => sp_key(state, context, provider).await?,
        false => None,
    };
    let unopenable = match (scanned.encrypted, &decryption_key) {
        (false, _) if saml.require_encrypted_assertions => Some(
            "the provider requires encrypted assertions and this one came in plain text",
        ),
        (true, None) => Some(
            "the assertion is encrypted and the provider has no key to open it (require_encrypted_assertions makes one and offers it in our metadata)",
        ),
        _ => None,
    };
    if let Some(reason) = unopenable {
        sign_in::record_refusal(state, context, provider, "rejected", client).await?;
        return Err(SsoError::Rejected(reason.to_owned()));
    }
    let idp = IdentityProvider::from_settings(saml)?;
    let urls = sp_urls(state, context, &provider.name);
    let sp = service_provider(&urls, &idp, saml, None)?;
    let configured: Vec<Vec<u8>> = sp
        .idp_signing_certs()
        .ok()
        .flatten()
        .unwrap_or_default()
        .iter()
        .map(|certificate| certificate.der_data().to_vec())
        .collect();
    let assertion = match verify(sp, xml, request_id, decryption_key).await {
        Ok(assertion) => assertion,
        Err(refused) => {
            sign_in::record_refusal(state, context, provider, "rejected", client).await?;
            // The document refused: with an encrypted assertion, the one opened.
            let scanned = scan(&refused.document).unwrap_or(scanned);
            return Err(SsoError::Rejected(refusal_reason(
                &scanned,
                &configured,
                &refused.reason,
            )));
        }
    };
    let checked = check_assertion(&assertion, &urls);
    if let Err(error) = checked {
        sign_in::record_refusal(state, context, provider, "rejected", client).await?;
        return Err(error);
    }

    // Replay guard: an assertion id is good once, remembered until it could no longer pass
    // the time checks anyway.
    let valid_until = assertion
        .conditions
        .as_ref()
        .and_then(|conditions| conditions.not_on_or_after)
        .and_then(|instant| time::OffsetDateTime::from_unix_timestamp(instant.timestamp()).ok())
        .unwrap_or(now + time::Duration::hours(1));
    let keep_until = valid_until.max(now) + time::Duration::seconds(CLOCK_SKEW_SECONDS * 2);
    let mut transaction = state.tenant_db.begin(&context.scope).await?;
    let fresh = store::consume_assertion(
        &mut transaction,
        provider.id,
        &assertion.id,
        keep_until,
        now,
    )
    .await?;
    transaction.commit().await?;
    if !fresh {
        sign_in::record_refusal(state, context, provider, "replayed_assertion", client).await?;
        return Err(SsoError::Rejected(format!(
            "assertion {} was used before",
            assertion.id
        )));
    }

    let subject = subject_of(&assertion, saml)?;
    let email = attribute_values(&assertion, &saml.attributes.email)
        .into_iter()
        .next()
        .or_else(|| subject.contains('@').then(|| subject.clone()));
    let identity = ExternalIdentity {
        subject,
        email,
        // The IdP signed the address for this tenant's SP: as verified as an IdP can say.
        email_verified: true,
        name: attribute_values(&assertion, &saml.attributes.name)
            .into_iter()
            .next(),
        groups: attribute_values(&assertion, &saml.attributes.groups),
        received: received_attributes(&assertion),
    };
    sign_in::conclude(state, context, provider, identity, client, destination).await
}

/// Who the assertion is about, for good: its NameID, unless that is transient (asked for, or
/// sent with the transient format), which changes at every sign-in; then the value of the
/// provider's `subject_attribute` (default: its email attribute).
fn subject_of(assertion: &Assertion, saml: &SamlSettings) -> Result<String, SsoError> {
    let name_id = assertion
        .subject
        .as_ref()
        .and_then(|subject| subject.name_id.as_ref())
        .ok_or_else(|| SsoError::Rejected("the assertion has no NameID".to_owned()))?;
    let transient = saml.name_id_format == NameIdFormat::Transient
        || name_id.format.as_deref() == Some(NameIdFormat::TRANSIENT_URI);
    let subject = match transient {
        false => Some(name_id.value.trim().to_owned()),
        true => {
            let attribute = saml
                .subject_attribute
                .as_deref()
                .unwrap_or(&saml.attributes.email);
            let value = attribute_values(assertion, attribute)
                .into_iter()
                .next()
                .map(|value| value.trim().to_owned());
            if value.is_none() {
                return Err(SsoError::Rejected(format!(
                    "the NameID is transient and the assertion has no {attribute:?} attribute to identify the user by"
                )));
            }
            value
        }
    };
    subject
        .filter(|value| !value.is_empty())
        .ok_or_else(|| SsoError::Rejected("the assertion names no subject".to_owned()))
}

/// The assertion's NameID (and its format) and every attribute, by name, as JSON: what an
/// admin testing the provider is shown.
fn received_attributes(assertion: &Assertion) -> serde_json::Value {
    let name_id = assertion
        .subject
        .as_ref()
        .and_then(|subject| subject.name_id.as_ref());
    let mut attributes = serde_json::Map::new();
    for attribute in assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|statement| statement.attributes.iter())
    {
        let name = attribute
            .name
            .clone()
            .or_else(|| attribute.friendly_name.clone())
            .unwrap_or_default();
        let values: Vec<serde_json::Value> = attribute
            .values
            .iter()
            .filter_map(|value| value.value.clone().map(serde_json::Value::String))
            .collect();
        attributes.insert(name, serde_json::Value::Array(values));
    }
    serde_json::json!({
        "name_id": name_id.map(|name_id| name_id.value.clone()),
        "name_id_format": name_id.and_then(|name_id| name_id.format.clone()),
        "attributes": attributes,
    })
}

/// What samael leaves to us: an audience restriction must exist and name us (samael accepts
/// an assertion without one).
fn check_assertion(assertion: &Assertion, urls: &SpUrls) -> Result<(), SsoError> {
    let audiences: Vec<&String> = assertion
        .conditions
        .iter()
        .flat_map(|conditions| conditions.audience_restrictions.iter().flatten())
        .flat_map(|restriction| restriction.audience.iter())
        .collect();
    if !audiences
        .iter()
        .any(|audience| **audience == urls.entity_id)
    {
        return Err(SsoError::Rejected(
            "the assertion is not restricted to our audience".to_owned(),
        ));
    }
    Ok(())
}
