"""A tenant admin sets up single sign-on through the console's wizard in a real browser
(Debian's Chromium, driven by Playwright), then new people sign in with it:

- an OpenID Connect provider against the local `oidc-provider`: the admin reads the redirect
  URI off the wizard, registers it at the provider (as they would in their IdP's admin
  console), fills in issuer and client, tests the connection in a new tab and enables it;
- a SAML provider from an uploaded metadata file against the local pysaml2 IdP: the admin
  uploads the IdP's metadata, gives the IdP our SP metadata, tests and enables it;
- a new person signs in with the OIDC provider's button, another through email discovery
  with the SAML provider, each landing signed in to the console.

The IdPs redirect to the tenant's public host, https://<slug>.tenantry.test. Chromium reaches
it as it would in production: its resolver maps *.tenantry.test to `TlsFront`, which ends TLS
(a throw-away certificate for *.tenantry.test, which this browser is told to accept) and
passes the bytes unchanged to the data plane on loopback, as a load balancer that ends TLS
would. So the browser sees the real public URL: https, `Secure` cookies, cross-site IdP
posts, redirects followed by the browser itself. (Playwright's request routing cannot stand
in: it does not see the requests a redirect makes.)

Run by tests/api/console_browser.rs. Arguments: a JSON object (see `main`). Prints a JSON
summary; any failed check raises.
"""

import asyncio
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.request
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

from end_user import CHROMIUM_ARGS, Checks

class TlsFront:
    """TLS on a loopback port, for *.tenantry.test, in front of `upstream` (host, port)."""

    def __init__(self, upstream, directory):
        certificate, key = os.path.join(directory, "front.crt"), os.path.join(directory, "front.key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "1", "-subj", "/CN=tenantry.test",
             "-addext", "subjectAltName=DNS:*.tenantry.test",
             "-keyout", key, "-out", certificate],
            check=True,
            capture_output=True,
        )
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(certificate, key)
        self.upstream = upstream
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        started.wait(10)
        assert self.port, "the TLS front did not start"

    def _run(self, started):
        asyncio.set_event_loop(self.loop)
        self.port = None
        server = self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=self.tls)
        )
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()

    async def _connection(self, client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        await asyncio.gather(
            pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer)
        )

    def chromium_args(self):
        """Chromium's flags that send *.tenantry.test here."""
        return [f"--host-resolver-rules=MAP *.tenantry.test 127.0.0.1:{self.port}"]


