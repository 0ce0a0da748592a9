"""What a test holds of a running sandbox: where it is, and what it saw.

The pytest fixtures return one (:mod:`.pytest_plugin`); it needs no pytest, so a ``TestCase``
can wrap a server it started itself, and the documentation builds without the test extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django_sendflare.sandbox.engine import Sandbox
from django_sendflare.sandbox.faults import FaultSettings


class SandboxHandle:
    """What a test gets: where the sandbox is, and what it saw."""

    def __init__(self, url: str, token: str, sandbox: Sandbox) -> None:
        """Wrap a running sandbox reachable at ``url``."""
        #: The base URL to use as API_URL (no trailing slash).
        self.url = url
        #: A token the sandbox accepts.
        self.token = token
        #: The engine itself, for anything the handle does not cover.
        self.sandbox = sandbox

    @property
    def inbox_url(self) -> str:
        """The URL of the HTML inbox."""
        return f"{self.url}/_sandbox/"

    def messages(self) -> list[dict[str, Any]]:
        """Every accepted message (from, to, subject, body, requestId, ts...), oldest first."""
        return self.sandbox.messages()

    def contacts(self, app_id: str) -> list[dict[str, Any]]:
        """The contacts of one appId, as the list endpoint returns them."""
        return self.sandbox.contacts(app_id)

    def contact_records(self, app_id: str) -> list[dict[str, Any]]:
        """:meth:`contacts`, each with ``statusDefaulted``: created without a status."""
        return self.sandbox.contact_records(app_id)

    def unsubscribe(self, app_id: str, email: str) -> bool:
        """Unsubscribe a contact "at Sendflare" (its recipient clicked); False if absent."""
        return self.sandbox.unsubscribe(app_id, email)

    def remove_contact(self, app_id: str, email: str) -> bool:
        """Delete a contact "at Sendflare" (from its dashboard, not the API); False if absent."""
        return self.sandbox.remove_contact(app_id, email)

    def requests(self) -> list[dict[str, Any]]:
        """Every API request received (method, path, status, code, fault), oldest first."""
        return self.sandbox.requests()

    def set_faults(
        self,
        *,
        queue: list[str] | tuple[str, ...] = (),
        rates: Mapping[str, float] | None = None,
        seed: int | None = None,
        latency: float = 0.0,
        jitter: float = 0.0,
        slow: float = 2.0,
        account: str = "active",
        invalid_sending_domains: list[str] | tuple[str, ...] = (),
    ) -> None:
        """Replace the faults: a queue for the next requests and/or probabilities per kind,
        an account state (``"subscription_expired"``, ``"not_activated"``...) and sender
        domains that ``/v1/send`` refuses with 100030."""
        self.sandbox.set_faults(
            FaultSettings(
                seed=seed,
                latency=latency,
                jitter=jitter,
                slow=slow,
                rates=dict(rates or {}),
                queue=list(queue),
                account=account,
                invalid_sending_domains=list(invalid_sending_domains),
            )
        )

    def queue_faults(self, *kinds: str) -> None:
        """Give the next API requests these faults, in order (``"ok"``: none)."""
        self.sandbox.queue_faults(list(kinds))

    def clear_faults(self) -> None:
        """No faults from now on."""
        self.sandbox.clear_faults()

    def reset(self) -> None:
        """Forget messages, contacts, the log, quotas and rate windows; restore start faults."""
        self.sandbox.reset()

    def django_settings(self, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return ``base`` (a SENDFLARE dict) pointed at this sandbox."""
        return {**(base or {}), "API_URL": self.url, "API_TOKEN": self.token}
