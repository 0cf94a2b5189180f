//! Encrypted SAML assertions (XML Encryption 1.0 and 1.1, as IdPs send them): the response's
//! `EncryptedAssertion` is opened with the provider's SP key and the plain `Assertion` takes
//! its place, where it was sent, so the namespace declarations in scope there stay in scope
//! and the checks that follow read one document.
//!
//! Accepted: key transport RSA-OAEP (`xmlenc#rsa-oaep-mgf1p`, and `xmlenc11#rsa-oaep` with
//! SHA-1 or SHA-2 digests and MGF1), the key inside the encrypted data's `KeyInfo` or beside
//! it; data AES-128/192/256 in GCM or CBC. Refused, by name in the log: RSA PKCS#1 v1.5 key
//! transport (a padding oracle, as Shibboleth and xmlsec refuse it), Triple DES, and every
//! other algorithm. samael's own decryption reads only AES-128 and only `ds:`-prefixed key
//! info (FIELD-NOTES), which is why this is ours.
//!
//! Whose signature vouches for the assertion is decided in [`open_and_verify`]: a signed
//! Response is verified as it came, before anything is decrypted; otherwise the decrypted
//! assertion must carry its own signature.

use base64::Engine as _;
use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
use quick_xml::events::{BytesStart, Event};
use samael::crypto::{Crypto, CryptoProvider as _, ReduceMode};
use samael::schema::Assertion;
use samael::service_provider::ServiceProvider;
use zeroize::Zeroizing;

const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
const TRIPLE_DES: &str = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
const ELEMENT_TYPE: &str = "http://www.w3.org/2001/04/xmlenc#Element";
const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";

/// The algorithms our SP metadata offers an IdP, most preferred first (AES-GCM before CBC:
/// only GCM authenticates the ciphertext).
pub const OFFERED: [&str; 6] = [
    AES256_GCM,
    AES128_GCM,
    AES256_CBC,
    AES128_CBC,
    RSA_OAEP,
    RSA_OAEP_MGF1P,
];

/// The data-encryption algorithms we decrypt: URI, cipher, GCM or CBC.
fn data_cipher(algorithm: &str) -> Result<(Cipher, bool), String> {
    Ok(match algorithm {
        AES128_GCM => (Cipher::aes_128_gcm(), true),
        "http://www.w3.org/2009/xmlenc11#aes192-gcm" => (Cipher::aes_192_gcm(), true),
        AES256_GCM => (Cipher::aes_256_gcm(), true),
        AES128_CBC => (Cipher::aes_128_cbc(), false),
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc" => (Cipher::aes_192_cbc(), false),
        AES256_CBC => (Cipher::aes_256_cbc(), false),
        TRIPLE_DES => {
            return Err(
                "data encryption Triple DES (xmlenc#tripledes-cbc) is refused: set the IdP to AES (GCM preferred)"
                    .to_owned(),
            )
        }
        other => {
            return Err(format!(
                "data encryption {other} is not supported: AES-128/192/256 in GCM or CBC is"
            ))
        }
    })
}

/// A digest named by a `DigestMethod` (RSA-OAEP's) or an `MGF` (xmlenc11), SHA-1 when absent.
fn digest(algorithm: Option<&str>) -> Result<&'static MdRef, String> {
    Ok(match algorithm {
        None
        | Some("http://www.w3.org/2000/09/xmldsig#sha1")
        | Some("http://www.w3.org/2009/xmlenc11#mgf1sha1") => Md::sha1(),
        Some("http://www.w3.org/2001/04/xmldsig-more#sha224")
        | Some("http://www.w3.org/2009/xmlenc11#mgf1sha224") => Md::sha224(),
        Some("http://www.w3.org/2001/04/xmlenc#sha256")
        | Some("http://www.w3.org/2009/xmlenc11#mgf1sha256") => Md::sha256(),
        Some("http://www.w3.org/2001/04/xmldsig-more#sha384")
        | Some("http://www.w3.org/2009/xmlenc11#mgf1sha384") => Md::sha384(),
        Some("http://www.w3.org/2001/04/xmlenc#sha512")
        | Some("http://www.w3.org/2009/xmlenc11#mgf1sha512") => Md::sha512(),
        Some(other) => return Err(format!("RSA-OAEP digest {other} is not supported")),
    })
}

