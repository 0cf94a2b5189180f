"""A real SAML 2.0 identity provider for the SSO tests: pysaml2's `Server` (signing with
Debian's xmlsec1, RSA-SHA256) behind a small HTTP server on loopback. Started by
deploy/local/lib.sh (ensure_saml_idp); never for production.

Endpoints:
  GET  /metadata                   the IdP's metadata (entity id, SSO URL, signing certificate)
  GET  /cert.pem                   the signing certificate
  GET  /sso/redirect               HTTP-Redirect binding: parses the AuthnRequest, shows a form
  POST /sso/login                  signs the user in: an HTML form that posts the Response to
                                   the SP's ACS (as a browser would auto-submit it)
Test hooks (loopback only):
  POST /__test/sp                  body: an SP's metadata XML (each test tenant has its own SP)
  POST /__test/accounts            JSON {login, name?, groups?, attribute_names?}: with
                                   attribute_names ({"email": …, "name": …, "groups": …}) the
                                   attributes go out under those names, as ADFS, Entra ID or
                                   Keycloak name them
The login form takes a `variant` so tests can get responses a real IdP must never send, made
with real XML-DSig: `unsigned`, `foreign_key` (signed by a key the SP does not trust),
`expired` (NotOnOrAfter 10 minutes ago), `wrapped` (a signed assertion plus an injected
unsigned one naming another user; field `victim`), `sha1` (signed with RSA-SHA1).

Encrypted assertions (XML Encryption by xmlsec1, to the encryption certificate in the SP's
metadata), as IdPs ship them:
  `encrypted`                  the assertion signed, then encrypted with AES-256-CBC and
                               RSA-OAEP-MGF1P; the Response unsigned (Entra ID's and ADFS's
                               default shape)
  `encrypted_signed_response`  the assertion encrypted with AES-128-GCM (XML Encryption
                               1.1) and RSA-OAEP-MGF1P, not signed itself; the Response
                               signed
and ones an SP must refuse: `encrypted_unsigned` (nothing signed: anyone can encrypt to the
SP's public key), `encrypted_3des` (pysaml2's default, Triple DES), `encrypted_rsa15` (RSA
PKCS#1 v1.5 key transport), `encrypted_tampered` (`encrypted_signed_response` with a byte of
the cipher text changed after signing).

NameIDs follow the AuthnRequest's NameIDPolicy, as IdPs do: `transient` gets a new random
value at every sign-in (Shibboleth's and often ADFS's default), `persistent` a stable opaque
one derived from the login, anything else (emailAddress, unspecified, none) the address. The
variant `transient` sends a transient NameID whatever the request asked (an IdP configured
that way).
"""

import base64
import functools
import hashlib
import html
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import saml2.entity
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, sigver
from saml2.config import IdPConfig
from saml2.saml import (
    NAME_FORMAT_BASIC,
    NAMEID_FORMAT_EMAILADDRESS,
    NAMEID_FORMAT_PERSISTENT,
    NAMEID_FORMAT_TRANSIENT,
    NAMEID_FORMAT_UNSPECIFIED,
    NameID,
)
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

PORT = int(os.environ.get("SAML_IDP_PORT", "18092"))
BASE = f"http://127.0.0.1:{PORT}"
STATE = os.environ.get("SAML_IDP_STATE", os.path.dirname(os.path.abspath(__file__)))
XMLSEC = os.environ.get("XMLSEC_BINARY", "/usr/bin/xmlsec1")

ACCOUNTS = {}
SP_METADATA = []


def make_server(key, cert, lifetime_minutes=15):
    config = IdPConfig()
    config.load(
        {
            "entityid": f"{BASE}/metadata",
            "service": {
                "idp": {
                    "name": "Tenantry test IdP",
                    "endpoints": {
                        "single_sign_on_service": [(f"{BASE}/sso/redirect", BINDING_HTTP_REDIRECT)],
                    },
                    "name_id_format": [
                        NAMEID_FORMAT_EMAILADDRESS,
                        NAMEID_FORMAT_PERSISTENT,
                        NAMEID_FORMAT_TRANSIENT,
                        NAMEID_FORMAT_UNSPECIFIED,
                    ],
                    "want_authn_requests_signed": False,
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": lifetime_minutes},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_BASIC,
                        }
                    },
                }
            },
            "key_file": os.path.join(STATE, key),
            "cert_file": os.path.join(STATE, cert),
            "xmlsec_binary": XMLSEC,
            "metadata": {},
        }
    )
    return Server(config=config)


IDP = make_server("idp.key", "idp.crt")
FOREIGN = make_server("foreign.key", "foreign.crt")
EXPIRED = make_server("idp.key", "idp.crt", lifetime_minutes=-10)
SERVERS = (IDP, FOREIGN, EXPIRED)


def metadata_xml():
    from saml2.metadata import entity_descriptor

    return str(entity_descriptor(IDP.config))


