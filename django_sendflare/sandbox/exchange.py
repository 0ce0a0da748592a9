"""What passes between the engine and its front ends: the configuration, a request, a response.

The engine (:mod:`.engine`) takes a :class:`SandboxRequest` and returns a
:class:`SandboxResponse`; both front ends (the Django views and the standalone server) build
the one and carry out the other. Standard library only: the standalone server runs without
Django.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django_sendflare.sandbox import envelope as env
from django_sendflare.sandbox.faults import FaultSettings

DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024
DEFAULT_RATE_LIMIT = 5


@dataclass
class SandboxConfig:
    """Everything fixed at start; faults can also be changed at run time."""

    #: The only Bearer token accepted; None accepts any non-empty token.
    token: str | None = None
    #: Accepted requests per second per token, all endpoints together; 0 turns the limit off.
    rate_limit: int = DEFAULT_RATE_LIMIT
    #: Largest ``POST /v1/send`` request body, in bytes, before code 100023.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Sender addresses accepted by ``/v1/send`` (case-insensitive); empty accepts any sender.
    allowed_senders: tuple[str, ...] = ()
    #: Accepted sends per token per UTC day before code 100031; 0 turns the quota off.
    daily_quota: int = 0
    #: Answer service errors with HTTP 200 (envelope only) instead of 4xx.
    errors_as_http_200: bool = False
    #: Faults injected from the start (and restored by a reset).
    faults: FaultSettings = field(default_factory=FaultSettings)

    def __post_init__(self) -> None:
        """Validate, raising ValueError with a readable message."""
        if self.token is not None and not self.token.strip():
            raise ValueError("token must be non-empty (or None to accept any token)")
        for name in ("rate_limit", "max_message_size", "daily_quota"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0")
        self.allowed_senders = tuple(self.allowed_senders)

    def describe(self) -> dict[str, Any]:
        """Return a JSON summary (the token itself is not shown)."""
        return {
            "tokenRequired": self.token is not None,
            "rateLimit": self.rate_limit,
            "maxMessageSize": self.max_message_size,
            "allowedSenders": list(self.allowed_senders),
            "dailyQuota": self.daily_quota,
            "errorsAsHttp200": self.errors_as_http_200,
        }


@dataclass(frozen=True)
class SandboxRequest:
    """One HTTP request, as a front end received it (``path`` without any mount prefix)."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        """Return a header value (case-insensitive name), or ``""``."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return ""


@dataclass
class SandboxResponse:
    """What a front end must do: wait ``delay``, then drop the connection or answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    fault: str | None = None
    #: The envelope's code, when the body is an envelope.
    code: int | None = None

    def json(self) -> Any:
        """Decode the body as JSON (for tests and the Django front end)."""
        return json.loads(self.body.decode("utf-8"))


def json_response(
    status: int, value: Any, headers: dict[str, str] | None = None
) -> SandboxResponse:
    """Build a JSON response."""
    return SandboxResponse(
        status=status,
        body=env.to_json_bytes(value),
        headers={
            "Content-Type": "application/json; charset=utf-8",
            # Stored text comes back in these bodies: no browser may take one for a page.
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
    )
