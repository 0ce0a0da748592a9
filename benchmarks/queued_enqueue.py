"""Enqueue cost of ``send_mail`` through the QueuedEmailBackend, beside a plain ``create()``.

Run from the repository root::

    python benchmarks/queued_enqueue.py                                   # SQLite
    python benchmarks/queued_enqueue.py --database-url postgres://postgres@127.0.0.1:5432/queued

``SENDFLARE["API_URL"]`` points at a local socket that accepts connections and never answers
(the API hangs): the queued backend must not care. Alternately, for ``--rounds`` rounds:
``--messages`` calls of ``send_mail()`` to one recipient, then to three, then as many plain
``Group.objects.create()`` (one row, autocommit: the baseline cost of one write on this
database), each op in its own transaction as in a view. Medians of the per-op times are
reported. Target: send_mail <= 2 ms per call.

The same three operations are then timed again inside the caller's transaction (one
``transaction.atomic()`` around each batch of calls), as in a view under ``ATOMIC_REQUESTS``:
there the commit is the caller's, paid once for the whole request, and what remains is what
queueing a message adds to a request that writes anyway.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
from collections.abc import Callable

from queued_common import FROM, configure, database, migrate

TARGET_MS = 2.0


def hanging_api() -> tuple[socket.socket, str]:
    """A listener that accepts connections and never answers: an API that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


def timed(operation: Callable[[int], object], count: int) -> float:
    """Milliseconds per call of ``operation(i)`` over ``count`` calls."""
    started = time.perf_counter()
    for i in range(count):
        operation(i)
    return (time.perf_counter() - started) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument(
        "--sqlite-synchronous",
        default="NORMAL",
        choices=["OFF", "NORMAL", "FULL"],
        help="SQLite's PRAGMA synchronous (WAL mode; NORMAL: no fsync per commit)",
    )
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    listener, api_url = hanging_api()
    options = {
        "database": database(args.database_url, synchronous=args.sqlite_synchronous),
        "api_url": api_url,
    }
    configure(options)
    migrate()
    from django.contrib.auth.models import Group
    from django.core import mail
    from django.db import connection, transaction

    from django_sendflare.models import QueuedMessage

    one = ["one@example.com"]
    three = ["a@example.com", "b@example.com", "c@example.com"]
    runs: dict[str, list[float]] = {"send_mail, 1 recipient": [], "send_mail, 3 recipients": []}
    runs["Group.objects.create() (baseline)"] = []
    counter = iter(range(10**9))
    operations = {
        "send_mail, 1 recipient": lambda i: mail.send_mail("Hi", "Body", FROM, one),
        "send_mail, 3 recipients": lambda i: mail.send_mail("Hi", "Body", FROM, three),
        "Group.objects.create() (baseline)": lambda i: Group.objects.create(
            name=f"g{next(counter)}"
        ),
    }
    # Warm up (connections, caches, the settings), then clean up.
    for operation in operations.values():
        timed(operation, 20)
    in_transaction: dict[str, list[float]] = {name: [] for name in runs}
    for round_number in range(args.rounds):
        names = list(operations)
        names = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in names:
            runs[name].append(timed(operations[name], args.messages))
        for name in names:
            with transaction.atomic():
                in_transaction[name].append(timed(operations[name], args.messages))
    stored = QueuedMessage.objects.count()
    QueuedMessage.objects.all().delete()
    Group.objects.all().delete()
    listener.close()

    vendor = connection.vendor
    if vendor == "sqlite":
        vendor += f" (WAL, synchronous={args.sqlite_synchronous})"
    print(f"Database: {vendor}; {args.messages} calls x {args.rounds} rounds; ", end="")
    print(f"API at {api_url} hangs (accepts, never answers); {stored} messages stored")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for title, table in (
        ("each call in its own transaction (autocommit)", runs),
        ("inside the caller's transaction (ATOMIC_REQUESTS)", in_transaction),
    ):
        print(f"\n{title}")
        baseline = statistics.median(table["Group.objects.create() (baseline)"])
        print(f"{'operation':38} {'median ms/op':>12} {'min':>8} {'max':>8} {'x baseline':>11}")
        for name, values in table.items():
            median = statistics.median(values)
            print(
                f"{name:38} {median:12.3f} {min(values):8.3f} {max(values):8.3f} "
                f"{median / baseline:11.2f}"
            )
        for name in ("send_mail, 1 recipient", "send_mail, 3 recipients"):
            value = statistics.median(table[name])
            verdict = "PASS" if value <= TARGET_MS else "FAIL"
            print(f"{verdict}: {name}: {value:.3f} ms <= {TARGET_MS} ms")


if __name__ == "__main__":
    main()
