"""The mounted sandbox with ``DEBUG = False``: what a user sees (issue 22).

Without ``SERVE_WITHOUT_DEBUG`` it is not there at all: every URL under its mount point gets the
site's own 404 page, byte for byte the page of a URL that was never mounted, so nothing tells a
visitor that a sandbox is installed, and nothing is recorded. With ``SERVE_WITHOUT_DEBUG`` it
answers like the standalone server: refusals are the API's JSON envelope (never Django's HTML
error pages), whatever the body holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from django_sendflare.sandbox.mounted import get_default_sandbox, reset_default_sandbox
from tests.sandbox.conftest import assert_envelope

MESSAGE = {"from": "from@example.com", "to": "to@example.com", "subject": "Hi", "body": "x"}
AUTH = {"HTTP_AUTHORIZATION": "Bearer any-token"}
MOUNTED = [
    ("post", "/sandbox/v1/send"),
    ("get", "/sandbox/v1/contact?appId=a"),
    ("delete", "/sandbox/v1/contact?appId=a&emailAddress=a@example.com"),
    ("get", "/sandbox/_sandbox/"),
    ("get", "/sandbox/_sandbox/contacts"),
    ("get", "/sandbox/_sandbox/messages/some-id"),
    ("get", "/sandbox/_sandbox/api/messages"),
    ("post", "/sandbox/_sandbox/api/reset"),
]


@pytest.fixture(autouse=True)
def debug_off(settings: Any) -> Iterator[None]:
    settings.DEBUG = False
    reset_default_sandbox()
    yield
    reset_default_sandbox()


def call(client: Client, method: str, path: str, body: str | bytes = "") -> Any:
    return client.generic(
        method.upper(),
        path,
        data=body,
        content_type="application/json",
        HTTP_X_SENDFLARE_SANDBOX="1",
        **AUTH,
    )


@pytest.mark.parametrize(("method", "path"), MOUNTED)
def test_every_url_is_the_sites_own_404(client: Client, method: str, path: str) -> None:
    never_mounted = call(client, method, "/no-such-page/")
    response = call(client, method, path, json.dumps(MESSAGE))
    assert response.status_code == 404
    assert response.content == never_mounted.content
    assert b"sandbox" not in response.content.lower()
    assert b"sendflare" not in response.content.lower()
    assert get_default_sandbox().messages() == []
    assert get_default_sandbox().requests() == []


@pytest.fixture
def served(settings: Any) -> None:
    settings.SENDFLARE_SANDBOX = {"SERVE_WITHOUT_DEBUG": True}


@pytest.mark.usefixtures("served")
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"from":"a@example.com","to":"b@example.com","subject":"\\ud800","body":"B"}',
    ],
)
def test_served_refusals_are_envelopes_not_error_pages(client: Client, body: bytes) -> None:
    response = call(client, "post", "/sandbox/v1/send", body)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert_envelope(response.json(), 100033)
    assert client.get("/sandbox/_sandbox/").status_code == 200
    assert client.get("/sandbox/_sandbox/api/messages").json()["count"] == 0


@pytest.mark.usefixtures("served")
def test_served_a_body_over_djangos_limit_is_100023(client: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = call(client, "post", "/sandbox/v1/send", json.dumps({**MESSAGE, "body": "x" * 2000}))
    assert response.status_code == 413
    assert_envelope(response.json(), 100023)


@pytest.mark.usefixtures("served")
def test_served_pages_carry_their_security_headers(client: Client) -> None:
    assert call(client, "post", "/sandbox/v1/send", json.dumps(MESSAGE)).status_code == 200
    inbox = client.get("/sandbox/_sandbox/")
    assert inbox.status_code == 200
    assert "default-src 'none'" in inbox["Content-Security-Policy"]
    assert inbox["Cache-Control"] == "no-store"
    assert b"/sandbox/_sandbox/messages/" in inbox.content
    # A cross-site request still may not change it.
    refused = client.post("/sandbox/_sandbox/api/reset", HTTP_ORIGIN="https://evil.example")
    assert refused.status_code == 403
    assert len(get_default_sandbox().messages()) == 1
