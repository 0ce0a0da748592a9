"""Account-state faults: the codes no single request can provoke (100029/100030/100031/100047/
100049), injected, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from django_sendflare.sandbox.faults import ACCOUNT_STATES, FaultSettings
from django_sendflare.sandbox.server import RunningSandbox
from tests.sandbox.conftest import assert_envelope

MESSAGE = {"from": "from@example.com", "to": "to@example.com", "subject": "Hi", "body": "Hello"}
CONTACT = {"appId": "a", "emailAddress": "x@example.com", "status": "Confirmed"}


@pytest.fixture
def server(make_server: Callable[..., RunningSandbox]) -> RunningSandbox:
    return make_server()


@pytest.mark.parametrize(
    ("state", "code", "status", "contacts_refused"),
    [
        ("invalid_signature", 100029, 401, True),
        ("daily_limit_reached", 100031, 403, False),
        ("subscription_expired", 100047, 403, True),
        ("not_activated", 100049, 403, True),
    ],
)
def test_an_account_state_refuses_every_request_with_its_code(
    http: requests.Session,
    server: RunningSandbox,
    state: str,
    code: int,
    status: int,
    contacts_refused: bool,
) -> None:
    server.sandbox.set_faults(FaultSettings(account=state))
    for _ in range(2):
        response = http.post(f"{server.url}/v1/send", json=MESSAGE, timeout=5)
        assert response.status_code == status
        assert_envelope(response.json(), code)
    contact = http.post(f"{server.url}/v1/contact", json=CONTACT, timeout=5).json()
    assert contact["code"] == (code if contacts_refused else 0)
    assert server.sandbox.messages() == []
    # Back to active: the next send goes through.
    server.sandbox.clear_faults()
    assert http.post(f"{server.url}/v1/send", json=MESSAGE, timeout=5).json()["code"] == 0


def test_an_invalid_sending_domain_refuses_only_its_senders(
    http: requests.Session, server: RunningSandbox
) -> None:
    server.sandbox.set_faults(FaultSettings(invalid_sending_domains=["Refused.Example"]))
    refused = http.post(
        f"{server.url}/v1/send", json={**MESSAGE, "from": "a@refused.example"}, timeout=5
    )
    assert refused.status_code == 403
    assert_envelope(refused.json(), 100030)
    assert "refused.example" in refused.json()["message"]
    assert http.post(f"{server.url}/v1/send", json=MESSAGE, timeout=5).json()["code"] == 0
    assert [m["from"] for m in server.sandbox.messages()] == ["from@example.com"]


def test_the_account_settings_round_trip_and_are_validated() -> None:
    settings = FaultSettings.from_dict(
        {"account": "not_activated", "invalid_sending_domains": ["x.example"]}
    )
    assert settings.to_dict()["account"] == "not_activated"
    assert FaultSettings.from_dict(settings.to_dict()) == settings
    assert "active" in ACCOUNT_STATES
    with pytest.raises(ValueError, match="unknown account state 'closed'"):
        FaultSettings(account="closed")
    with pytest.raises(ValueError, match="invalid_sending_domains"):
        FaultSettings.from_dict({"invalid_sending_domains": "x.example"})
