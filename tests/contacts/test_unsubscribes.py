"""Pull what Sendflare knows: unsubscribes and deletes made there are recorded and signalled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_sendflare.contacts import full_sync, services
from django_sendflare.models import ContactSyncState
from django_sendflare.signals import contact_unsubscribed

from .fakes import FakeClient


@pytest.fixture
def heard() -> Iterator[list[tuple[Any, str, bool]]]:
    calls: list[tuple[Any, str, bool]] = []

    def receiver(sender: Any, user: Any, email: str, deleted: bool, **kwargs: Any) -> None:
        calls.append((user.pk, email, deleted))

    contact_unsubscribed.connect(receiver)
    yield calls
    contact_unsubscribed.disconnect(receiver)


def test_a_full_sync_records_an_unsubscribe_and_signals_it_once(
    make_user: Any, fake_api: FakeClient, deliver: Any, heard: list[Any]
) -> None:
    user = make_user("ann@example.com")
    deliver()
    fake_api.get("ann@example.com")["status"] = "Unsubscribed"  # type: ignore[index]
    full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    assert heard == [(user.pk, "ann@example.com", False)]
    state = ContactSyncState.objects.get(user_key=str(user.pk))
    assert state.unsubscribed_at is not None and state.remote_status == "Unsubscribed"
    full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    assert len(heard) == 1  # first seen only
    assert len(fake_api.writes()) == 1  # the first create only: no call since


def test_the_live_read_of_an_email_change_signals_the_unsubscribe(
    make_user: Any, fake_api: FakeClient, deliver: Any, heard: list[Any]
) -> None:
    user = make_user("ann@example.com")
    deliver()
    fake_api.get("ann@example.com")["status"] = "Unsubscribed"  # type: ignore[index]
    user.email = "ann@new.example.com"
    user.save()
    deliver()
    assert heard == [(user.pk, "ann@example.com", False)]


def test_a_contact_deleted_at_sendflare_is_signalled_then_recreated(
    make_user: Any, fake_api: FakeClient, deliver: Any, heard: list[Any]
) -> None:
    user = make_user("ann@example.com")
    deliver()
    fake_api.contacts.clear()  # deleted from Sendflare's dashboard
    full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    assert heard == [(user.pk, "ann@example.com", True)]
    assert ContactSyncState.objects.get(user_key=str(user.pk)).remote_deleted_at is not None
    # Drift is repaired: the user's contact exists again, as a new person's.
    assert fake_api.get("ann@example.com")["status"] == "Confirmed"  # type: ignore[index]


def test_a_receiver_can_keep_a_deleted_contact_deleted(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("ann@example.com")
    deliver()
    fake_api.contacts.clear()

    def forget(sender: Any, user: Any, email: str, deleted: bool, **kwargs: Any) -> None:
        if deleted:
            services.stop_syncing(user)

    contact_unsubscribed.connect(forget)
    try:
        full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    finally:
        contact_unsubscribed.disconnect(forget)
    assert fake_api.contacts == {}
    assert ContactSyncState.objects.get(user_key=str(user.pk)).do_not_sync


def test_a_recreated_contact_of_an_unsubscribed_user_stays_unsubscribed(
    make_user: Any, fake_api: FakeClient, deliver: Any, heard: list[Any]
) -> None:
    make_user("ann@example.com")
    deliver()
    fake_api.get("ann@example.com")["status"] = "Unsubscribed"  # type: ignore[index]
    full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    fake_api.contacts.clear()
    full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    assert fake_api.get("ann@example.com")["status"] == "Unsubscribed"  # type: ignore[index]
    assert [deleted for _, _, deleted in heard] == [False, True]


def test_a_receiver_error_is_logged_not_raised(
    make_user: Any, fake_api: FakeClient, deliver: Any, caplog: Any
) -> None:
    make_user("ann@example.com")
    deliver()
    fake_api.get("ann@example.com")["status"] = "Unsubscribed"  # type: ignore[index]

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    contact_unsubscribed.connect(broken)
    try:
        report = full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    finally:
        contact_unsubscribed.disconnect(broken)
    assert report.ok
    assert "receiver bug" in caplog.text
