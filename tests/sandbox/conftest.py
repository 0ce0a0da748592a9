"""Fixtures for the sandbox tests.

The sandbox's own fixtures (``sendflare_sandbox`` ...) come from its pytest plugin, registered by
the package's entry point, exactly as our users get them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from django_sendflare.sandbox.engine import SandboxConfig
from django_sendflare.sandbox.server import RunningSandbox, start_in_thread

TOKEN = "t0ken-for-tests"


@pytest.fixture
def make_server() -> Iterator[Callable[..., RunningSandbox]]:
    """Start standalone servers with the given SandboxConfig fields; all stopped after the test."""
    started: list[RunningSandbox] = []

    def make(**options: Any) -> RunningSandbox:
        options.setdefault("token", TOKEN)
        options.setdefault("rate_limit", 0)
        running = start_in_thread(SandboxConfig(**options))
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A plain requests session carrying the test token (no retries: requests' default)."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def assert_envelope(body: Any, code: int) -> None:
    """Assert the documented envelope, with ``code``."""
    assert set(body) == {"requestId", "code", "success", "message", "ts", "data"}
    assert isinstance(body["requestId"], str) and len(body["requestId"]) == 36
    assert body["code"] == code
    assert body["success"] is (code == 0)
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["ts"], int) and body["ts"] > 1_600_000_000_000
    if code == 0:
        assert body["message"] == "Successfully"