/// One `EncryptedKey`: the data key, encrypted to a recipient's RSA key.
#[derive(Default)]
struct WrappedKey {
    algorithm: Option<String>,
    digest: Option<String>,
    mgf: Option<String>,
    cipher_value: String,
}

/// The one `EncryptedAssertion` of a document: where it is and what it holds.
#[derive(Default)]
struct Found {
    start: usize,
    end: usize,
    data_algorithm: Option<String>,
    cipher_value: String,
    keys: Vec<WrappedKey>,
}

fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    element
        .try_get_attribute(name)
        .ok()
        .flatten()
        .map(|value| String::from_utf8_lossy(&value.value).into_owned())
}

/// Finds the document's `EncryptedAssertion` (the caller has made sure there is exactly one
/// assertion in the document), reading its algorithms, keys and cipher text.
fn find(xml: &str) -> Result<Option<Found>, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut found: Option<Found> = None;
    // Local names from the EncryptedAssertion down to the element being read.
    let mut path: Vec<String> = Vec::new();
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader
            .read_event()
            .map_err(|error| format!("the response is not well-formed XML: {error}"))?;
        let (element, empty) = match event {
            Event::Start(element) => (element, false),
            Event::Empty(element) => (element, true),
            Event::Text(text) if path.last().map(String::as_str) == Some("CipherValue") => {
                let text = String::from_utf8_lossy(&text).into_owned();
                if let Some(found) = found.as_mut() {
                    if path.iter().any(|name| name == "EncryptedKey") {
                        if let Some(key) = found.keys.last_mut() {
                            key.cipher_value.push_str(&text);
                        }
                    } else if path.iter().any(|name| name == "EncryptedData") {
                        found.cipher_value.push_str(&text);
                    }
                }
                continue;
            }
            Event::End(_) if !path.is_empty() => {
                path.pop();
                if path.is_empty() {
                    if let Some(found) = found.as_mut() {
                        found.end = usize::try_from(reader.buffer_position()).unwrap_or(0);
                    }
                    return Ok(found);
                }
                continue;
            }
            Event::Eof => return Ok(None),
            _ => continue,
        };
        let name = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
        if path.is_empty() {
            if name == "EncryptedAssertion" {
                if empty {
                    return Err("the EncryptedAssertion is empty".to_owned());
                }
                found = Some(Found {
                    start: before,
                    ..Found::default()
                });
                path.push(name);
            }
            continue;
        }
        let Some(found) = found.as_mut() else {
            continue;
        };
        let parent = path.last().map(String::as_str);
        let grandparent = path.len().checked_sub(2).map(|index| path[index].as_str());
        match (name.as_str(), parent, grandparent) {
            ("EncryptedKey", ..) => found.keys.push(WrappedKey::default()),
            ("EncryptedData", ..) => {
                if let Some(kind) = attribute(&element, "Type") {
                    if kind != ELEMENT_TYPE {
                        return Err(format!(
                            "the EncryptedData's Type is {kind}, not an element"
                        ));
                    }
                }
            }
            ("EncryptionMethod", Some("EncryptedData"), _) => {
                found.data_algorithm = attribute(&element, "Algorithm");
            }
            ("EncryptionMethod", Some("EncryptedKey"), _) => {
                if let Some(key) = found.keys.last_mut() {
                    key.algorithm = attribute(&element, "Algorithm");
                }
            }
            ("DigestMethod", Some("EncryptionMethod"), Some("EncryptedKey")) => {
                if let Some(key) = found.keys.last_mut() {
                    key.digest = attribute(&element, "Algorithm");
                }
            }
            ("MGF", Some("EncryptionMethod"), Some("EncryptedKey")) => {
                if let Some(key) = found.keys.last_mut() {
                    key.mgf = attribute(&element, "Algorithm");
                }
            }
            ("CipherReference", ..) => {
                return Err(
                    "a CipherReference is not supported: the cipher text must be in the response"
                        .to_owned(),
                );
            }
            _ => {}
        }
        if !empty {
            path.push(name);
        }
    }
}

