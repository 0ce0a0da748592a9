"""The sandbox stays a development tool (issue 9, observation 6).

Mounted, it answers only with DEBUG on (or SENDFLARE_SANDBOX["SERVE_WITHOUT_DEBUG"]);
``check --deploy`` warns when it is installed or mounted with DEBUG off; state-changing
inspection requests must be same-origin, in both front ends; the standalone server serves
loopback Host names only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from django_sendflare.sandbox.checks import (
    check_sandbox_exposure,
    check_sandbox_setting,
    mounted_at,
)
from django_sendflare.sandbox.mounted import get_default_sandbox, reset_default_sandbox
from django_sendflare.sandbox.pytest_plugin import SandboxHandle
from django_sendflare.sandbox.server import RunningSandbox

MESSAGE = {"from": "from@example.com", "to": "to@example.com", "subject": "Hi", "body": "x"}
AUTH = {"HTTP_AUTHORIZATION": "Bearer any-token"}
EXAMPLE = Path(__file__).resolve().parents[2] / "example_project"


@pytest.fixture(autouse=True)
def fresh_default_sandbox() -> Iterator[None]:
    reset_default_sandbox()
    yield
    reset_default_sandbox()


def send(client: Client) -> int:
    response = client.post(
        "/sandbox/v1/send", json.dumps(MESSAGE), content_type="application/json", **AUTH
    )
    return response.status_code


# Mounted: DEBUG --------------------------------------------------------------------------------


def test_with_debug_off_the_mounted_sandbox_answers_404_and_keeps_nothing(
    client: Client, settings: Any
) -> None:
    settings.DEBUG = False
    assert send(client) == 404
    assert client.get("/sandbox/_sandbox/").status_code == 404
    assert client.get("/sandbox/_sandbox/api/messages").status_code == 404
    reset = client.post("/sandbox/_sandbox/api/reset", HTTP_X_SENDFLARE_SANDBOX="1")
    assert reset.status_code == 404
    assert get_default_sandbox().messages() == []


def test_with_debug_on_it_answers(client: Client, settings: Any) -> None:
    settings.DEBUG = True
    assert send(client) == 200
    assert client.get("/sandbox/_sandbox/").status_code == 200


def test_serve_without_debug_lets_it_answer(client: Client, settings: Any) -> None:
    settings.DEBUG = False
    settings.SENDFLARE_SANDBOX = {"SERVE_WITHOUT_DEBUG": True}
    assert send(client) == 200
    assert client.get("/sandbox/_sandbox/api/messages").json()["count"] == 1


def test_only_an_explicit_true_counts(client: Client, settings: Any) -> None:
    settings.DEBUG = False
    settings.SENDFLARE_SANDBOX = {"SERVE_WITHOUT_DEBUG": "yes"}
    assert send(client) == 404
    settings.DEBUG = True
    with pytest.raises(ImproperlyConfigured, match="SERVE_WITHOUT_DEBUG"):
        get_default_sandbox()


def test_the_live_sandbox_fixture_works_with_pytest_djangos_debug_off(
    sendflare_live_sandbox: SandboxHandle,
) -> None:
    from django.conf import settings

    assert settings.DEBUG is False
    response = requests.post(
        f"{sendflare_live_sandbox.url}/v1/send",
        json=MESSAGE,
        headers={"Authorization": f"Bearer {sendflare_live_sandbox.token}"},
        timeout=5,
    )
    assert response.status_code == 200
    assert [m["subject"] for m in sendflare_live_sandbox.messages()] == ["Hi"]


# Mounted: same-origin state changes -------------------------------------------------------------

RESET = "/sandbox/_sandbox/api/reset"


@pytest.fixture
def debug_client(client: Client, settings: Any) -> Client:
    settings.DEBUG = True
    assert send(client) == 200  # one message, so that a reset shows
    return client


def messages_left() -> int:
    return len(get_default_sandbox().messages())


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", '{"x": 1}'),  # fetch(url, {method: "POST", mode: "no-cors", body})
        ("application/x-www-form-urlencoded", "x=1"),  # <form method=post>
        ("multipart/form-data; boundary=B", "--B--"),  # <form enctype=multipart/form-data>
    ],
)
def test_a_post_a_cross_site_page_could_send_is_refused(
    debug_client: Client, content_type: str, data: str
) -> None:
    response = debug_client.post(RESET, data, content_type=content_type)
    assert response.status_code == 403
    assert "X-Sendflare-Sandbox" in response.json()["error"]
    assert messages_left() == 1


def test_the_custom_header_or_a_json_body_makes_a_post_same_origin(debug_client: Client) -> None:
    queue = "/sandbox/_sandbox/api/faults/queue"
    as_json = debug_client.post(queue, '{"faults": ["503"]}', content_type="application/json")
    assert as_json.status_code == 200
    assert debug_client.post(RESET, HTTP_X_SENDFLARE_SANDBOX="1").status_code == 200
    assert messages_left() == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ORIGIN": "http://evil.example"},
        {"HTTP_ORIGIN": "null"},  # a sandboxed iframe, a data: URL
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_SEC_FETCH_SITE": "same-site"},  # a sibling subdomain
    ],
)
def test_a_request_from_another_site_is_refused_whatever_it_carries(
    debug_client: Client, headers: dict[str, str]
) -> None:
    response = debug_client.post(RESET, HTTP_X_SENDFLARE_SANDBOX="1", **headers)
    assert response.status_code == 403
    deleted = debug_client.delete("/sandbox/_sandbox/api/messages", **headers)
    assert deleted.status_code == 403
    assert messages_left() == 1


def test_a_same_origin_browser_request_is_served(debug_client: Client) -> None:
    response = debug_client.post(
        RESET,
        HTTP_X_SENDFLARE_SANDBOX="1",
        HTTP_ORIGIN="http://testserver",
        HTTP_SEC_FETCH_SITE="same-origin",
    )
    assert response.status_code == 200


def test_reading_and_methods_a_page_cannot_send_cross_site_need_no_header(
    debug_client: Client,
) -> None:
    assert debug_client.get("/sandbox/_sandbox/api/messages").json()["count"] == 1
    assert debug_client.delete("/sandbox/_sandbox/api/messages").json() == {"deleted": 1}


# Standalone: Host names and same-origin ----------------------------------------------------------


@pytest.fixture
def server(make_server: Callable[..., RunningSandbox]) -> RunningSandbox:
    return make_server(token=None)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8025", "10.0.0.5", "[::"])
def test_standalone_refuses_other_host_names(server: RunningSandbox, host: str) -> None:
    for path in ("/_sandbox/api/messages", "/_sandbox/", "/v1/contact?appId=a"):
        response = requests.get(f"{server.url}{path}", headers={"Host": host}, timeout=5)
        assert response.status_code == 403, path
        assert "--allow-remote" in response.json()["error"]
    sent = requests.post(
        f"{server.url}/v1/send",
        json=MESSAGE,
        headers={"Host": host, "Authorization": "Bearer x"},
        timeout=5,
    )
    assert sent.status_code == 403
    assert server.sandbox.messages() == []


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "LOCALHOST:1", "[::1]:8025", "a.localhost"]
)
def test_standalone_serves_loopback_host_names(server: RunningSandbox, host: str) -> None:
    response = requests.get(f"{server.url}/_sandbox/api/", headers={"Host": host}, timeout=5)
    assert response.status_code == 200


def test_allow_remote_serves_any_host_name() -> None:
    from django_sendflare.sandbox.server import make_server

    httpd = make_server(allow_remote=True)
    running = RunningSandbox(httpd, _serve(httpd))
    try:
        response = requests.get(
            f"{running.url}/_sandbox/api/", headers={"Host": "sandbox.staging.example"}, timeout=5
        )
        assert response.status_code == 200
    finally:
        running.stop()


def _serve(httpd: Any) -> Any:
    import threading

    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02})
    thread.daemon = True
    thread.start()
    return thread


def test_standalone_refuses_a_cross_site_text_plain_post(server: RunningSandbox) -> None:
    server.sandbox.queue_faults(["503"])
    reset = f"{server.url}/_sandbox/api/reset"
    plain = requests.post(reset, data="{}", headers={"Content-Type": "text/plain"}, timeout=5)
    assert plain.status_code == 403
    other_site = requests.post(
        reset, headers={"X-Sendflare-Sandbox": "1", "Origin": "http://evil.example"}, timeout=5
    )
    assert other_site.status_code == 403
    assert server.sandbox.faults()["queue"] == ["503"]
    assert requests.post(reset, headers={"X-Sendflare-Sandbox": "1"}, timeout=5).status_code == 200
    assert server.sandbox.faults()["queue"] == []


def test_a_cross_site_text_plain_post_to_the_api_sends_nothing(server: RunningSandbox) -> None:
    """A page cannot set Authorization without a preflight: the API refuses it (401)."""
    response = requests.post(
        f"{server.url}/v1/send",
        data=json.dumps(MESSAGE),
        headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
        timeout=5,
    )
    assert response.status_code == 401
    assert server.sandbox.messages() == []


# check --deploy --------------------------------------------------------------------------------


def deploy_ids() -> list[str]:
    return [message.id for message in check_sandbox_exposure()]


def test_check_warns_when_installed_and_mounted_with_debug_off(settings: Any) -> None:
    settings.DEBUG = False
    [warning] = check_sandbox_exposure()
    assert warning.id == "sendflare.W010"
    assert "installed" in warning.msg and "mounted at /sandbox/" in warning.msg


def test_check_is_silent_with_debug_on(settings: Any) -> None:
    settings.DEBUG = True
    assert deploy_ids() == []


def test_check_warns_louder_when_served_without_debug(settings: Any) -> None:
    settings.DEBUG = False
    settings.SENDFLARE_SANDBOX = {"SERVE_WITHOUT_DEBUG": True}
    [warning] = check_sandbox_exposure()
    assert warning.id == "sendflare.W011"
    assert "anyone" in warning.msg


def test_check_finds_the_sandbox_wherever_it_is_mounted(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.sandbox.urlconfs.nested"
    assert mounted_at() == ["/dev/sandbox/", "/inbox/"]
    settings.ROOT_URLCONF = "tests.sandbox.urlconfs.without_sandbox"
    assert mounted_at() == []


def test_check_runs_only_with_deploy(settings: Any) -> None:
    from django.core import checks

    settings.DEBUG = False
    plain = [m.id for m in checks.run_checks()]
    deploy = [m.id for m in checks.run_checks(include_deployment_checks=True)]
    assert "sendflare.W010" not in plain
    assert "sendflare.W010" in deploy


def example_check_deploy(**env: str) -> str:
    """``manage.py check --deploy`` of the example project, with DEBUG off."""
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SENDFLARE_", "DJANGO_"))}
    clean.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=EXAMPLE,
        env={**clean, "DEBUG": "False", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout + result.stderr


def test_the_example_project_mounts_the_sandbox_only_when_it_uses_it() -> None:
    assert "sendflare.W010" in example_check_deploy()
    assert "sendflare.W010" not in example_check_deploy(SENDFLARE_API_TOKEN="real-token")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ({}, []),
        ({"SERVE_WITHOUT_DEBUG": True, "TOKEN": "t"}, []),
        ({"SERVE_WITHOUT_DEBUG": "yes"}, ["sendflare.E010"]),
        ({"RATE_LIMT": 1}, ["sendflare.E010"]),
        ({"RATE_LIMIT": -1}, ["sendflare.E010"]),
        (["TOKEN"], ["sendflare.E010"]),
    ],
)
def test_a_bad_sandbox_setting_is_reported_by_check(
    settings: Any, value: Any, expected: list
) -> None:
    settings.SENDFLARE_SANDBOX = value
    assert [m.id for m in check_sandbox_setting()] == expected
