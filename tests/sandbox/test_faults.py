"""Fault injection: each kind, over real HTTP to the standalone server, and seeded replay."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from django_sendflare.sandbox.engine import Sandbox, SandboxConfig, SandboxRequest
from django_sendflare.sandbox.faults import FAULT_KINDS, FaultPlan, FaultSettings
from django_sendflare.sandbox.server import RunningSandbox
from tests.sandbox.conftest import assert_envelope

MESSAGE = {"from": "from@example.com", "to": "to@example.com", "subject": "Hi", "body": "Hello"}


@pytest.fixture
def server(make_server: Callable[..., RunningSandbox]) -> RunningSandbox:
    return make_server()


def send(http: requests.Session, server: RunningSandbox) -> requests.Response:
    return http.post(f"{server.url}/v1/send", json=MESSAGE, timeout=5)


def test_reset_drops_the_connection_and_processes_nothing(
    http: requests.Session, server: RunningSandbox
) -> None:
    server.sandbox.queue_faults(["reset"])
    with pytest.raises(requests.ConnectionError):
        send(http, server)
    assert server.sandbox.messages() == []
    [entry] = server.sandbox.requests()
    assert (entry["fault"], entry["status"]) == ("reset", None)
    # The next request (a new connection) is served normally.
    assert send(http, server).json()["code"] == 0


def test_lost_response_records_then_drops(http: requests.Session, server: RunningSandbox) -> None:
    server.sandbox.queue_faults(["lost_response"])
    with pytest.raises(requests.ConnectionError):
        send(http, server)
    [message] = server.sandbox.messages()
    assert message["subject"] == "Hi"
    # A client that retries here has sent the message twice: the sandbox shows it.
    send(http, server)
    assert len(server.sandbox.messages()) == 2
    assert [r["fault"] for r in server.sandbox.requests()] == ["lost_response", None]


def test_lost_response_of_a_contact_save(http: requests.Session, server: RunningSandbox) -> None:
    server.sandbox.queue_faults(["lost_response"])
    payload = {"appId": "a", "emailAddress": "x@example.com", "status": "Confirmed"}
    with pytest.raises(requests.ConnectionError):
        http.post(f"{server.url}/v1/contact", json=payload, timeout=5)
    assert [c["emailAddress"] for c in server.sandbox.contacts("a")] == ["x@example.com"]


def test_injected_429(http: requests.Session, server: RunningSandbox) -> None:
    server.sandbox.queue_faults(["429"])
    response = send(http, server)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-Sandbox-Fault"] == "429"
    assert_envelope(response.json(), 100025)
    assert server.sandbox.messages() == []


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_injected_5xx(http: requests.Session, server: RunningSandbox, kind: str) -> None:
    server.sandbox.queue_faults([kind])
    response = send(http, server)
    assert response.status_code == int(kind)
    assert "requestId" not in response.json()  # not the envelope: a failure in front of the API
    assert ("Retry-After" in response.headers) is (kind == "503")
    assert server.sandbox.messages() == []


def test_injected_html_page(http: requests.Session, server: RunningSandbox) -> None:
    server.sandbox.queue_faults(["html"])
    response = send(http, server)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError):
        response.json()
    assert server.sandbox.messages() == []


def test_latency_fault_and_fixed_latency(http: requests.Session, server: RunningSandbox) -> None:
    server.sandbox.set_faults(FaultSettings(latency=0.05, slow=0.2, queue=["latency"]))
    started = time.monotonic()
    assert send(http, server).json()["code"] == 0  # slow, but processed
    slow = time.monotonic() - started
    started = time.monotonic()
    send(http, server)
    fixed = time.monotonic() - started
    assert slow >= 0.25
    assert 0.05 <= fixed < 0.25  # the fixed latency only: the latency fault was used up
    assert len(server.sandbox.messages()) == 2


def test_client_timeout_on_a_slow_response_still_records(
    http: requests.Session, server: RunningSandbox
) -> None:
    server.sandbox.set_faults(FaultSettings(slow=0.5, queue=["latency"]))
    with pytest.raises(requests.Timeout):
        http.post(f"{server.url}/v1/send", json=MESSAGE, timeout=0.1)
    assert len(server.sandbox.messages()) == 1


def test_jitter_is_bounded_and_seeded() -> None:
    first = FaultPlan(FaultSettings(seed=3, latency=0.1, jitter=0.5))
    second = FaultPlan(FaultSettings(seed=3, latency=0.1, jitter=0.5))
    delays = [first.next().delay for _ in range(50)]
    assert delays == [second.next().delay for _ in range(50)]
    assert all(0.1 <= d <= 0.6 for d in delays)
    assert len(set(delays)) > 40


def test_ok_in_the_queue_and_queue_before_rates() -> None:
    plan = FaultPlan(FaultSettings(seed=1, rates={"500": 1.0}, queue=["ok", "reset"]))
    assert [plan.next().kind for _ in range(3)] == [None, "reset", "500"]


def _fault_sequence(seed: int) -> list[str | None]:
    sandbox = Sandbox(
        SandboxConfig(
            rate_limit=0, faults=FaultSettings(seed=seed, rates={"500": 0.3, "reset": 0.2})
        )
    )
    request = SandboxRequest(
        method="GET", path="/v1/contact", query="appId=a", headers={"Authorization": "Bearer t"}
    )
    return [sandbox.handle(request).fault for _ in range(60)]


def test_same_seed_same_faults() -> None:
    first = _fault_sequence(42)
    assert first == _fault_sequence(42)
    assert first != _fault_sequence(43)
    assert {"500", "reset", None} == set(first)


def test_rates_are_roughly_honoured() -> None:
    plan = FaultPlan(FaultSettings(seed=7, rates={"503": 0.25}))
    hits = sum(plan.next().kind == "503" for _ in range(2000))
    assert 400 < hits < 600


def test_reset_replays_the_seeded_sequence() -> None:
    sandbox = Sandbox(SandboxConfig(faults=FaultSettings(rates={"500": 0.5})))
    request = SandboxRequest(method="POST", path="/v1/send")
    first = [sandbox.handle(request).fault for _ in range(20)]
    sandbox.reset()
    assert [sandbox.handle(request).fault for _ in range(20)] == first


@pytest.mark.parametrize(
    "settings",
    [
        {"rates": {"teapot": 0.1}},
        {"rates": {"500": 0.7, "reset": 0.5}},
        {"rates": {"500": -1}},
        {"queue": ["nope"]},
        {"latency": "fast"},
        {"seed": "x"},
        {"unknown": 1},
    ],
)
def test_invalid_fault_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultSettings.from_dict(settings)


def test_every_kind_is_accepted() -> None:
    assert FaultSettings(queue=[*FAULT_KINDS, "ok", 429]).queue[-1] == "429"


def test_faults_at_run_time_through_the_json_api(
    http: requests.Session, server: RunningSandbox
) -> None:
    api = f"{server.url}/_sandbox/api/faults"
    put = requests.put(api, json={"seed": 5, "queue": ["503", "ok"]}, timeout=5)
    assert put.status_code == 200
    assert put.json()["queue"] == ["503", "ok"]
    assert send(http, server).status_code == 503
    assert requests.get(api, timeout=5).json()["queue"] == ["ok"]
    appended = requests.post(f"{api}/queue", json={"faults": ["502"]}, timeout=5)
    assert appended.json()["queue"] == ["ok", "502"]
    assert [send(http, server).status_code for _ in range(3)] == [200, 502, 200]
    bad = requests.put(api, json={"queue": ["teapot"]}, timeout=5)
    assert bad.status_code == 400
    requests.put(api, json={"rates": {"500": 1.0}}, timeout=5)
    assert send(http, server).status_code == 500
    cleared = requests.delete(api, timeout=5).json()
    assert cleared["rates"] == {} and cleared["queue"] == []
    assert send(http, server).status_code == 200


def test_faults_never_touch_the_inspection_endpoints(server: RunningSandbox) -> None:
    server.sandbox.set_faults(FaultSettings(rates={"reset": 1.0}))
    for _ in range(3):
        assert requests.get(f"{server.url}/_sandbox/api/messages", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/_sandbox/", timeout=5).status_code == 200
    assert server.sandbox.requests() == []


def test_faults_at_start(
    make_server: Callable[..., RunningSandbox], http: requests.Session
) -> None:
    server = make_server(faults=FaultSettings(queue=["503"]))
    assert send(http, server).status_code == 503
    assert send(http, server).status_code == 200
