"""Uses the Python client generated from docs/openapi/data-plane.json as an integrator would.

Run by tests/api/python_client.rs with the generated package `tenantry_data_plane` on
PYTHONPATH:

    smoke.py BASE_URL TENANT EMAIL PASSWORD COLLECTION RECORD_JSON

Signs in with a wrong password, then the right one (the generated `login`), creates
RECORD_JSON in COLLECTION with the access token (`create_record`) and reads it back by id
(`get_record`). Prints one JSON line of what it saw (status codes, the error code of the
refused sign-in, the record as created and as read), never a token; the Rust test judges it.
Exits 1 after printing when a step does not answer as documented, since the next one needs it.
"""

import json
import sys

from tenantry_data_plane import AuthenticatedClient, Client
from tenantry_data_plane.api.auth import login
from tenantry_data_plane.api.records import create_record, get_record
from tenantry_data_plane.models import (
    Error,
    LoginRequest,
    RecordData,
    RecordView,
    TokenResponse,
)


def parsed(response):
    """The parsed body as plain JSON values, or the raw text when it did not parse."""
    body = response.parsed
    if body is None:
        return response.content.decode("utf-8", "replace")
    return body.to_dict()


def main():
    base_url, tenant, email, password, collection, record_json = sys.argv[1:7]
    seen = {}

    def stop(step, response):
        seen[step] = {"status": int(response.status_code), "body": parsed(response)}
        print(json.dumps(seen))
        sys.exit(1)

    # The tenant is named by header; every request of both clients carries it.
    headers = {"X-Tenant": tenant}
    with Client(base_url=base_url, headers=headers) as anonymous:
        refused = login.sync_detailed(
            client=anonymous,
            body=LoginRequest(email=email, password=password + "-not-it"),
        )
        if not isinstance(refused.parsed, Error):
            stop("wrong_password", refused)
        seen["wrong_password"] = {
            "status": int(refused.status_code),
            "code": refused.parsed.error.code,
        }

        signed_in = login.sync_detailed(
            client=anonymous, body=LoginRequest(email=email, password=password)
        )
        if not isinstance(signed_in.parsed, TokenResponse):
            stop("login", signed_in)
        seen["login"] = {
            "status": int(signed_in.status_code),
            "token_type": signed_in.parsed.token_type,
        }
        access_token = signed_in.parsed.access_token

    with AuthenticatedClient(
        base_url=base_url, token=access_token, headers=headers
    ) as client:
        created = create_record.sync_detailed(
            collection,
            client=client,
            body=RecordData.from_dict(json.loads(record_json)),
        )
        if not isinstance(created.parsed, RecordView):
            stop("create", created)
        seen["create"] = {"status": int(created.status_code), "record": parsed(created)}

        read = get_record.sync_detailed(collection, str(created.parsed.id), client=client)
        if not isinstance(read.parsed, RecordView):
            stop("read", read)
        seen["read"] = {"status": int(read.status_code), "record": parsed(read)}

    print(json.dumps(seen))


if __name__ == "__main__":
    main()
