"""The documented rate limit: a sliding 1 s window per token, across all endpoints."""

from __future__ import annotations

from collections.abc import Callable

import requests

from django_sendflare.sandbox.engine import Sandbox, SandboxConfig, SandboxRequest
from django_sendflare.sandbox.ratelimit import SlidingWindowLimiter
from django_sendflare.sandbox.server import RunningSandbox
from tests.sandbox.conftest import assert_envelope

MESSAGE = {"from": "from@example.com", "to": "to@example.com", "subject": "Hi", "body": "Hello"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_is_half_open_and_refusals_do_not_count() -> None:
    limiter = SlidingWindowLimiter(2)
    assert limiter.acquire("t", 10.0) == 0
    assert limiter.acquire("t", 10.4) == 0
    assert limiter.acquire("t", 10.9) == 1  # refused, and not counted
    assert limiter.acquire("other", 10.9) == 0  # per token
    assert limiter.acquire("t", 11.0) == 0  # 10.0 left the window at exactly 11.0
    assert limiter.acquire("t", 11.3) == 1
    assert limiter.acquire("t", 11.4) == 0  # 10.4 left; the refusal at 11.3 did not count


def test_zero_rate_is_off() -> None:
    limiter = SlidingWindowLimiter(0)
    assert all(limiter.acquire("t", 1.0) == 0 for _ in range(100))


def _send(sandbox: Sandbox) -> int:
    request = SandboxRequest(
        method="POST",
        path="/v1/send",
        headers={"Authorization": "Bearer t"},
        body=b'{"from":"a@example.com","to":"b@example.com","subject":"s","body":"b"}',
    )
    return sandbox.handle(request).status


def test_engine_limits_all_endpoints_together_with_an_injected_clock() -> None:
    clock = FakeClock()
    sandbox = Sandbox(SandboxConfig(rate_limit=5), clock=clock)
    listing = SandboxRequest(
        method="GET", path="/v1/contact", query="appId=a", headers={"Authorization": "Bearer t"}
    )
    assert [sandbox.handle(listing).status for _ in range(3)] == [200] * 3
    assert [_send(sandbox) for _ in range(3)] == [200, 200, 429]
    clock.now += 0.999
    assert _send(sandbox) == 429
    clock.now += 0.001
    assert _send(sandbox) == 200
    assert len(sandbox.messages()) == 3


def test_http_429_with_retry_after(make_server: Callable[..., RunningSandbox]) -> None:
    server = make_server(rate_limit=2)
    with requests.Session() as http:
        http.headers["Authorization"] = "Bearer t0ken-for-tests"
        statuses = [
            http.post(f"{server.url}/v1/send", json=MESSAGE, timeout=5).status_code
            for _ in range(2)
        ]
        refused = http.get(f"{server.url}/v1/contact", params={"appId": "a"}, timeout=5)
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert_envelope(refused.json(), 100025)
    assert len(server.sandbox.messages()) == 2
    assert [r["status"] for r in server.sandbox.requests()] == [200, 200, 429]


def test_rate_limit_off(make_server: Callable[..., RunningSandbox]) -> None:
    server = make_server(rate_limit=0)
    headers = {"Authorization": "Bearer t0ken-for-tests"}
    with requests.Session() as http:
        codes = [
            http.post(f"{server.url}/v1/send", json=MESSAGE, headers=headers, timeout=5).status_code
            for _ in range(12)
        ]
    assert codes == [200] * 12
