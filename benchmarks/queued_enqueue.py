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

``--mass`` measures something else: ``send_mass_mail()`` of ``--mass-messages`` (10,000)
one-recipient messages in one call, through ours and through the two queues it is most often
compared with, side by side on the same database in one run: django-mailer's
``mailer.backend.DbBackend`` (which pickles each ``EmailMessage`` into one row, unvalidated)
and django-post-office's ``post_office.EmailBackend`` (one ``Email`` row per message, created
one by one). ``--rounds`` rounds (3), the order of the three rotating each round, the tables
emptied between runs (not timed). Reported: median messages/s (min and max), and the statements
sent to the database per 1,000 messages. Target: ours at least django-mailer's messages/s.

The other two are not dependencies of django-sendflare; install them into the same virtualenv
first, from PyPI (the ``bench`` extra names them)::

    pip install -e ".[bench]"          # or: pip install django-mailer django-post-office

Without one of them, ``--mass`` says so on its first line and measures the others.

    python benchmarks/queued_enqueue.py --mass                            # SQLite
    python benchmarks/queued_enqueue.py --mass --database-url postgres://postgres@127.0.0.1:5432/NAME
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from queued_common import FROM, configure, database, migrate

TARGET_MS = 2.0

#: The queues --mass compares: name -> (the backend's path, its app, its PyPI package).
MASS_BACKENDS = {
    "django-sendflare QueuedEmailBackend": (
        "django_sendflare.backends.QueuedEmailBackend",
        None,
        None,
    ),
    "django-mailer DbBackend": ("mailer.backend.DbBackend", "mailer", "django-mailer"),
    "django-post-office EmailBackend": (
        "post_office.EmailBackend",
        "post_office",
        "django-post-office",
    ),
}


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
    parser.add_argument("--rounds", type=int, help="rounds (default: 5; 3 with --mass)")
    parser.add_argument(
        "--mass",
        action="store_true",
        help="send_mass_mail() of --mass-messages through ours, django-mailer, django-post-office",
    )
    parser.add_argument("--mass-messages", type=int, default=10_000)
    args = parser.parse_args()
    if args.mass:
        mass(args)
        return
    args.rounds = args.rounds or 5

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

    vendor = describe(connection, args)
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


def mass(args: argparse.Namespace) -> None:
    """``--mass``: one ``send_mass_mail()`` of many messages through each queue, side by side."""
    missing = {name for name, (_, app, _) in MASS_BACKENDS.items() if app and not _installed(app)}
    for name in sorted(missing):
        package = MASS_BACKENDS[name][2]
        print(
            f"MISSING: {package} is not installed, so {name} is not measured "
            f"(pip install {package})"
        )
    backends = {name: spec for name, spec in MASS_BACKENDS.items() if name not in missing}
    listener, api_url = hanging_api()
    configure(
        {
            "database": database(args.database_url, synchronous=args.sqlite_synchronous),
            "api_url": api_url,
            "apps": [app for _, app, _ in backends.values() if app],
        }
    )
    migrate()
    from django.core import mail
    from django.db import connection

    count, rounds = args.mass_messages, args.rounds or 3
    datatuple = [(f"Hi {i}", "Body", FROM, [f"to{i}@example.com"]) for i in range(count)]
    rates: dict[str, list[float]] = {name: [] for name in backends}
    statements: dict[str, list[int]] = {name: [] for name in backends}
    names = list(backends)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            backend = mail.get_connection(backends[name][0])
            with counting_statements(connection) as counter:
                started = time.perf_counter()
                sent = mail.send_mass_mail(datatuple, connection=backend)
                elapsed = time.perf_counter() - started
            # post_office returns how many it sent now (none: it queues); the others, queued.
            expected = 0 if backends[name][1] == "post_office" else count
            assert sent == expected, f"{name} returned {sent}, not {expected}"
            rates[name].append(count / elapsed)
            statements[name].append(counter[0])
            empty_queues(connection)
    listener.close()

    vendor = describe(connection, args)
    print(f"Database: {vendor}; send_mass_mail() of {count:,} one-recipient messages, ", end="")
    print(f"{rounds} rounds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'backend':38} {'messages/s':>10} {'min':>8} {'max':>8} {'statements/1,000':>17}")
    for name in names:
        median = statistics.median(rates[name])
        per_thousand = statistics.median(statements[name]) * 1000 / count
        print(
            f"{name:38} {median:10,.0f} {min(rates[name]):8,.0f} {max(rates[name]):8,.0f} "
            f"{per_thousand:17.1f}"
        )
    ours, mailer = names[0], "django-mailer DbBackend"
    if mailer in rates:
        a, b = statistics.median(rates[ours]), statistics.median(rates[mailer])
        verdict = "PASS" if a >= b else "FAIL"
        print(f"{verdict}: ours {a:,.0f}/s >= django-mailer {b:,.0f}/s ({a / b:.2f}x)")
    else:
        print("NO VERDICT: django-mailer is not installed (see MISSING above)")


def describe(connection, args: argparse.Namespace) -> str:
    """The database of this run, as the reports name it."""
    if connection.vendor == "sqlite":
        return f"sqlite (WAL, synchronous={args.sqlite_synchronous})"
    return connection.vendor


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@contextmanager
def counting_statements(connection) -> Iterator[list[int]]:
    """Count the statements sent on ``connection`` (BEGIN and COMMIT are not statements)."""
    counter = [0]

    def count(execute, sql, params, many, context):
        counter[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield counter


def empty_queues(connection) -> None:
    """Delete every row the three queues wrote (children first), outside the timing."""
    from django.apps import apps

    labels = {"django_sendflare", "mailer", "post_office"}
    models = [m for m in apps.get_models() if m._meta.app_label in labels]
    tables = [m._meta.db_table for m in models]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        else:
            cursor.execute("PRAGMA foreign_keys = OFF")
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - the models' own tables
            cursor.execute("PRAGMA foreign_keys = ON")


if __name__ == "__main__":
    main()
