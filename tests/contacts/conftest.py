"""Fixtures of the contact tests: a fake API client, users, and the sandbox's fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_sendflare.contacts import context, outbox
from django_sendflare.models import ContactChange

# The sandbox's fixtures (its pytest11 entry point registers them too when the package is
# installed; importing them here makes these tests work from a plain checkout as well).
from django_sendflare.sandbox.pytest_plugin import (  # noqa: F401
    sendflare_sandbox,
    sendflare_sandbox_config,
    sendflare_sandbox_settings,
)

from .fakes import FakeClient


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    """A fake client that every contact code path (outbox, sync, admin, command) uses."""
    client = FakeClient()
    monkeypatch.setattr(context, "get_client", lambda conf=None: client)
    return client


@pytest.fixture
def make_user(db: Any) -> Any:
    """Create a user; extra keyword arguments are model fields."""
    counter = iter(range(1, 10**6))

    def make(email: str = "", **fields: Any) -> Any:
        number = next(counter)
        fields.setdefault("username", f"user{number}")
        return get_user_model().objects.create_user(email=email, **fields)

    return make


def pending() -> list[ContactChange]:
    return list(ContactChange.objects.filter(state=ContactChange.State.PENDING))


def failed() -> list[ContactChange]:
    return list(ContactChange.objects.filter(state=ContactChange.State.FAILED))


@pytest.fixture
def deliver(fake_api: FakeClient) -> Iterator[Any]:
    """Deliver everything pending now (due or not), through the fake API."""

    def run(**kwargs: Any) -> outbox.DeliveryReport:
        kwargs.setdefault("include_not_due", True)
        return outbox.deliver_pending(client=fake_api, **kwargs)  # type: ignore[arg-type]

    yield run
