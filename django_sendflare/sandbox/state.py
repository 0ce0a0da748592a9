"""The state of one sandbox, and its thread-safe inspection: what the tests and pages read.

:class:`SandboxState` holds the store, the rate-limit windows and the fault plan behind one
lock; :class:`~django_sendflare.sandbox.engine.Sandbox` adds the configuration and the handling
of API requests. Every method here takes the lock and returns copies (snapshots), never the
live records.
"""

from __future__ import annotations

import copy
import datetime
import threading
from collections.abc import Callable
from typing import Any

from django_sendflare.sandbox.faults import FaultPlan, FaultSettings
from django_sendflare.sandbox.ratelimit import SlidingWindowLimiter
from django_sendflare.sandbox.store import Store


class SandboxState:
    """Messages, contacts, the request log, rate windows and faults of one sandbox."""

    def __init__(
        self, faults: FaultSettings, rate_limit: int, wall_clock: Callable[[], float]
    ) -> None:
        """Start empty, with ``faults`` in force (and restored by :meth:`reset`)."""
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._store = Store()
        self._limiter = SlidingWindowLimiter(rate_limit)
        self._faults = FaultPlan(faults)
        # Keep the seed picked at start (when none was given), so that a reset replays the run.
        self._start_faults = copy.deepcopy(self._faults.settings)
        self._day = ""

    def _today(self) -> str:
        now = datetime.datetime.fromtimestamp(self._wall_clock(), tz=datetime.timezone.utc)
        day = now.date().isoformat()
        # One string per day, shared by every contact saved that day (a million contacts would
        # otherwise hold two million copies of it).
        if day != self._day:
            self._day = day
        return self._day

    # -- inspection (thread-safe snapshots) -------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        """Every accepted message, oldest first."""
        with self._lock:
            return [message.to_dict() for message in self._store.messages]

    def message(self, message_id: str) -> dict[str, Any] | None:
        """One message by its id (the requestId of its send), or None."""
        with self._lock:
            for message in self._store.messages:
                if message.request_id == message_id:
                    return message.to_dict()
        return None

    def contacts(self, app_id: str) -> list[dict[str, Any]]:
        """The contacts of one appId, in creation order, as the list endpoint shows them."""
        with self._lock:
            return [c.to_api() for c in self._store.contacts.get(app_id, ())]

    def contact_records(self, app_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """:meth:`contacts` (the first ``limit`` only, if given), each with ``statusDefaulted``
        (created without a status)."""
        with self._lock:
            book = self._store.contacts.get(app_id)
            if book is None:
                return []
            chosen = book if limit is None else book.page(0, limit)
            return [c.to_inspection() for c in chosen]

    def contact_count(self, app_id: str) -> int:
        """How many contacts one appId has."""
        with self._lock:
            return len(self._store.contacts.get(app_id, ()))

    def app_ids(self) -> list[str]:
        """Every appId that has (or had) contacts."""
        with self._lock:
            return list(self._store.contacts)

    def requests(self) -> list[dict[str, Any]]:
        """The log of API requests, oldest first."""
        with self._lock:
            return [entry.to_dict() for entry in self._store.log]

    def faults(self) -> dict[str, Any]:
        """The fault settings in force, with what is left of the queue."""
        with self._lock:
            return self._faults.to_dict()

    def set_faults(self, settings: FaultSettings) -> None:
        """Replace the fault plan (the generators restart from the seed)."""
        with self._lock:
            self._faults = FaultPlan(copy.deepcopy(settings))

    def queue_faults(self, kinds: list[str]) -> None:
        """Append kinds (or ``"ok"``) to the fault queue."""
        with self._lock:
            self._faults.queue_faults(kinds)

    def clear_faults(self) -> None:
        """No faults and no latency from now on."""
        self.set_faults(FaultSettings(seed=self._faults.seed))

    def clear_messages(self) -> int:
        """Forget every message; return how many there were."""
        with self._lock:
            count = len(self._store.messages)
            self._store.clear_messages()
            return count

    def clear_contacts(self, app_id: str | None = None) -> int:
        """Forget the contacts of one appId (or all); return how many there were."""
        with self._lock:
            if app_id is None:
                count = sum(len(c) for c in self._store.contacts.values())
            else:
                count = len(self._store.contacts.get(app_id, ()))
            self._store.clear_contacts(app_id)
            return count

    def unsubscribe(self, app_id: str, email: str) -> bool:
        """Mark a contact Unsubscribed, as its recipient's click on an unsubscribe link would.

        Returns False when the appId has no contact at that address (compared like the API does).
        """
        with self._lock:
            contact = self._store.find(app_id, email)
            if contact is None:
                return False
            contact.status = "Unsubscribed"
            contact.last_active_time = self._today()
            return True

    def remove_contact(self, app_id: str, email: str) -> bool:
        """Delete one contact as someone using Sendflare's own dashboard would (no API request).

        Returns False when the appId has no contact at that address.
        """
        with self._lock:
            return self._store.remove(app_id, email)

    def clear_requests(self) -> int:
        """Forget the request log; return how many entries there were."""
        with self._lock:
            count = len(self._store.log)
            self._store.log.clear()
            return count

    def reset(self) -> None:
        """Back to the state at start: no messages, contacts, counts or windows; start faults."""
        with self._lock:
            self._store.reset()
            self._limiter.reset()
            self._faults = FaultPlan(copy.deepcopy(self._start_faults))
