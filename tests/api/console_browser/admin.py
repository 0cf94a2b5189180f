"""A tenant admin in a real browser (Debian's Chromium, driven by Playwright): invites a
user, creates an API key and uses it with curl, then finds those actions in the audit view
and exports them.

Run by tests/api/console_browser.rs. Arguments: a JSON object (see `main`). Prints a JSON
summary; any failed check raises.
"""

import json
import os
import subprocess
import sys
import time

from playwright.sync_api import sync_playwright

from end_user import CHROMIUM_ARGS, Checks


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
            viewport={"width": 1280, "height": 900},
        )
        page = context.new_page()
        checks = Checks(page, args["screenshots"])

        page.goto(f"{base}/console/sign-in")
        page.get_by_label("Email").fill(args["email"])
        page.get_by_label("Password").fill(args["password"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/console")

        # Invite a user.
        page.get_by_role("link", name="Users").click()
        page.get_by_label("Email").fill(args["invitee"])
        page.get_by_label("Name", exact=True).fill("Ivo Invited")
        page.get_by_label("member").check()
        page.get_by_role("button", name="Send the invitation").click()
        assert page.get_by_role("status").inner_text().startswith("Invited"), page.content()
        assert page.locator("#users").get_by_text(args["invitee"]).is_visible()
        checks.page_ok("admin-users")

        # Create an API key; it is shown once, and curl can use it.
        page.get_by_role("link", name="API keys").click()
        page.get_by_label("Name").fill("reporting")
        page.get_by_label("Scopes").fill("usage:read")
        page.get_by_role("button", name="Create key").click()
        key = page.locator("#revealed-key").inner_text().strip()
        assert key.startswith("tnt_"), key
        curl = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
             "-H", f"X-Tenant: {args['tenant']}", "-H", f"X-API-Key: {key}",
             f"{base}/v1/admin/usage"],
            check=True, capture_output=True, text=True,
        )
        assert curl.stdout == "200", f"curl with the new key: {curl.stdout}"
        summary["curl_status"] = int(curl.stdout)
        page.get_by_role("link", name="API keys").click()
        assert key not in page.content(), "the key was shown a second time"
        assert page.locator("#api-keys").get_by_text("reporting").is_visible()
        checks.page_ok("admin-api-keys")

        # The audit view shows both actions (they reach the store within a flush or two).
        page.get_by_role("link", name="Audit log").click()
        deadline = time.monotonic() + 30
        while True:
            page.get_by_label("Action").fill("api_keys.create")
            page.get_by_role("button", name="Filter").click()
            if page.locator("#audit-events td", has_text="api_keys.create").count() > 0:
                break
            assert time.monotonic() < deadline, "api_keys.create never showed in the audit view"
            time.sleep(0.3)
        page.get_by_label("Action").fill("")
        page.get_by_role("button", name="Filter").click()
        assert page.locator("#audit-events td", has_text="users.invite").count() > 0
        checks.page_ok("admin-audit")
        # The export link, fetched with the browser's own cookies (headless Chromium here
        # cancels downloads to disk).
        href = page.get_by_role("link", name="Export these as CSV").get_attribute("href")
        answer = context.request.get(f"{base}{href}")
        assert answer.status == 200, answer.status
        assert answer.headers["content-disposition"].startswith("attachment"), answer.headers
        exported = answer.text()
        assert exported.startswith("occurred_at,"), exported[:200]
        assert ",api_keys.create," in exported and ",users.invite," in exported
        summary["exported_lines"] = len(exported.splitlines())
        browser.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
