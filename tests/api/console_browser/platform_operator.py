"""A platform operator in a real browser (Debian's Chromium, driven by Playwright): signs in
to the operator console, creates a tenant with its first admin, suspends it — the tenant's
own console then shows its suspended page — and changes its quotas.

Run by tests/api/console_browser.rs. Arguments: a JSON object (see `main`). Prints a JSON
summary; any failed check raises.
"""

import json
import os
import sys
import time

from playwright.sync_api import sync_playwright

from end_user import CHROMIUM_ARGS, Checks


def main():
    args = json.loads(sys.argv[1])
    control = args["control_url"]
    os.makedirs(args["screenshots"], exist_ok=True)
    summary = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args["chromium"], args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        checks = Checks(page, args["screenshots"])

        page.goto(f"{control}/console")
        assert page.url.startswith(f"{control}/console/sign-in"), page.url
        page.get_by_label("Email").fill(args["email"])
        page.get_by_label("Password").fill(args["password"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{control}/console")
        checks.page_ok("operator-tenants")

        page.get_by_role("link", name="New tenant").click()
        page.get_by_label("Slug").fill(args["slug"])
        page.get_by_label("Name", exact=True).fill("Umbrella Corp")
        page.get_by_label("First admin's email").fill(args["admin_email"])
        checks.page_ok("operator-new-tenant")
        page.get_by_role("button", name="Create the tenant").click()
        page.wait_for_url(f"{control}/console/tenants/{args['slug']}")
        assert page.locator("#tenant-status").inner_text() == "active"

        page.get_by_role("button", name="Suspend").click()
        assert page.locator("#tenant-status").inner_text() == "suspended"

        # The tenant's own console, as its users see it.
        tenant = browser.new_context(extra_http_headers={"X-Tenant": args["slug"]}).new_page()
        deadline = time.monotonic() + 10
        while True:
            tenant.goto(f"{args['data_url']}/console/sign-in")
            if tenant.get_by_role("heading", name="This account is suspended").count() > 0:
                break
            assert time.monotonic() < deadline, "the tenant's console never showed it suspended"
            time.sleep(0.2)
        tenant.screenshot(path=os.path.join(args["screenshots"], "tenant-suspended.png"))
        summary["suspended_page"] = True

        page.get_by_label("Users").fill("25")
        page.get_by_role("button", name="Save the quotas").click()
        page.wait_for_url(f"{control}/console/tenants/{args['slug']}")
        row = page.locator("#quotas tr", has=page.get_by_label("Users"))
        assert row.locator("td").nth(1).inner_text() == "25", row.inner_text()
        checks.page_ok("operator-tenant")
        summary["max_users"] = 25
        browser.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
