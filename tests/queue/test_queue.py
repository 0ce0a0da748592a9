"""The generic durable queue, on the contact outbox's models (any QueueItem/Leasable works)."""

from __future__ import annotations

import datetime
import random
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from django_sendflare.models import ContactChange, ContactSyncState
from django_sendflare.queue import LEASE_SECONDS, Lease, LeaseLost, Verdict, WorkQueue
from django_sendflare.retry import backoff_delay

pytestmark = pytest.mark.django_db


def _rows(n: int, **fields: Any) -> list[ContactChange]:
    return [
        ContactChange.objects.create(
            user_key=str(i), kind="save", email=f"u{i}@example.com", **fields
        )
        for i in range(n)
    ]


def test_the_backoff_formula_grows_and_is_capped() -> None:
    rng = random.Random(1)
    assert 15 <= backoff_delay(1, base=30, cap=3600, rng=rng) <= 30
    assert 60 <= backoff_delay(3, base=30, cap=3600, rng=rng) <= 120
    assert 1800 <= backoff_delay(30, base=30, cap=3600, rng=rng) <= 3600


def test_due_rows_only_and_oldest_first() -> None:
    later = timezone.now() + datetime.timedelta(hours=1)
    first, second = _rows(2)
    ContactChange.objects.create(user_key="x", kind="save", next_attempt_at=later)
    ContactChange.objects.create(user_key="y", kind="save", state=ContactChange.State.FAILED)
    queue = WorkQueue(ContactChange, max_attempts=3)
    assert [r.pk for r in queue.claim(queue.due(), limit=10)] == [first.pk, second.pk]


def test_transient_failures_retry_until_max_attempts_then_park() -> None:
    (row,) = _rows(1)
    queue = WorkQueue(ContactChange, max_attempts=3)
    verdicts = [queue.failed([row.pk], "down", transient=True) for _ in range(3)]
    assert verdicts == [Verdict.RETRY, Verdict.RETRY, Verdict.FAILED]
    row.refresh_from_db()
    assert row.state == ContactChange.State.FAILED and row.attempts == 3
    assert row.last_error == "down"


def test_a_transient_failure_is_due_after_the_backoff() -> None:
    (row,) = _rows(1)
    queue = WorkQueue(ContactChange, max_attempts=5, backoff_base=100, backoff_cap=100)
    queue.failed([row.pk], "down", transient=True)
    assert not queue.due().exists()
    assert queue.due(now=timezone.now() + datetime.timedelta(seconds=101)).exists()


def test_a_permanent_failure_parks_at_once_and_a_retry_resets_it() -> None:
    (row,) = _rows(1)
    queue = WorkQueue(ContactChange, max_attempts=5)
    assert queue.failed([row.pk], "invalid", transient=False) is Verdict.FAILED
    assert queue.retry_failed() == 1
    row.refresh_from_db()
    assert row.state == ContactChange.State.PENDING and row.attempts == 0


def test_a_group_of_rows_counts_one_attempt() -> None:
    rows = _rows(3)
    queue = WorkQueue(ContactChange, max_attempts=2)
    assert queue.failed([r.pk for r in rows], "down", transient=True) is Verdict.RETRY
    assert set(ContactChange.objects.values_list("attempts", flat=True)) == {1}


def test_done_keeps_the_row_and_discard_deletes_it() -> None:
    a, b = _rows(2)
    queue = WorkQueue(ContactChange, max_attempts=2)
    queue.done([a.pk])
    a.refresh_from_db()
    assert a.state == ContactChange.State.DONE and not queue.due().filter(pk=a.pk).exists()
    assert queue.discard([b.pk]) == 1


def _state(key: str, **fields: Any) -> ContactSyncState:
    return ContactSyncState.objects.create(user_key=key, **fields)


def test_a_lease_is_held_by_one_holder_until_released() -> None:
    _state("1")
    first = Lease(ContactSyncState, key_field="user_key")
    second = Lease(ContactSyncState, key_field="user_key")
    assert first.take("1")
    assert not second.take("1")
    first.release("1")
    assert second.take("1")


def test_a_dead_holders_lease_expires_within_the_lease_time() -> None:
    # A worker killed right after taking the lease never releases it.
    _state("1")
    dead = Lease(ContactSyncState, key_field="user_key")
    assert dead.take("1")
    assert LEASE_SECONDS <= 60
    expired = timezone.now() + datetime.timedelta(seconds=LEASE_SECONDS + 1)
    state = ContactSyncState.objects.get(user_key="1")
    assert state.lease_until is not None and state.lease_until <= expired
    ContactSyncState.objects.update(lease_until=timezone.now() - datetime.timedelta(seconds=1))
    assert Lease(ContactSyncState, key_field="user_key").take("1")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_live_holder_renews_its_lease_while_it_works() -> None:
    _state("1")
    clock = _Clock()
    lease = Lease(ContactSyncState, key_field="user_key", seconds=30, clock=clock)
    assert lease.take("1")
    ContactSyncState.objects.update(lease_until=timezone.now() + datetime.timedelta(seconds=1))
    clock.now = 5  # less than a third of the lease: no write
    lease.keep_alive()
    assert ContactSyncState.objects.get().lease_until < timezone.now() + datetime.timedelta(
        seconds=2
    )
    clock.now = 11
    lease.keep_alive()
    assert ContactSyncState.objects.get().lease_until > timezone.now() + datetime.timedelta(
        seconds=25
    )


def test_a_holder_that_stalled_past_its_lease_learns_it_lost_it() -> None:
    _state("1")
    clock = _Clock()
    slow = Lease(ContactSyncState, key_field="user_key", seconds=30, clock=clock)
    assert slow.take("1")
    ContactSyncState.objects.update(lease_until=timezone.now() - datetime.timedelta(seconds=1))
    assert Lease(ContactSyncState, key_field="user_key").take("1")
    clock.now = 60
    with pytest.raises(LeaseLost):
        slow.keep_alive()
    assert slow.held == frozenset()


def test_leaving_a_lease_block_releases_what_is_still_held() -> None:
    _state("a")
    _state("b")
    with pytest.raises(RuntimeError), Lease(ContactSyncState, key_field="user_key") as lease:
        assert lease.take("a") and lease.take("b")
        raise RuntimeError("a worker's error")
    assert set(ContactSyncState.objects.values_list("lease_token", flat=True)) == {""}


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_pick_different_rows_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is tested on PostgreSQL (DATABASE_URL)")
    _rows(20)
    queue = WorkQueue(ContactChange, max_attempts=2)
    picked: list[list[int]] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                rows = queue.claim(queue.due(), limit=10)
                picked.append([r.pk for r in rows])
                barrier.wait(timeout=10)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(picked) == 2 and not set(picked[0]) & set(picked[1])


def test_a_newer_row_of_a_group_is_not_parked_before_its_own_max_attempts() -> None:
    older, newer = _rows(2)
    ContactChange.objects.filter(pk=older.pk).update(attempts=2)
    queue = WorkQueue(ContactChange, max_attempts=3)
    assert queue.failed([older.pk, newer.pk], "down", transient=True) is Verdict.RETRY
    assert queue.failed([older.pk, newer.pk], "down", transient=True) is Verdict.RETRY
    assert queue.failed([older.pk, newer.pk], "down", transient=True) is Verdict.FAILED
    newer.refresh_from_db()
    assert newer.attempts == 3
