"""Real worker processes: SIGTERM, SIGKILL mid-drain, and two workers sharing one queue.

Invariants:

* every committed recipient ends ``sent``, ``failed`` or ``unknown``: nothing stays queued;
* no address is sent twice. A worker killed mid-request leaves its requests in flight marked
  ``sending``; the next worker makes them ``unknown`` (they may have been sent) instead of
  sending them again, so they are at most ``--threads`` and the only ones not known as sent.
"""

from __future__ import annotations

import collections
import signal

import pytest
from django.core import mail
from django.utils import timezone

from django_sendflare.models import QueuedMessage, QueuedRecipient
from django_sendflare.worker import Worker

from .processes import start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def queue_mail(count: int) -> list[str]:
    addresses = [f"r{i}@example.com" for i in range(count)]
    for address in addresses:
        mail.send_mail(f"to {address}", "B", "f@example.com", [address])
    return addresses


def received(sandbox) -> collections.Counter[str]:
    return collections.Counter(m["to"] for m in sandbox.messages())


def test_sigterm_finishes_the_requests_in_flight_and_exits_0(sandbox):
    sandbox.set_faults(latency=0.3)
    queue_mail(20)
    worker = start_worker("--threads", "3", "--interval", "0.1")
    try:
        wait_for(lambda: len(sandbox.messages()) >= 3)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, output
    assert "Stopped." in output
    states = collections.Counter(QueuedRecipient.objects.values_list("state", flat=True))
    assert states["sending"] == 0 and states["unknown"] == 0
    assert states["sent"] == len(sandbox.messages()) < 20
    assert max(received(sandbox).values()) == 1


def test_a_worker_killed_mid_drain_another_delivers_the_rest_without_duplicates(sandbox):
    sandbox.set_faults(latency=0.25)
    addresses = queue_mail(24)
    threads = 4
    worker = start_worker("--threads", str(threads), "--interval", "0.1")
    try:
        wait_for(lambda: len(sandbox.messages()) >= 6)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.kill()
    in_flight = QueuedRecipient.objects.filter(state="sending").count()
    print(f"in flight at SIGKILL: {in_flight}")
    assert in_flight <= threads
    # The dead worker's leases run out (45 s); make that time pass.
    QueuedMessage.objects.update(lease_until=timezone.now())
    sandbox.set_faults(latency=0.0)
    report = Worker(contacts=False).run_once()
    assert report.mail.unknown == in_flight
    states = dict(QueuedRecipient.objects.values_list("email", "state"))
    assert set(states) == set(addresses)
    assert collections.Counter(states.values()) == {"sent": 24 - in_flight, "unknown": in_flight}
    counts = received(sandbox)
    assert max(counts.values()) == 1  # nobody mailed twice
    assert {a for a, s in states.items() if s == "sent"} <= set(counts)


@pytest.mark.postgres
def test_two_workers_share_the_queue_on_postgresql_and_send_each_once(sandbox):
    sandbox.set_faults(latency=0.25)
    addresses = queue_mail(60)
    mail.send_mail("team", "B", "f@example.com", [f"team{i}@example.com" for i in range(5)])
    workers = [start_worker("--once", "--threads", "3") for _ in range(2)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    counts = received(sandbox)
    assert set(counts) == set(addresses) | {f"team{i}@example.com" for i in range(5)}
    assert max(counts.values()) == 1
    assert set(QueuedRecipient.objects.values_list("state", flat=True)) == {"sent"}
    # Both took part: each claimed messages the other skipped (SKIP LOCKED), none twice.
    assert all(" 0 message(s)" not in output for output in outputs), outputs