def post_raw(url, data, content_type="application/xml"):
    request = urllib.request.Request(
        url, data=data, headers={"content-type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, answer.read()


def post_json(url, value):
    return post_raw(url, json.dumps(value).encode(), "application/json")


def register_oidc_client(issuer, redirect_uri):
    """What the admin does in their IdP: a web application with our redirect URI."""
    status, body = post_json(
        f"{issuer}/reg",
        {
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert status == 201, body
    client = json.loads(body)
    return client["client_id"], client["client_secret"]


def sign_in_at_oidc_provider(page, login):
    """The provider's own login and consent pages, as a person fills them in."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    consent = page.locator("button[type=submit]")
    if page.locator("input[name=prompt][value=consent]").count():
        consent.click()


def sign_in_at_saml_idp(page, login):
    """The test IdP's login page, then its page that posts the response to our ACS."""
    page.get_by_label("Username").fill(login)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Continue").click()


def test_in_new_tab(context, page, expected_email, sign_in):
    """Clicks "Test the connection", signs in at the IdP in the new tab; the result tab."""
    with context.expect_page() as opened:
        page.get_by_role("link", name="Test the connection (opens a new tab)").click()
    tab = opened.value
    tab.wait_for_load_state()
    sign_in(tab)
    tab.wait_for_url(re.compile(r".*/test-result\?result=.*"))
    assert tab.get_by_role("heading", name="The connection works").is_visible(), tab.content()
    mapped = tab.locator("#mapped-email").inner_text()
    assert mapped.startswith(expected_email), f"the test mapped {mapped!r}"
    return tab


def main():
    args = json.loads(sys.argv[1])
    slug = args["tenant"]
    tenant = f"https://{slug}.tenantry.test"
    os.makedirs(args["screenshots"], exist_ok=True)
    summary = {}
    data_plane = urlsplit(args["data_url"])
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as scratch:
        front = TlsFront((data_plane.hostname, data_plane.port), scratch)
        browser = playwright.chromium.launch(
            executable_path=args["chromium"],
            args=CHROMIUM_ARGS + front.chromium_args(),
            headless=True,
        )

        def new_context():
            return browser.new_context(
                viewport={"width": 1280, "height": 900}, ignore_https_errors=True
            )

        context = new_context()
        page = context.new_page()
        checks = Checks(page, args["screenshots"])

        page.goto(f"{tenant}/console/sign-in")
        page.get_by_label("Email").fill(args["admin_email"])
        page.get_by_label("Password").fill(args["admin_password"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{tenant}/console")

        # OpenID Connect: the wizard shows the redirect URI to register at the provider.
        page.get_by_role("link", name="Single sign-on").click()
        page.get_by_role("link", name="Another OpenID Connect provider").click()
        page.get_by_label("Name (in URLs").fill("corp")
        page.get_by_role("button", name="Show the values for this name").click()
        page.get_by_label("Shown to people as").fill("Corp SSO")
        redirect_uri = f"{tenant}/v1/auth/sso/corp/callback"
        assert page.get_by_text(redirect_uri).is_visible(), "the wizard shows the redirect URI"
        client_id, client_secret = register_oidc_client(args["oidc_issuer"], redirect_uri)
        page.get_by_label("Issuer URL").fill(args["oidc_issuer"])
        page.get_by_label("Client ID").fill(client_id)
        page.get_by_label("Client secret").fill(client_secret)
        page.get_by_label("Scopes besides openid").fill("email profile groups")
        page.get_by_label("Groups to roles").fill("engineers = admin")
        checks.page_ok("sso-wizard-oidc")
        page.get_by_role("button", name="Save (disabled until you test it)").click()
        page.wait_for_url(f"{tenant}/console/admin/sso/corp")
        assert page.locator("#sso-state").inner_text().startswith("Disabled")

        tab = test_in_new_tab(
            context,
            page,
            args["oidc_tester"],
            lambda tab: sign_in_at_oidc_provider(tab, args["oidc_tester"]),
        )
        roles = tab.locator("#mapped-roles").inner_text()
        assert roles == "admin", f"the test mapped roles {roles!r}"
        Checks(tab, args["screenshots"]).page_ok("sso-test-result-oidc")
        tab.close()
        page.get_by_role("button", name="Enable").click()
        assert page.locator("#sso-state").inner_text().startswith("Enabled")
        checks.page_ok("sso-provider")

        # SAML from an uploaded metadata file; the IdP then gets our SP metadata.
        page.get_by_role("link", name="Single sign-on").click()
        page.get_by_role("link", name="A SAML 2.0 provider").click()
        page.get_by_label("Name (in URLs").fill("adfs")
        page.get_by_role("button", name="Show the values for this name").click()
        assert page.get_by_text(f"{tenant}/v1/auth/saml/adfs/acs").is_visible()
        page.get_by_label("Shown to people as").fill("Corp ADFS")
        with urllib.request.urlopen(f"{args['saml_idp']}/metadata", timeout=10) as answer:
            idp_metadata = answer.read()
        metadata_file = os.path.join(scratch, "FederationMetadata.xml")
        with open(metadata_file, "wb") as file:
            file.write(idp_metadata)
        page.get_by_label("Your provider's metadata file (XML)").set_input_files(metadata_file)
        page.get_by_label("Domains whose people sign in here").fill(args["saml_domain"])
        checks.page_ok("sso-wizard-saml")
        page.get_by_role("button", name="Save (disabled until you test it)").click()
        page.wait_for_url(f"{tenant}/console/admin/sso/adfs")
        # Our metadata, downloaded from the provider's page, goes to the IdP.
        with page.expect_download() as downloading:
            page.get_by_role("link", name="download").click()
        sp_metadata = os.path.join(scratch, "our-metadata.xml")
        downloading.value.save_as(sp_metadata)
        with open(sp_metadata, "rb") as file:
            status, _ = post_raw(f"{args['saml_idp']}/__test/sp", file.read())
        assert status == 204, status

        tab = test_in_new_tab(
            context,
            page,
            args["saml_tester"],
            lambda tab: sign_in_at_saml_idp(tab, args["saml_tester"]),
        )
        tab.close()
        page.get_by_role("button", name="Enable").click()
        assert page.locator("#sso-state").inner_text().startswith("Enabled")
        summary["providers_enabled"] = 2

        # New people, each in a browser of their own.
        person = new_context().new_page()
        person_checks = Checks(person, args["screenshots"])
        person.goto(f"{tenant}/console/sign-in")
        person_checks.page_ok("sign-in-with-sso")
        person.get_by_role("link", name="Continue with Corp SSO").click()
        sign_in_at_oidc_provider(person, args["oidc_user"])
        person.wait_for_url(f"{tenant}/console")
        assert person.locator("#profile-email").inner_text() == args["oidc_user"]
        summary["oidc_user_signed_in"] = True

        person = new_context().new_page()
        person.goto(f"{tenant}/console/sign-in")
        person.get_by_role("link", name="Sign in with single sign-on").click()
        person.get_by_label("Work email").fill(args["saml_user"])
        person.get_by_role("button", name="Continue").click()
        person.get_by_role("link", name="Continue with Corp ADFS").click()
        sign_in_at_saml_idp(person, args["saml_user"])
        person.wait_for_url(f"{tenant}/console")
        assert person.locator("#profile-email").inner_text() == args["saml_user"]
        summary["saml_user_signed_in"] = True
        browser.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
