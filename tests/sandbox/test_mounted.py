"""The sandbox mounted in a URLconf (tests/urls.py: path("sandbox/", include(...)))."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.test import Client

from django_sendflare.sandbox.mounted import get_default_sandbox, reset_default_sandbox
from django_sendflare.sandbox.pytest_plugin import SandboxHandle
from tests.sandbox.conftest import assert_envelope

MESSAGE = {"from": "from@example.com", "to": "to@example.com", "subject": "Hi", "body": "<i>x</i>"}
AUTH = {"HTTP_AUTHORIZATION": "Bearer any-token"}


@pytest.fixture(autouse=True)
def fresh_default_sandbox(settings: Any) -> Iterator[None]:
    settings.DEBUG = True  # the mounted sandbox is a development tool (test_production_guard.py)
    reset_default_sandbox()
    yield
    reset_default_sandbox()


def post(client: Client, path: str, payload: Any) -> Any:
    return client.post(path, data=json.dumps(payload), content_type="application/json", **AUTH)


def test_send_and_contacts_through_the_test_client(client: Client) -> None:
    response = post(client, "/sandbox/v1/send", MESSAGE)
    assert response.status_code == 200
    assert_envelope(response.json(), 0)
    contact = {"appId": "a", "emailAddress": "x@example.com", "status": "Confirmed"}
    assert post(client, "/sandbox/v1/contact", contact).json()["code"] == 0
    listed = client.get("/sandbox/v1/contact", {"appId": "a"}, **AUTH).json()
    assert listed["data"]["totalCount"] == 1
    deleted = client.delete("/sandbox/v1/contact?appId=a&emailAddress=x@example.com", **AUTH)
    assert deleted.json()["code"] == 0
    assert get_default_sandbox().contacts("a") == []
    [message] = get_default_sandbox().messages()
    assert message["body"] == "<i>x</i>"


def test_auth_and_validation(client: Client) -> None:
    anonymous = client.post("/sandbox/v1/send", data="{}", content_type="application/json")
    assert anonymous.status_code == 401
    assert_envelope(anonymous.json(), 100029)
    invalid = post(client, "/sandbox/v1/send", {**MESSAGE, "to": "nobody"})
    assert invalid.status_code == 400
    assert_envelope(invalid.json(), 100033)
    assert client.get("/sandbox/v1/send", **AUTH).status_code == 405


def test_settings_configure_the_mounted_sandbox(client: Client, settings: Any) -> None:
    settings.SENDFLARE_SANDBOX = {"TOKEN": "secret", "RATE_LIMIT": 1, "FAULT_QUEUE": ["503"]}
    good = {"HTTP_AUTHORIZATION": "Bearer secret"}
    data = json.dumps(MESSAGE)
    first = client.post("/sandbox/v1/send", data, content_type="application/json", **good)
    assert first.status_code == 503  # the queued fault (faults come before any check)
    assert post(client, "/sandbox/v1/send", MESSAGE).status_code == 401  # wrong token
    second = client.post("/sandbox/v1/send", data, content_type="application/json", **good)
    assert second.status_code == 200
    third = client.post("/sandbox/v1/send", data, content_type="application/json", **good)
    assert third.status_code == 429
    assert third["Retry-After"] == "1"


def test_bad_settings_are_reported(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.SENDFLARE_SANDBOX = {"RATE_LIMT": 1}
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMT"):
        get_default_sandbox()


@pytest.mark.parametrize("kind", ["reset", "lost_response"])
def test_connection_faults_degrade_to_502(client: Client, kind: str) -> None:
    get_default_sandbox().queue_faults([kind])
    response = post(client, "/sandbox/v1/send", MESSAGE)
    assert response.status_code == 502
    assert response["X-Sandbox-Fault"] == kind
    recorded = len(get_default_sandbox().messages())
    assert recorded == (1 if kind == "lost_response" else 0)


def test_inspection_through_the_test_client(client: Client) -> None:
    post(client, "/sandbox/v1/send", {**MESSAGE, "body": "<script>alert(1)</script>"})
    inbox = client.get("/sandbox/_sandbox/")
    assert inbox.status_code == 200
    html = inbox.content.decode()
    assert "/sandbox/_sandbox/messages/" in html  # links follow the mount point
    assert "<script>alert" not in html
    message_id = get_default_sandbox().messages()[0]["id"]
    page = client.get(f"/sandbox/_sandbox/messages/{message_id}").content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    api = client.get("/sandbox/_sandbox/api/messages").json()
    assert api["count"] == 1
    put = client.put(
        "/sandbox/_sandbox/api/faults",
        data=json.dumps({"queue": ["html"]}),
        content_type="application/json",
    )
    assert put.status_code == 200  # csrf-exempt
    assert post(client, "/sandbox/v1/send", MESSAGE).status_code == 502
    reset = client.post("/sandbox/_sandbox/api/reset", HTTP_X_SENDFLARE_SANDBOX="1")
    assert reset.json() == {"reset": True}
    assert client.get("/sandbox/_sandbox/api/messages").json()["count"] == 0


def test_live_server_fixture(sendflare_live_sandbox: SandboxHandle) -> None:
    assert sendflare_live_sandbox.url.endswith("/sandbox")
    response = requests.post(
        f"{sendflare_live_sandbox.url}/v1/send",
        json=MESSAGE,
        headers={"Authorization": f"Bearer {sendflare_live_sandbox.token}"},
        timeout=5,
    )
    assert_envelope(response.json(), 0)
    assert [m["subject"] for m in sendflare_live_sandbox.messages()] == ["Hi"]
    assert requests.get(sendflare_live_sandbox.inbox_url, timeout=5).status_code == 200
