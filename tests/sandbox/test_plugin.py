"""The pytest fixtures our users get."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from django_sendflare.sandbox.pytest_plugin import DEFAULT_TOKEN, SandboxHandle

MESSAGE = {"from": "a@example.com", "to": "b@example.com", "subject": "s", "body": "b"}


def test_fixture_defaults(sendflare_sandbox: SandboxHandle) -> None:
    assert sendflare_sandbox.url.startswith("http://127.0.0.1:")
    assert sendflare_sandbox.token == DEFAULT_TOKEN
    headers = {"Authorization": f"Bearer {sendflare_sandbox.token}"}
    with requests.Session() as http:
        codes = [
            http.post(
                f"{sendflare_sandbox.url}/v1/send", json=MESSAGE, headers=headers, timeout=5
            ).json()["code"]
            for _ in range(8)
        ]
    assert codes == [0] * 8  # the rate limit is off by default in tests
    assert len(sendflare_sandbox.messages()) == 8
    assert len(sendflare_sandbox.requests()) == 8
    sendflare_sandbox.reset()
    assert sendflare_sandbox.messages() == []


def test_fresh_state_per_test(sendflare_sandbox: SandboxHandle) -> None:
    assert sendflare_sandbox.messages() == []


def test_handle_faults_and_contacts(sendflare_sandbox: SandboxHandle) -> None:
    headers = {"Authorization": f"Bearer {sendflare_sandbox.token}"}
    sendflare_sandbox.queue_faults("reset", "ok")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{sendflare_sandbox.url}/v1/send", json=MESSAGE, headers=headers, timeout=5)
    contact = {"appId": "x", "emailAddress": "c@example.com", "status": "Confirmed"}
    requests.post(f"{sendflare_sandbox.url}/v1/contact", json=contact, headers=headers, timeout=5)
    assert [c["emailAddress"] for c in sendflare_sandbox.contacts("x")] == ["c@example.com"]
    sendflare_sandbox.set_faults(rates={"500": 1.0}, seed=1)
    listing = f"{sendflare_sandbox.url}/v1/contact"
    assert requests.get(listing, headers=headers, timeout=5).status_code == 500
    sendflare_sandbox.clear_faults()
    assert (
        requests.get(listing, params={"appId": "x"}, headers=headers, timeout=5).json()["data"][
            "total"
        ]
        == 1
    )
    assert [r["fault"] for r in sendflare_sandbox.requests()] == ["reset", None, "500", None]


@pytest.mark.sendflare_sandbox(rate_limit=1, token="mine", daily_quota=5)
def test_marker_configures_the_fixture(sendflare_sandbox: SandboxHandle) -> None:
    assert sendflare_sandbox.token == "mine"
    headers = {"Authorization": "Bearer mine"}
    url = f"{sendflare_sandbox.url}/v1/send"
    assert requests.post(url, json=MESSAGE, headers=headers, timeout=5).status_code == 200
    assert requests.post(url, json=MESSAGE, headers=headers, timeout=5).status_code == 429


@pytest.mark.sendflare_sandbox(faults={"queue": ["html"]})
def test_marker_faults(sendflare_sandbox: SandboxHandle) -> None:
    headers = {"Authorization": f"Bearer {sendflare_sandbox.token}"}
    url = f"{sendflare_sandbox.url}/v1/send"
    assert requests.post(url, json=MESSAGE, headers=headers, timeout=5).status_code == 502


def test_settings_fixture_points_django_at_the_sandbox(
    sendflare_sandbox_settings: SandboxHandle, settings: Any
) -> None:
    assert settings.SENDFLARE["API_URL"] == sendflare_sandbox_settings.url
    assert settings.SENDFLARE["API_TOKEN"] == sendflare_sandbox_settings.token
    assert settings.SENDFLARE["APP_ID"] == "test-app"  # the rest is kept
