"""The contract: each official SDK's requests, replayed byte for byte into the sandbox.

The requests are written down in tests/sandbox/sdk_requests.py (from the SDKs' public sources).
The sandbox must take every one of them as the real API evidently does, whatever the changes to
its validation: a save without status, cc/bcc/replyTo lists, zero page parameters, each
serialiser's escapes, ``"data": null`` and ``"data": []``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from django_sendflare.sandbox.server import RunningSandbox
from tests.sandbox.conftest import TOKEN, assert_envelope
from tests.sandbox.sdk_requests import BODY, REQUESTS, SOURCES, SUBJECT, SdkRequest

OPERATIONS = ("send", "save_without_data", "save", "list", "delete")


def replay(server: RunningSandbox, request: SdkRequest) -> Any:
    url = f"{server.url}{request.path}" + (f"?{request.query}" if request.query else "")
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": request.content_type}
    body = request.body.encode("utf-8") if request.body is not None else None
    response = requests.request(request.method, url, data=body, headers=headers, timeout=5)
    assert response.status_code == 200, (request, response.text)
    answer = response.json()
    assert_envelope(answer, 0)
    return answer


def requests_of(sdk: str) -> dict[str, SdkRequest]:
    return {request.operation: request for request in REQUESTS if request.sdk == sdk}


def test_every_sdk_has_every_operation_written_down() -> None:
    assert {sdk: sorted(requests_of(sdk)) for sdk in SOURCES} == {
        sdk: sorted(OPERATIONS) for sdk in SOURCES
    }


@pytest.mark.parametrize("sdk", sorted(SOURCES))
def test_the_sandbox_takes_every_request_of(
    sdk: str, make_server: Callable[..., RunningSandbox]
) -> None:
    server = make_server()
    sent = requests_of(sdk)

    replay(server, sent["send"])
    [message] = server.sandbox.messages()
    assert (message["from"], message["to"]) == ("from@example.com", "to@example.com")
    assert (message["subject"], message["body"]) == (SUBJECT, BODY)  # every escape decoded
    given = json.loads(sent["send"].body or "{}")
    for name in ("cc", "bcc", "replyTo"):
        assert message[name] == given.get(name, [])

    replay(server, sent["save_without_data"])
    [record] = server.sandbox.contact_records("app-1")
    assert (record["emailAddress"], record["status"], record["statusDefaulted"]) == (
        "ann@example.com",
        "Confirmed",
        True,
    )
    replay(server, sent["save"])
    [contact] = server.sandbox.contacts("app-1")
    assert (contact["firstName"], contact["vipLevel"]) == ("Ann", 2)

    listed = replay(server, sent["list"])["data"]
    asked = dict(part.split("=") for part in (sent["list"].query or "").split("&"))
    assert listed["page"] == max(int(asked["page"]), 1)
    assert listed["pageSize"] == (int(asked["pageSize"]) or 500)
    assert (listed["total"], listed["totalCount"]) == (1, 1)
    assert [c["emailAddress"] for c in listed["list"]] == ["ann@example.com"]

    replay(server, sent["delete"])
    assert server.sandbox.contacts("app-1") == []
    assert [entry["code"] for entry in server.sandbox.requests()] == [0] * 5
