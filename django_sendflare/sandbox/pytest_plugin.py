"""pytest fixtures that run the sandbox for a test (registered as the ``sendflare_sandbox`` plugin).

* ``sendflare_sandbox``: the standalone server on a free loopback port, fresh for each test and
  stopped after it; returns a :class:`~django_sendflare.sandbox.handle.SandboxHandle` (importable
  from here too).
* ``sendflare_sandbox_settings``: the same, with ``settings.SENDFLARE`` pointed at it (API_URL and
  API_TOKEN), so the real backend sends into the sandbox. Needs pytest-django.
* ``sendflare_live_sandbox``: the mounted views behind pytest-django's ``live_server`` (the URLconf
  must include ``django_sendflare.sandbox.urls``). Connection faults degrade to HTTP 502 there.
* ``sendflare_sandbox_config``: the :class:`SandboxConfig` used; override it in a conftest, or set
  fields per test with ``@pytest.mark.sendflare_sandbox(rate_limit=5, daily_quota=3, ...)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from django_sendflare.sandbox.engine import SandboxConfig
from django_sendflare.sandbox.faults import FaultSettings
from django_sendflare.sandbox.handle import SandboxHandle
from django_sendflare.sandbox.server import start_in_thread

__all__ = ["DEFAULT_TOKEN", "SandboxHandle"]

#: The token the fixtures require unless told otherwise (tests check that a token is sent).
DEFAULT_TOKEN = "sandbox-test-token"  # noqa: S105 - a fixed, public test value
MARKER = "sendflare_sandbox"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (so --strict-markers accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): SandboxConfig fields for the sendflare_sandbox fixtures "
        "(token, rate_limit, max_message_size, allowed_senders, daily_quota, "
        "errors_as_http_200, faults)",
    )


def _config_for(request: pytest.FixtureRequest) -> SandboxConfig:
    options: dict[str, Any] = {"token": DEFAULT_TOKEN, "rate_limit": 0}
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        options.update(marker.kwargs)
    faults = options.get("faults")
    if isinstance(faults, Mapping):
        options["faults"] = FaultSettings.from_dict(dict(faults))
    return SandboxConfig(**options)


@pytest.fixture
def sendflare_sandbox_config(request: pytest.FixtureRequest) -> SandboxConfig:
    """The configuration of the ``sendflare_sandbox`` fixture.

    Defaults for tests: token ``DEFAULT_TOKEN`` required, rate limit off (turn it on with
    ``@pytest.mark.sendflare_sandbox(rate_limit=5)``), no faults.
    """
    return _config_for(request)


@pytest.fixture
def sendflare_sandbox(sendflare_sandbox_config: SandboxConfig) -> Iterator[SandboxHandle]:
    """A fresh standalone sandbox on a free loopback port, for one test."""
    running = start_in_thread(sendflare_sandbox_config)
    token = sendflare_sandbox_config.token or DEFAULT_TOKEN
    try:
        yield SandboxHandle(running.url, token, running.sandbox)
    finally:
        running.stop()


@pytest.fixture
def sendflare_sandbox_settings(
    sendflare_sandbox: SandboxHandle, request: pytest.FixtureRequest
) -> SandboxHandle:
    """``sendflare_sandbox``, with ``settings.SENDFLARE`` pointing at it (needs pytest-django)."""
    settings = request.getfixturevalue("settings")
    settings.SENDFLARE = sendflare_sandbox.django_settings(getattr(settings, "SENDFLARE", None))
    return sendflare_sandbox


@pytest.fixture
def sendflare_live_sandbox(
    live_server: Any, request: pytest.FixtureRequest
) -> Iterator[SandboxHandle]:
    """The mounted sandbox behind pytest-django's ``live_server``, fresh for one test.

    Its configuration comes from the ``SENDFLARE_SANDBOX`` setting, with ``SERVE_WITHOUT_DEBUG``
    on for the test (pytest-django runs tests with DEBUG off, and the mounted views answer only
    with DEBUG on otherwise). The handle's ``url`` is the mount point
    (``live_server.url + "/sandbox"`` for ``path("sandbox/", include(...))``).
    """
    from django.urls import NoReverseMatch, reverse

    from django_sendflare.sandbox.mounted import (
        SERVE_WITHOUT_DEBUG,
        SETTING_NAME,
        get_default_sandbox,
        reset_default_sandbox,
    )

    settings = request.getfixturevalue("settings")
    configured = getattr(settings, SETTING_NAME, None) or {}
    setattr(settings, SETTING_NAME, {**configured, SERVE_WITHOUT_DEBUG: True})

    try:
        send_path = reverse("sendflare_sandbox:send")
    except NoReverseMatch:
        pytest.fail(
            "sendflare_live_sandbox needs the URLconf to include django_sendflare.sandbox.urls",
            pytrace=False,
        )
    reset_default_sandbox()
    sandbox = get_default_sandbox()
    url = live_server.url + send_path[: -len("/v1/send")]
    try:
        yield SandboxHandle(url, sandbox.config.token or DEFAULT_TOKEN, sandbox)
    finally:
        reset_default_sandbox()