def name_id_for(request, login, force_transient=False):
    """The NameID an IdP would send `login` for this AuthnRequest (see the module's text)."""
    policy = request.message.name_id_policy
    asked = policy.format if policy is not None else None
    if force_transient or asked == NAMEID_FORMAT_TRANSIENT:
        return NameID(format=NAMEID_FORMAT_TRANSIENT, text="_" + os.urandom(16).hex())
    if asked == NAMEID_FORMAT_PERSISTENT:
        opaque = hashlib.sha256(f"tenantry-test-idp:{login}".encode()).hexdigest()[:32]
        return NameID(format=NAMEID_FORMAT_PERSISTENT, text=opaque)
    return NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=login)


# XML Encryption algorithms (pysaml2 encrypts with Triple DES unless told otherwise).
AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
RSA_1_5 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"

# variant: (sign the Response, sign the Assertion, data algorithm, xmlsec1 session key, key
# transport); data algorithm None: pysaml2's own default (Triple DES).
ENCRYPTED = {
    "encrypted": (False, True, AES256_CBC, "aes-256", sigver.RSA_OAEP_MGF1P),
    "encrypted_signed_response": (True, False, AES128_GCM, "aes-128", sigver.RSA_OAEP_MGF1P),
    "encrypted_tampered": (True, False, AES128_GCM, "aes-128", sigver.RSA_OAEP_MGF1P),
    "encrypted_unsigned": (False, False, AES256_CBC, "aes-256", sigver.RSA_OAEP_MGF1P),
    "encrypted_3des": (False, True, None, "des-192", sigver.RSA_OAEP_MGF1P),
    "encrypted_rsa15": (False, True, AES256_CBC, "aes-256", RSA_1_5),
}


def encrypting_with(server, data_algorithm, session_key, key_transport):
    """Makes pysaml2 encrypt with these algorithms: its template (pre_encryption_part, read
    by saml2.entity) and the session key xmlsec1 makes for it."""
    template = {"key_enc": key_transport}
    if data_algorithm:
        template["msg_enc"] = data_algorithm
    saml2.entity.pre_encryption_part = functools.partial(sigver.pre_encryption_part, **template)
    server.sec.encrypt_assertion = functools.partial(
        type(server.sec).encrypt_assertion, server.sec, key_type=session_key
    )


def encrypted_response(server, request, login, variant):
    """A response whose assertion is encrypted to the SP's encryption certificate (its
    metadata's), signed as ENCRYPTED says."""
    sign_response, sign_assertion, data_algorithm, session_key, key_transport = ENCRYPTED[variant]
    encrypting_with(server, data_algorithm, session_key, key_transport)
    xml, destination = email_response(
        server,
        request,
        login,
        f"User {login}",
        sign_response=sign_response,
        sign_assertion=sign_assertion,
        encrypt_assertion=True,
        encrypt_assertion_self_contained=True,
    )
    if "EncryptedAssertion" not in xml:
        raise ValueError("the SP's metadata offers no encryption certificate")
    if variant == "encrypted_tampered":
        import re

        values = list(re.finditer(r"<(\w+:)?CipherValue>([^<]+)</", xml))
        # The last CipherValue is the data's (the key's sits in its KeyInfo, before it).
        value = values[-1]
        data = bytearray(base64.b64decode(value.group(2)))
        data[20] ^= 1
        changed = base64.b64encode(bytes(data)).decode("ascii")
        xml = xml[: value.start(2)] + changed + xml[value.end(2) :]
    return xml, destination


def email_response(server, request, login, name, **signing):
    """`server`'s response for `login` (NameID their address; attributes email and `name`),
    signed (and encrypted) as `signing` says, with RSA-SHA256; and where it goes."""
    args = server.response_args(request.message, [BINDING_HTTP_POST])
    xml = server.create_authn_response(
        {"email": [login], "name": [name]},
        userid=login,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=login),
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
        **signing,
        **args,
    )
    return str(xml), args["destination"]


def signed_response(server, request, login, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256, sign=True, force_transient=False):
    account = ACCOUNTS.get(login, {})
    names = {"email": "email", "name": "name", "groups": "groups", **account.get("attribute_names", {})}
    identity = {
        names["email"]: [login],
        names["name"]: [account.get("name", f"User {login}")],
        names["groups"]: account.get("groups", []),
    }
    args = server.response_args(request.message, [BINDING_HTTP_POST])
    response = server.create_authn_response(
        identity,
        userid=login,
        name_id=name_id_for(request, login, force_transient),
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
        sign_response=sign,
        sign_assertion=sign,
        sign_alg=sign_alg,
        digest_alg=digest_alg,
        **args,
    )
    return str(response), args["destination"]


