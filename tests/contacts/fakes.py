"""A fake Sendflare client for the contact tests: an in-memory contact list that counts calls.

It has the methods the contact code uses (``list_contacts``, ``save_contact``,
``delete_contact``) with the API's rules (status on create only; save merges data), and can be
told to fail: ``down`` (every call fails like an unreachable API), ``fail_next`` (a queue of
exceptions for the next calls), ``fail_on`` (a predicate per call), ``lose_answer_on`` (the call
is done, then its answer is lost). ``on_call`` runs before each call, outside the fake's lock
(a test makes something happen "meanwhile" there).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django_sendflare.client import ContactPage, SendflareClient
from django_sendflare.exceptions import SendflareAmbiguousError, SendflareConnectionError


@dataclass
class Call:
    method: str
    email: str = ""
    status: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    page: int = 0


class FakeClient:
    def __init__(self, *, latency: float = 0.0) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.down = False
        self.fail_next: list[Exception] = []
        self.fail_on: Callable[[Call], Exception | None] | None = None
        self.lose_answer_on: Callable[[Call], bool] | None = None
        self.on_call: Callable[[Call], None] | None = None
        self.latency = latency
        self.lock = threading.Lock()

    # Setup helpers.

    def add(self, email: str, status: str = "Confirmed", **data: Any) -> None:
        self.contacts[email.strip().lower()] = {"emailAddress": email, "status": status, **data}

    def get(self, email: str) -> dict[str, Any] | None:
        return self.contacts.get(email.strip().lower())

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method != "list"]

    def reset_calls(self) -> None:
        self.calls.clear()

    # The client's interface.

    def _enter(self, call: Call) -> None:
        if self.on_call is not None:
            self.on_call(call)
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            self.calls.append(call)
            if self.down:
                raise SendflareConnectionError("Could not connect to the Sendflare API (fake)")
            if self.fail_next:
                raise self.fail_next.pop(0)
            if self.fail_on is not None:
                error = self.fail_on(call)
                if error is not None:
                    raise error

    def list_contacts(
        self, *, app_id: str | None = None, page: int = 1, page_size: int = 500
    ) -> ContactPage:
        self._enter(Call("list", page=page))
        with self.lock:
            everything = list(self.contacts.values())
        chunk = everything[(page - 1) * page_size : page * page_size]
        return ContactPage(
            contacts=[dict(c) for c in chunk],
            total=len(everything),
            request_id="fake",
        )

    def save_contact(
        self,
        *,
        email: str,
        status: str = "Confirmed",
        data: Mapping[str, Any] | None = None,
        app_id: str | None = None,
    ) -> None:
        self._enter(Call("save", email=email, status=status, data=dict(data or {})))
        with self.lock:
            key = email.strip().lower()
            existing = self.contacts.get(key)
            if existing is None:
                self.contacts[key] = {"emailAddress": email, "status": status, **(data or {})}
            else:
                existing.update(data or {})  # status: on create only
        self._answer(Call("save", email=email))

    def _answer(self, call: Call) -> None:
        if self.lose_answer_on is not None and self.lose_answer_on(call):
            raise SendflareAmbiguousError("The answer was lost (fake)")

    # The one pagination: the real client's, over this fake's pages.
    iter_contacts = SendflareClient.iter_contacts

    def delete_contact(self, *, email: str, app_id: str | None = None) -> None:
        self._enter(Call("delete", email=email))
        with self.lock:
            self.contacts.pop(email.strip().lower(), None)
        self._answer(Call("delete", email=email))
