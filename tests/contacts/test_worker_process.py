"""A real ``sync_contacts --watch`` process, SIGKILLed mid-delivery: nothing is lost.

Invariant: a user the dead worker held waits for its lease to run out (no other worker touches
it meanwhile), then the next worker delivers it; in the end Sendflare holds exactly the users'
addresses and the outbox is empty. A save the dead worker had in flight does no harm: saving a
contact is idempotent.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from django_sendflare.contacts import outbox
from django_sendflare.models import ContactChange, ContactSyncState

from ..mail.processes import start_command, wait_for

APP_ID = "kill-app"

pytestmark = pytest.mark.django_db(transaction=True)


def leased() -> set[str]:
    """The users whose lease is held now."""
    return set(
        ContactSyncState.objects.filter(lease_until__gt=timezone.now()).values_list(
            "user_key", flat=True
        )
    )


def test_a_contacts_worker_killed_mid_delivery_leaves_its_user_to_the_next(
    sendflare_sandbox_settings: Any, settings: Any
) -> None:
    sandbox = sendflare_sandbox_settings
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "APP_ID": APP_ID,
        "SYNC_CONTACTS": True,
        "RATE_LIMIT": 0,
        "MAX_RETRIES": 1,
        "TIMEOUT": (2.0, 1.0),
    }
    users = [
        get_user_model().objects.create_user(username=f"u{i}", email=f"u{i}@example.com")
        for i in range(12)
    ]
    sandbox.set_faults(latency=0.25)
    worker = start_command("sync_contacts", "--watch", "--interval", "0.1", "--batch-size", "1")
    try:
        # Killed while it holds a user: after a few deliveries, at one's lease.
        wait_for(lambda: len(sandbox.contacts(APP_ID)) >= 3 and leased())
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.kill()
    assert ContactChange.objects.exists(), "the worker finished before it was killed"
    held = leased()
    assert len(held) == 1  # the worker brings one user up to date at a time

    sandbox.set_faults(latency=0.0)
    outbox.deliver_pending()
    # Everyone but the user the dead worker held; that one waits for its lease.
    assert set(ContactChange.objects.values_list("user_key", flat=True)) == held

    # The dead worker's lease runs out (45 s): make that time pass.
    ContactSyncState.objects.update(lease_until=timezone.now())
    outbox.deliver_pending()
    assert not ContactChange.objects.exists()
    assert {c["emailAddress"] for c in sandbox.contacts(APP_ID)} == {u.email for u in users}