def wrapped_response(request, login, victim, placement="before"):
    """A response whose signed assertion is `login`'s, with an unsigned copy naming `victim`
    injected (XML signature wrapping): `before` or `after` the signed one, or in the
    Response's `extensions`."""
    import re

    xml, destination = email_response(
        IDP, request, login, "Signed User", sign_response=False, sign_assertion=True
    )
    match = re.search(r"<(\w+:)?Assertion\b.*?</(\w+:)?Assertion>", xml, re.S)
    signed = match.group(0)
    evil = re.sub(r"<(\w+:)?Signature\b.*?</(\w+:)?Signature>", "", signed, flags=re.S)
    evil = evil.replace(login, victim)
    evil = re.sub(r'ID="([^"]+)"', r'ID="\1-evil"', evil, count=1)
    if placement == "after":
        return xml.replace(signed, signed + evil), destination
    if placement == "extensions":
        issuer = re.search(r"</(\w+:)?Issuer>", xml).group(0)
        extensions = (
            '<samlp:Extensions xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">'
            + evil
            + "</samlp:Extensions>"
        )
        return xml.replace(issuer, issuer + extensions, 1), destination
    return xml.replace(signed, evil + signed), destination


def register_sp(server, xml):
    """Loads an SP's metadata in place of what the IdP knew of the same entity (each test
    run makes its tenants anew, under the same names, with new keys)."""
    store = server.metadata.metadata
    server.metadata.load("inline", xml)
    newest = list(store)[-1]
    entities = set(store[newest].entity)
    for key in list(store):
        if key != newest and entities & set(store[key].entity):
            del store[key]


def form_page(action, fields, visible=""):
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}"/>'
        for name, value in fields.items()
    )
    return f'<html><body><form method="post" action="{html.escape(action)}">{inputs}{visible}<input type="submit" value="Continue"/></form></body></html>'


# What a person types at the login page (a test posts `username` itself).
USERNAME_FIELD = '<label for="username">Username</label><input id="username" name="username"/>'


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("saml-idp: " + (format % args) + "\n")

    def reply(self, status, body, content_type="text/html; charset=utf-8"):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(length).decode("utf-8")

    def do_GET(self):
        url = urlparse(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path == "/metadata":
            return self.reply(200, metadata_xml(), "application/samlmetadata+xml")
        if url.path == "/cert.pem":
            with open(os.path.join(STATE, "idp.crt"), encoding="utf-8") as file:
                return self.reply(200, file.read(), "text/plain")
        if url.path == "/sso/redirect":
            try:
                IDP.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
            except Exception as error:  # the page says why, as IdPs do
                return self.reply(400, f"bad AuthnRequest: {html.escape(str(error))}", "text/plain")
            fields = {"SAMLRequest": query["SAMLRequest"], "RelayState": query.get("RelayState", "")}
            return self.reply(200, form_page("/sso/login", fields, USERNAME_FIELD))
        return self.reply(404, "not found", "text/plain")

    def do_POST(self):
        url = urlparse(self.path)
        try:
            if url.path == "/__test/sp":
                xml = self.body()
                for server in SERVERS:
                    register_sp(server, xml)
                return self.reply(204, "")
            if url.path == "/__test/accounts":
                account = json.loads(self.body())
                ACCOUNTS[str(account["login"])] = account
                return self.reply(204, "")
            if url.path == "/sso/login":
                form = {key: values[0] for key, values in parse_qs(self.body()).items()}
                return self.login(form)
        except Exception as error:
            return self.reply(400, f"error: {html.escape(repr(error))}", "text/plain")
        return self.reply(404, "not found", "text/plain")

    def login(self, form):
        login = form["username"]
        variant = form.get("variant", "")
        server = {"foreign_key": FOREIGN, "expired": EXPIRED}.get(variant, IDP)
        request = server.parse_authn_request(form["SAMLRequest"], BINDING_HTTP_REDIRECT)
        if variant in ENCRYPTED:
            xml, destination = encrypted_response(server, request, login, variant)
        elif variant.startswith("wrapped"):
            placement = {"wrapped": "before", "wrapped_after": "after"}.get(variant, "extensions")
            xml, destination = wrapped_response(request, login, form["victim"], placement)
        elif variant == "unsigned":
            xml, destination = signed_response(server, request, login, sign=False)
        elif variant == "sha1":
            xml, destination = signed_response(server, request, login, SIG_RSA_SHA1, DIGEST_SHA1)
        elif variant == "transient":
            xml, destination = signed_response(server, request, login, force_transient=True)
        else:
            xml, destination = signed_response(server, request, login)
        fields = {"SAMLResponse": base64.b64encode(xml.encode("utf-8")).decode("ascii")}
        if form.get("RelayState"):
            fields["RelayState"] = form["RelayState"]
        return self.reply(200, form_page(destination, fields))


if __name__ == "__main__":
    # One request at a time: pysaml2's Server is not known to be thread-safe.
    server = HTTPServer(("127.0.0.1", PORT), Handler)
    print(f"pysaml2 IdP listening on {BASE}", flush=True)
    server.serve_forever()
