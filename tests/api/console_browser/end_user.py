"""An end user in a real browser (Debian's Chromium, driven by Playwright): signs up, follows
the link mailed to them (read from the test SMTP server's Maildir), signs in, enrols TOTP with
a code from oathtool, signs out and back in with the keyboard and a TOTP code.

Run by tests/api/console_browser.rs, which starts the stack and checks the server's side
afterwards. Arguments: a JSON object (see `main`). Prints a JSON summary; any failed check
raises, which fails the Rust test with this script's output.
"""

import json
import mailbox
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_for_link(maildir, address, path, deadline_seconds=30):
    """The first link to `path` in a mail to `address` (waits for the mail to arrive)."""
    deadline = time.monotonic() + deadline_seconds
    pattern = re.compile(r"https?://[^\s]+" + re.escape(path) + r"\?token=[A-Za-z0-9_\-]+")
    while time.monotonic() < deadline:
        for message in mailbox.Maildir(maildir, create=False):
            if address not in (message.get("To") or ""):
                continue
            body = message.get_payload(decode=True)
            if body is None and message.is_multipart():
                body = message.get_payload(0).get_payload(decode=True)
            found = pattern.search((body or b"").decode("utf-8", "replace"))
            if found:
                return found.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no mail to {address} with a {path} link within {deadline_seconds} s")


def totp(secret, at):
    """The TOTP code of `secret` at `at`, from oathtool (not from our code)."""
    output = subprocess.run(
        ["oathtool", "--totp", "-b", secret, "--now", at.strftime("%Y-%m-%d %H:%M:%S UTC")],
        check=True,
        capture_output=True,
        text=True,
    )
    return output.stdout.strip()


class Checks:
    """What every page must hold to: no CSP violation, every field labelled."""

    def __init__(self, page, screenshots):
        self.page = page
        self.screenshots = screenshots
        self.violations = []
        page.on("console", self._console)

    def _console(self, message):
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.violations.append(message.text)

    def page_ok(self, name):
        unlabelled = self.page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden])')]
                   .filter(input => !input.labels || input.labels.length === 0)
                   .map(input => input.name)"""
        )
        assert unlabelled == [], f"{name}: fields without a label: {unlabelled}"
        assert self.page.evaluate("() => document.styleSheets.length") >= 1, f"{name}: no style"
        assert not self.violations, f"{name}: CSP violations: {self.violations}"
        self.page.screenshot(path=os.path.join(self.screenshots, f"{name}.png"), full_page=True)


def main():
    args = json.loads(sys.argv[1])
    base = args["base_url"]
    os.makedirs(args["screenshots"], exist_ok=True)
    summary = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args["chromium"], args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(
            extra_http_headers={"X-Tenant": args["tenant"]},
            viewport={"width": 1280, "height": 800},
        )
        page = context.new_page()
        checks = Checks(page, args["screenshots"])

        # Sign up.
        page.goto(f"{base}/console/sign-in")
        checks.page_ok("sign-in")
        page.get_by_role("link", name="Create an account").click()
        page.get_by_label("Name").fill(args["name"])
        page.get_by_label("Email").fill(args["email"])
        page.get_by_label("Password").fill(args["password"])
        checks.page_ok("sign-up")
        page.get_by_role("button", name="Create account").click()
        assert page.get_by_role("heading", name="Check your mail").is_visible()

        # The link in the mail: it lands on our page, whose button confirms the address.
        link = wait_for_link(args["maildir"], args["email"], "/console/verify-email")
        path = link[link.index("/console/") :]
        page.goto(f"{base}{path}")
        checks.page_ok("verify-email")
        page.get_by_role("button", name="Confirm my address").click()
        assert page.get_by_role("heading", name="Address confirmed").is_visible()

        # Sign in.
        page.get_by_role("link", name="Sign in").click()
        page.get_by_label("Email").fill(args["email"])
        page.get_by_label("Password").fill(args["password"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/console")
        assert page.locator("#profile-email").inner_text() == args["email"]
        assert page.locator("#profile-mfa").inner_text() == "off"
        checks.page_ok("profile")

        # Enrol TOTP: the QR code renders, the key is shown, oathtool's code turns it on.
        page.get_by_role("link", name="Two-factor").click()
        checks.page_ok("two-factor")
        page.get_by_role("button", name="Set up an authenticator app").click()
        qr = page.get_by_role("img", name="QR code of your new two-factor secret")
        assert qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR code does not render"
        secret = page.locator("#totp-secret").inner_text().strip()
        checks.page_ok("two-factor-setup")
        enabled_at = datetime.now(timezone.utc)
        page.get_by_label("Code").fill(totp(secret, enabled_at))
        page.get_by_role("button", name="Turn on two-factor").click()
        codes = page.locator("#backup-codes li").all_inner_texts()
        assert len(codes) == 10, codes
        checks.page_ok("backup-codes")
        summary["backup_codes"] = len(codes)

        # Sessions, then sign out.
        page.get_by_role("link", name="Sessions").click()
        assert page.get_by_text("this browser").is_visible()
        checks.page_ok("sessions")
        page.get_by_role("button", name="Sign out").first.click()
        page.wait_for_url(f"{base}/console/sign-in")
        page.goto(f"{base}/console")
        assert page.url == f"{base}/console/sign-in", f"still signed in: {page.url}"

        # Back in with the keyboard alone: type, Tab, type, Enter; then the next step's code
        # (the one used to enable may not be used again).
        page.focus("#email")
        page.keyboard.type(args["email"])
        page.keyboard.press("Tab")
        page.keyboard.type(args["password"])
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/console/sign-in/mfa.*"))
        checks.page_ok("sign-in-code")
        page.get_by_label("Code").fill(totp(secret, enabled_at + timedelta(seconds=30)))
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/console")
        assert page.locator("#profile-mfa").inner_text() == "on"
        summary["signed_in_with_totp"] = True

        # A phone's width: nothing wider than the screen.
        phone = browser.new_context(
            extra_http_headers={"X-Tenant": args["tenant"]},
            viewport={"width": 375, "height": 740},
        ).new_page()
        phone_checks = Checks(phone, args["screenshots"])
        phone.goto(f"{base}/console/sign-in")
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 375, f"the sign-in page is {width} px wide at 375"
        phone_checks.page_ok("sign-in-375px")
        browser.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
