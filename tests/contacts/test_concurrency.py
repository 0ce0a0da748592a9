"""Several workers at once: on PostgreSQL each change is delivered exactly once."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from django_sendflare.contacts import full_sync, outbox, steps
from django_sendflare.contacts import state as state_mod
from django_sendflare.contacts.outbox import Outcome
from django_sendflare.models import ContactChange

from .fakes import FakeClient

WORKERS = 6
USERS = 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_deliver_each_change_once(make_user: Any) -> None:
    assert connection.features.has_select_for_update_skip_locked
    users = [make_user(f"u{i}@example.com", first_name="A") for i in range(USERS)]
    for user in users[::3]:  # several rows for some users: still one call each
        user.first_name = "B"
        user.save()
    assert ContactChange.objects.count() == USERS + len(users[::3])

    api = FakeClient(latency=0.003)  # slow enough for the workers to overlap
    start = threading.Barrier(WORKERS)
    reports: list[outbox.DeliveryReport] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            start.wait()
            reports.append(outbox.deliver_pending(client=api, batch_size=4))  # type: ignore[arg-type]
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors

    saves = Counter(call.email for call in api.calls if call.method == "save")
    assert saves == Counter({f"u{i}@example.com": 1 for i in range(USERS)})
    assert len(api.calls) == USERS
    assert ContactChange.objects.count() == 0
    assert {
        c["firstName"]
        for c in api.contacts.values()
        if c["emailAddress"] in {u.email for u in users[::3]}
    } == {"B"}
    # The work was shared between the workers, not done by one while the others waited.
    delivering = [r for r in reports if r.count(Outcome.SAVED)]
    assert len(delivering) >= 2
    assert sum(r.count(Outcome.SAVED) for r in reports) == USERS


@pytest.fixture
def sandbox(sendflare_sandbox_settings: Any, settings: Any) -> Any:
    """The sandbox, with contacts synced and no client retries: failures show at once."""
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "MAX_RETRIES": 0,
        "APP_ID": "race-app",
        "SYNC_CONTACTS": True,
        "RATE_LIMIT": 0,
    }
    return sendflare_sandbox_settings


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_handing_an_address_to_each_other_leave_no_orphan(
    sandbox: Any, monkeypatch: Any
) -> None:
    """I3 with two workers: x and y both record ann@ and both move away from it at once.

    Each worker, about to delete ann@, finds that the other user records it and hands it over
    instead. Made to decide at the same instant (a barrier after the look-up), both used to
    forget it: a contact nobody records, never deleted (only --prune finds it).
    """
    users = get_user_model().objects
    x = users.create_user(username="x", email="ann@example.com")
    outbox.deliver_pending()
    y = users.create_user(username="y", email="ann@example.com")  # a conflict: y records ann@
    outbox.deliver_pending()
    x.email, y.email = "x2@example.com", "y2@example.com"
    x.save()
    y.save()

    decided = threading.Barrier(2, timeout=2)
    look_up = state_mod.users_recording_address

    def look_up_then_wait(*args: Any, **kwargs: Any) -> list[str]:
        found = look_up(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            decided.wait()  # both workers have decided before either acts
        return found

    monkeypatch.setattr(state_mod, "users_recording_address", look_up_then_wait)
    errors: list[BaseException] = []

    def deliver(user: Any) -> None:
        try:
            outbox.deliver_pending(user_keys=[str(user.pk)])
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(user,)) for user in (x, y)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    monkeypatch.setattr(state_mod, "users_recording_address", look_up)

    # Whatever waited for its retry is delivered, then a full sync (no --prune) cleans up.
    outbox.deliver_pending(include_not_due=True)
    full_sync.run_sync()
    assert {c["emailAddress"] for c in sandbox.contacts("race-app")} == {
        "x2@example.com",
        "y2@example.com",
    }


@pytest.mark.parametrize("y_leaves", ["changes its address", "is deleted"])
@pytest.mark.django_db(transaction=True)
def test_an_address_handed_over_is_not_claimed_back_by_rows_waiting_to_be_resolved(
    sandbox: Any, monkeypatch: Any, y_leaves: str
) -> None:
    """I3 with two workers: y's delivery hands ann@ to x and ends; before its outbox rows are
    resolved, x's delivery moves away from ann@ too. y's rows still name ann@ (y's old
    address), but y's state, which took them in, no longer does (or is gone with the deleted
    user, together with the rows): ann@ must be deleted, not handed back to y (then nobody
    would record it)."""
    users = get_user_model().objects
    x = users.create_user(username="x", email="ann@example.com")
    outbox.deliver_pending()
    y = users.create_user(username="y", email="ann@example.com")  # a conflict: y records ann@
    outbox.deliver_pending()
    x.email = "x2@example.com"
    x.save()
    if y_leaves == "is deleted":
        y_key = str(y.pk)
        y.delete()
        y.pk = y_key
    else:
        y.email = "y2@example.com"
        y.save()

    y_delivered, x_delivered = threading.Event(), threading.Event()
    run = steps.UserRun.run

    def run_then_hold_the_rows(self: steps.UserRun) -> Any:
        result = run(self)
        if self.key == str(y.pk):
            y_delivered.set()
            x_delivered.wait(timeout=10)  # y's rows are resolved only after x's delivery
        return result

    monkeypatch.setattr(steps.UserRun, "run", run_then_hold_the_rows)
    errors: list[BaseException] = []

    def deliver(user: Any, after: threading.Event | None, then: threading.Event | None) -> None:
        try:
            if after is not None:
                after.wait(timeout=10)
            outbox.deliver_pending(user_keys=[str(user.pk)])
            if then is not None:
                then.set()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=deliver, args=(y, None, None)),
        threading.Thread(target=deliver, args=(x, y_delivered, x_delivered)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    monkeypatch.setattr(steps.UserRun, "run", run)

    outbox.deliver_pending(include_not_due=True)
    full_sync.run_sync()
    expected = {"x2@example.com"} | ({"y2@example.com"} if y_leaves != "is deleted" else set())
    assert {c["emailAddress"] for c in sandbox.contacts("race-app")} == expected
