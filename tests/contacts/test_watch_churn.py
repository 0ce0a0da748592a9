"""Issue 22, the cases not yet tried: addresses changed back and forth, and users deleted, while a
real ``sync_contacts --watch`` process delivers.

The test process plays the site: it saves users (an address changed to a new one and back,
again and again; an address handed over to another user once its owner is deleted) and deletes
users, while the watcher, a separate process on the same database, delivers the outbox against
the sandbox with some latency, so that saves land while their user's delivery is in flight; a
full sync runs meanwhile in a third process, so that users are deleted in the middle of it.
Once the outbox is empty the sandbox's contact list must be exactly the remaining users'
addresses: no address left behind by a flip, none lost to a deletion, none created twice.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_sendflare.models import ContactChange

from ..mail.processes import start_command, wait_for

APP_ID = "churn-app"

pytestmark = pytest.mark.django_db(transaction=True)


def remote(sandbox: Any) -> set[str]:
    return {c["emailAddress"] for c in sandbox.contacts(APP_ID)}


def expected() -> set[str]:
    return set(get_user_model().objects.exclude(email="").values_list("email", flat=True))


def test_flipping_addresses_and_deleting_users_under_a_watcher_ends_in_step(
    sendflare_sandbox_settings: Any, settings: Any
) -> None:
    sandbox = sendflare_sandbox_settings
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "APP_ID": APP_ID,
        "SYNC_CONTACTS": True,
        "RATE_LIMIT": 0,
        "MAX_RETRIES": 2,
        "TIMEOUT": (2.0, 2.0),
    }
    model = get_user_model()
    users = [model.objects.create_user(f"u{i}", f"u{i}@example.com") for i in range(40)]
    flippers, doomed = users[:6], users[10:16]
    sandbox.set_faults(latency=0.02, jitter=0.02)
    rng = random.Random(22)  # a reproducible order of pauses
    watcher = start_command("sync_contacts", "--watch", "--interval", "0.05", "--batch-size", "2")
    full_sync = None
    try:
        wait_for(lambda: len(remote(sandbox)) >= 4)  # the watcher is delivering
        for round_ in range(8):
            if round_ == 1:
                # A full sync too, in its own process: users are deleted while it runs.
                full_sync = start_command("sync_contacts", "--no-progress", "--chunk-size", "2")
            for user in flippers:
                # Back and forth: a new address on even rounds, the original on odd ones.
                user.email = (
                    f"{user.username}@example.com"
                    if round_ % 2
                    else f"{user.username}.{round_}@example.org"
                )
                user.save()
                time.sleep(rng.uniform(0.0, 0.03))
            if round_ == 5:
                # A user deleted right after an address change, both of them still pending:
                # neither of its addresses may stay.
                flippers.pop().delete()
            if doomed and round_ % 2 == 0:
                gone = doomed.pop(rng.randrange(len(doomed)))
                old_address = gone.email
                gone.delete()
                if round_ == 4:
                    # Its address goes to another user at once, while its deletion is pending.
                    heir = users[7]
                    heir.email = old_address
                    heir.save()
            time.sleep(0.25)  # the rounds span the full sync's run
        # The last round (7) put every flipper back on its original address.
        assert {u.email for u in flippers} == {f"{u.username}@example.com" for u in flippers}
        assert full_sync is not None
        full_output, _ = full_sync.communicate(timeout=90)
        wait_for(lambda: not ContactChange.objects.exists(), timeout=90)
    finally:
        if full_sync is not None:
            full_sync.kill()
        watcher.send_signal(signal.SIGTERM)
        try:
            output, _ = watcher.communicate(timeout=20)
        except Exception:
            watcher.kill()
            raise
    assert remote(sandbox) == expected(), (output, full_output)
    assert len(sandbox.contacts(APP_ID)) == len(expected())  # none twice
    assert watcher.returncode == 0, output
