"""Runs scim2-tester (an independent SCIM 2.0 compliance checker, PyPI) against a tenant's
/scim/v2 and prints one line per check. Exits 1 when a check found a violation of the RFCs
(ERROR or CRITICAL), 0 otherwise.

Usage: check_server.py BASE_URL TENANT BEARER_TOKEN   (token read from the environment
variable SCIM_TOKEN when BEARER_TOKEN is "-", so it stays out of process listings)
"""

import os
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

base_url, tenant, token = sys.argv[1], sys.argv[2], sys.argv[3]
if token == "-":
    token = os.environ["SCIM_TOKEN"]
http = Client(
    base_url=base_url.rstrip("/") + "/scim/v2",
    headers={"Authorization": f"Bearer {token}", "X-Tenant": tenant},
    timeout=30,
)
client = SyncSCIMClient(http)
results = check_server(client, raise_exceptions=False)
failed = 0
for result in results:
    bad = result.status in (Status.ERROR, Status.CRITICAL)
    failed += bad
    print(
        f"{'FAIL' if bad else 'ok  '} {result.status.name:<10} "
        f"{result.resource_type or '-':<6} {result.title}: {result.reason}"
    )
counts = {}
for result in results:
    counts[result.status.name] = counts.get(result.status.name, 0) + 1
print("summary:", ", ".join(f"{name} {count}" for name, count in sorted(counts.items())))
sys.exit(1 if failed or not results else 0)