fn base64(text: &str, what: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| format!("the {what} is not base64"))
}

/// The data key in `wrapped`, if it was encrypted to `key`.
fn unwrap_key(wrapped: &WrappedKey, key: &PKey<Private>) -> Result<Zeroizing<Vec<u8>>, String> {
    let algorithm = wrapped
        .algorithm
        .as_deref()
        .ok_or("the EncryptedKey names no EncryptionMethod")?;
    let mgf = match algorithm {
        RSA_OAEP_MGF1P => Md::sha1(),
        RSA_OAEP => digest(wrapped.mgf.as_deref())?,
        RSA_1_5 => {
            return Err(
                "key transport RSA PKCS#1 v1.5 (xmlenc#rsa-1_5) is refused: it is open to padding-oracle attacks; set the IdP to RSA-OAEP"
                    .to_owned(),
            )
        }
        other => {
            return Err(format!(
                "key transport {other} is not supported: RSA-OAEP is"
            ))
        }
    };
    let cipher_text = base64(&wrapped.cipher_value, "EncryptedKey's CipherValue")?;
    let failed = |_| "the data key was not encrypted to this provider's key".to_owned();
    let mut context = PkeyCtx::new(key).map_err(failed)?;
    context.decrypt_init().map_err(failed)?;
    context
        .set_rsa_padding(Padding::PKCS1_OAEP)
        .map_err(failed)?;
    context
        .set_rsa_oaep_md(digest(wrapped.digest.as_deref())?)
        .map_err(failed)?;
    context.set_rsa_mgf1_md(mgf).map_err(failed)?;
    let mut data_key = Zeroizing::new(Vec::new());
    context
        .decrypt_to_vec(&cipher_text, &mut data_key)
        .map_err(failed)?;
    Ok(data_key)
}

/// The plain text of `cipher_text` (IV first; for GCM the 16-byte tag last).
fn decrypt_data(algorithm: &str, data_key: &[u8], cipher_text: &[u8]) -> Result<Vec<u8>, String> {
    let (cipher, gcm) = data_cipher(algorithm)?;
    if data_key.len() != cipher.key_len() {
        return Err(format!(
            "the data key is {} bytes; {algorithm} takes {}",
            data_key.len(),
            cipher.key_len()
        ));
    }
    let failed = "the encrypted assertion does not decrypt".to_owned();
    if gcm {
        const IV: usize = 12;
        const TAG: usize = 16;
        if cipher_text.len() < IV + TAG {
            return Err(failed);
        }
        let (iv, rest) = cipher_text.split_at(IV);
        let (data, tag) = rest.split_at(rest.len() - TAG);
        return openssl::symm::decrypt_aead(cipher, data_key, Some(iv), &[], data, tag)
            .map_err(|_| failed);
    }
    // CBC with XML Encryption's padding: the last byte counts the padding bytes, the others
    // are arbitrary (not PKCS#7), so openssl's own padding check stays off.
    const BLOCK: usize = 16;
    if cipher_text.len() < 2 * BLOCK || !cipher_text.len().is_multiple_of(BLOCK) {
        return Err(failed);
    }
    let (iv, data) = cipher_text.split_at(BLOCK);
    let mut crypter =
        Crypter::new(cipher, Mode::Decrypt, data_key, Some(iv)).map_err(|_| failed.clone())?;
    crypter.pad(false);
    let mut plain = vec![0; data.len() + BLOCK];
    let mut length = crypter
        .update(data, &mut plain)
        .map_err(|_| failed.clone())?;
    length += crypter
        .finalize(&mut plain[length..])
        .map_err(|_| failed.clone())?;
    plain.truncate(length);
    let padding = usize::from(*plain.last().ok_or(failed.clone())?);
    if padding == 0 || padding > BLOCK || padding > plain.len() {
        return Err(failed);
    }
    plain.truncate(plain.len() - padding);
    Ok(plain)
}

