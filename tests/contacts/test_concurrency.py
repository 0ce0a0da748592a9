"""Several workers at once: on PostgreSQL each change is delivered exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection

from django_sendflare.contacts import outbox
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