/// Checks that a decrypted fragment is one `Assertion` element and nothing besides, with no
/// other assertion, plain or encrypted, inside it.
fn one_assertion(fragment: &str) -> Result<(), String> {
    let refused = || "the encrypted content is not one Assertion element".to_owned();
    let mut reader = quick_xml::Reader::from_str(fragment);
    let mut depth = 0usize;
    let mut elements = 0usize;
    let mut assertions = 0usize;
    loop {
        match reader.read_event().map_err(|_| refused())? {
            Event::Start(element) => {
                if depth == 0 {
                    elements += 1;
                    if element.local_name().as_ref() != b"Assertion" {
                        return Err(refused());
                    }
                }
                if matches!(
                    element.local_name().as_ref(),
                    b"Assertion" | b"EncryptedAssertion"
                ) {
                    assertions += 1;
                }
                depth += 1;
            }
            Event::Empty(element)
                if depth == 0
                    || matches!(
                        element.local_name().as_ref(),
                        b"Assertion" | b"EncryptedAssertion"
                    ) =>
            {
                return Err(refused());
            }
            Event::End(_) => depth = depth.checked_sub(1).ok_or_else(refused)?,
            Event::Text(text) if depth == 0 && !text.iter().all(u8::is_ascii_whitespace) => {
                return Err(refused());
            }
            Event::Decl(_) | Event::Comment(_) if depth == 0 => {}
            Event::Eof => break,
            Event::CData(_) | Event::PI(_) | Event::DocType(_) | Event::GeneralRef(_)
                if depth == 0 =>
            {
                return Err(refused())
            }
            _ => {}
        }
    }
    match (depth, elements, assertions) {
        (0, 1, 1) => Ok(()),
        _ => Err(refused()),
    }
}

/// `xml` with its `EncryptedAssertion` replaced by the assertion it holds, decrypted with
/// `key`. Every failure of the decryption itself reads the same to the IdP's side (the
/// answer is one `sso_rejected` for all); the log says what failed.
pub fn open(xml: &str, key: &PKey<Private>) -> Result<String, String> {
    let found = find(xml)?.ok_or("the response holds no EncryptedAssertion")?;
    let algorithm = found
        .data_algorithm
        .as_deref()
        .ok_or("the EncryptedData names no EncryptionMethod")?;
    data_cipher(algorithm)?;
    if found.keys.is_empty() {
        return Err("the EncryptedAssertion carries no EncryptedKey".to_owned());
    }
    let mut refusal = String::new();
    let mut data_key = None;
    for wrapped in &found.keys {
        match unwrap_key(wrapped, key) {
            Ok(unwrapped) => {
                data_key = Some(unwrapped);
                break;
            }
            Err(error) => refusal = error,
        }
    }
    let data_key = data_key.ok_or(refusal)?;
    let cipher_text = base64(&found.cipher_value, "EncryptedData's CipherValue")?;
    let plain = decrypt_data(algorithm, &data_key, &cipher_text)?;
    let plain = String::from_utf8(plain)
        .map_err(|_| "the encrypted assertion does not decrypt".to_owned())?;
    // A stray XML declaration would not be well-formed inside the response.
    let fragment = match plain.trim_start().strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map(|(_, fragment)| fragment)
            .ok_or("the encrypted content is not one Assertion element")?,
        None => plain.as_str(),
    };
    one_assertion(fragment)?;
    Ok(format!(
        "{}{}{}",
        &xml[..found.start],
        fragment,
        &xml[found.end..]
    ))
}

/// Whether `xml`'s root element is a (protocol) `Response`.
fn root_is_response(xml: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(element) | Event::Empty(element)) => {
                return element.local_name().as_ref() == b"Response"
            }
            Ok(Event::Eof) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// What verification refused: samael's (or our) reason and the document it was reading (the
/// response as sent, or with its assertion decrypted), to say why in the log.
pub struct Refused {
    pub reason: String,
    pub document: String,
}

/// Verifies a response holding an encrypted assertion and returns the assertion, checked by
/// samael like a plain one:
/// - a Response signed by the IdP is verified as it came (signature over the cipher text),
///   the assertion is then decrypted from what the signature covers and the rest checked with
///   that signature counted (an assertion inside need not be signed again);
/// - otherwise the decrypted assertion must be signed itself (Entra ID's and ADFS's default:
///   sign the assertion, then encrypt it), verified in place.
pub fn open_and_verify(
    sp: &ServiceProvider,
    xml: &str,
    request_ids: Option<&[&str]>,
    key: &PKey<Private>,
) -> Result<Assertion, Refused> {
    let refused = |reason: String, document: &str| Refused {
        reason,
        document: document.to_owned(),
    };
    let certificates = sp
        .idp_signing_certs()
        .map_err(|error| refused(error.to_string(), xml))?
        .unwrap_or_default();
    // Without a certificate samael checks no signature at all (providers are refused without
    // one when saved; this keeps it so here too).
    if certificates.is_empty() {
        return Err(refused(
            "the provider has no IdP signing certificate".to_owned(),
            xml,
        ));
    }
    let signed_response = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &certificates,
        ReduceMode::ValidateAndMarkNoAncestors,
        sp.allowed_signature_algorithms.as_deref(),
    )
    .ok()
    .filter(|verified| root_is_response(verified));
    match signed_response {
        Some(verified) => {
            let opened = open(&verified, key).map_err(|reason| refused(reason, xml))?;
            // Its signature is verified above: samael checks everything else.
            let mut verified_already = sp.clone();
            for descriptor in verified_already
                .idp_metadata
                .idp_sso_descriptors
                .iter_mut()
                .flatten()
            {
                descriptor.key_descriptors.clear();
            }
            verified_already
                .parse_xml_response(&opened, request_ids)
                .map_err(|error| refused(error.to_string(), &opened))
        }
        None => {
            let opened = open(xml, key).map_err(|reason| refused(reason, xml))?;
            sp.parse_xml_response(&opened, request_ids)
                .map_err(|error| refused(error.to_string(), &opened))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encrypts `plain` as XML Encryption does (IV first, GCM tag last, CBC padded with
    /// arbitrary bytes and a final count), for the round trips below.
    fn encrypt(algorithm: &str, key: &[u8], plain: &[u8]) -> Vec<u8> {
        let (cipher, gcm) = data_cipher(algorithm).unwrap();
        if gcm {
            let iv = [7u8; 12];
            let mut tag = [0u8; 16];
            let data =
                openssl::symm::encrypt_aead(cipher, key, Some(&iv), &[], plain, &mut tag).unwrap();
            return [&iv[..], &data, &tag].concat();
        }
        let iv = [9u8; 16];
        let padding = 16 - plain.len() % 16;
        let mut padded = plain.to_vec();
        padded.extend(std::iter::repeat_n(0xAB, padding - 1));
        padded.push(u8::try_from(padding).unwrap());
        let mut crypter = Crypter::new(cipher, Mode::Encrypt, key, Some(&iv)).unwrap();
        crypter.pad(false);
        let mut out = vec![0; padded.len() + 16];
        let n = crypter.update(&padded, &mut out).unwrap();
        let m = crypter.finalize(&mut out[n..]).unwrap();
        out.truncate(n + m);
        [&iv[..], &out].concat()
    }

    #[test]
    fn aes_gcm_and_cbc_with_xml_encryption_padding_round_trip() {
        for (algorithm, length) in [
            ("http://www.w3.org/2009/xmlenc11#aes128-gcm", 16),
            ("http://www.w3.org/2009/xmlenc11#aes256-gcm", 32),
            ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", 16),
            ("http://www.w3.org/2001/04/xmlenc#aes192-cbc", 24),
            ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", 32),
        ] {
            let key = vec![3u8; length];
            for plain in [&b"<Assertion/>"[..], &[b'x'; 32][..]] {
                let sealed = encrypt(algorithm, &key, plain);
                assert_eq!(decrypt_data(algorithm, &key, &sealed).unwrap(), plain);
            }
            assert!(decrypt_data(algorithm, &key[1..], &encrypt(algorithm, &key, b"x")).is_err());
        }
    }

    #[test]
    fn a_changed_gcm_cipher_text_and_short_inputs_are_refused_not_panics() {
        let algorithm = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
        let key = [1u8; 16];
        let mut sealed = encrypt(algorithm, &key, b"<Assertion>x</Assertion>");
        sealed[14] ^= 1;
        assert!(decrypt_data(algorithm, &key, &sealed).is_err());
        for short in [&[][..], &[0u8; 27][..], &[0u8; 17][..], &[0u8; 33][..]] {
            assert!(decrypt_data(algorithm, &key, short).is_err());
            assert!(
                decrypt_data("http://www.w3.org/2001/04/xmlenc#aes128-cbc", &key, short).is_err()
            );
        }
    }

    #[test]
    fn weak_algorithms_are_refused_by_name() {
        assert!(matches!(data_cipher(TRIPLE_DES), Err(reason) if reason.contains("Triple DES")));
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let wrapped = WrappedKey {
            algorithm: Some(RSA_1_5.to_owned()),
            cipher_value: "AAAA".to_owned(),
            ..WrappedKey::default()
        };
        assert!(unwrap_key(&wrapped, &key)
            .unwrap_err()
            .contains("PKCS#1 v1.5"));
    }

    #[test]
    fn the_decrypted_content_must_be_one_assertion() {
        assert!(one_assertion("<saml:Assertion ID=\"a\"><x/></saml:Assertion>").is_ok());
        for bad in [
            "<saml:Assertion/>",
            "<Assertion></Assertion><Assertion></Assertion>",
            "</Response><Response><Assertion></Assertion>",
            "<Other></Other>",
            "text<Assertion></Assertion>",
            "<Assertion>",
            "<Assertion><Extensions><Assertion></Assertion></Extensions></Assertion>",
            "<Assertion><EncryptedAssertion/></Assertion>",
        ] {
            assert!(one_assertion(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_encrypted_assertion_opens_in_place_with_oaep_and_a_sibling_key() {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let data_key = [5u8; 32];
        let mut wrapped = Vec::new();
        let mut context = PkeyCtx::new(&key).unwrap();
        context.encrypt_init().unwrap();
        context.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        context.set_rsa_oaep_md(Md::sha256()).unwrap();
        context.set_rsa_mgf1_md(Md::sha256()).unwrap();
        context.encrypt_to_vec(&data_key, &mut wrapped).unwrap();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let assertion = "<saml:Assertion ID=\"a1\">secret</saml:Assertion>";
        let data = encrypt(
            "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
            &data_key,
            assertion.as_bytes(),
        );
        let response = format!(
            r##"<samlp:Response xmlns:samlp="p" xmlns:saml="a"><saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="{ELEMENT_TYPE}"><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes256-cbc"/><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><RetrievalMethod URI="#k"/></KeyInfo><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData><xenc:EncryptedKey xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Id="k"><xenc:EncryptionMethod Algorithm="{RSA_OAEP}"><ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><xenc11:MGF xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"/></xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>
{}
</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></saml:EncryptedAssertion></samlp:Response>"##,
            b64(&data),
            b64(&wrapped),
        );
        assert_eq!(
            open(&response, &key).unwrap(),
            format!(
                r#"<samlp:Response xmlns:samlp="p" xmlns:saml="a">{assertion}</samlp:Response>"#
            )
        );
        let other = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        assert!(open(&response, &other)
            .unwrap_err()
            .contains("not encrypted to this provider's key"));
    }
}
