"""Benchmark: a diff-based full contact sync of 10,000 users with 1% changed; email changes.

Runs against the sandbox's standalone server on loopback (in a subprocess, rate limit off), with a
throwaway SQLite database. Prints the API calls, wall time and peak memory of the diff sync beside
what a blind push (one save per user) costs, and what each would take at the API's documented
5 requests per second. Then the cost of email changes delivered by the outbox, whose live status
is read from the listing (issue 8, I1): one change beside a batch of 100, listing reads counted::

    python benchmarks/contacts_sync.py [--users 10000] [--changed 0.01] [--batch 100]
    python benchmarks/contacts_sync.py --users 1000000 --seed --no-email-changes

``--seed`` loads the list into the sandbox at start (its ``--seed-contacts FILE``) instead of the
blind push, so that a large list costs no first push of one call per user.

Peak memory is measured with tracemalloc over the sync alone (a second, separate run: tracing
slows Python down, so the timed run is not traced).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token"  # noqa: S105 - a local sandbox's token
APP_ID = "bench-app"
DOCUMENTED_RATE = 5.0  # requests per second


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_seed(path: str, count: int) -> None:
    """The contacts a blind push would leave, as save-contact bodies (``--seed-contacts``)."""
    with open(path, "w", encoding="utf-8") as out:
        for i in range(count):
            out.write(
                f'{{"appId": "{APP_ID}", "emailAddress": "user{i}@example.com", '
                f'"status": "Confirmed", "firstName": "First{i}", "lastName": "Last{i}"}}\n'
            )


def start_sandbox(port: int, seed: str | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_sendflare.sandbox",
            "--port",
            str(port),
            "--token",
            TOKEN,
            "--rate-limit",
            "0",
            *(["--seed-contacts", seed] if seed else []),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/api/", timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit("the sandbox did not start") from None
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the sandbox did not answer in 600 s")


def configure(port: int, db_path: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="benchmark-only",  # noqa: S106 - a throwaway local database
        USE_TZ=True,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": db_path,
                # WAL, as a production SQLite would run: each small write is not an fsync.
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"},
            }
        },
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django_sendflare",
        ],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        SENDFLARE={
            "API_TOKEN": TOKEN,
            "API_URL": f"http://127.0.0.1:{port}",
            "APP_ID": APP_ID,
            "RATE_LIMIT": 0,
            # The users are written in bulk below; the outbox is not what is measured.
            "SYNC_CONTACTS": False,
        },
    )
    django.setup()


def counting_client() -> Any:
    from django_sendflare.client import SendflareClient
    from django_sendflare.conf import get_settings

    class CountingClient(SendflareClient):
        calls = 0
        reads = 0  # listing pages (GET), counted in calls too

        def _request(self, method: str, *args: Any, **kwargs: Any) -> Any:
            type(self).calls += 1
            type(self).reads += method == "GET"
            return super()._request(method, *args, **kwargs)

    return CountingClient.from_settings(get_settings())


def make_users(count: int) -> None:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    batch = []
    for i in range(count):
        batch.append(
            user_model(
                username=f"user{i}",
                email=f"user{i}@example.com",
                first_name=f"First{i}",
                last_name=f"Last{i}",
                password="!",  # noqa: S106 - unusable password
            )
        )
        if len(batch) == 2000:
            user_model.objects.bulk_create(batch)
            batch = []
    user_model.objects.bulk_create(batch)


def change_users(share: float, offset: int) -> int:
    """Change the last name of ``share`` of the users (behind the signals' back)."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    total = user_model.objects.count()
    step = max(1, round(1 / share))
    pks = list(user_model.objects.order_by("pk").values_list("pk", flat=True)[offset::step])
    user_model.objects.filter(pk__in=pks).update(last_name=f"Changed{offset}")
    return min(len(pks), total)


def blind_push(client: Any, count: int) -> float:
    """One save per user, as a sync without a diff would do (8 at a time: it is only the
    baseline's cost in calls that matters, and the contacts it leaves for the diff sync)."""
    from django_sendflare.contacts.adapter import get_adapter

    adapter = get_adapter()
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.order_by("pk").iterator(chunk_size=2000)

    def save(user: Any) -> None:
        contact = adapter.to_contact(user)
        client.save_contact(email=contact.email, status=contact.status, data=contact.filled_data())

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in pool.map(save, users, chunksize=64):
            pass
    return time.perf_counter() - started


class QueryCounter:
    """Counts the database queries run inside ``with counter:`` (any code, no debug mode)."""

    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.queries += 1
        return execute(sql, params, many, context)

    def __enter__(self) -> QueryCounter:
        from django.db import connection

        self._wrapped = connection.execute_wrapper(self)
        self._wrapped.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._wrapped.__exit__(*exc_info)


def full_sync_function() -> Any:
    try:
        from django_sendflare.contacts.full_sync import run_sync as sync
    except ImportError:  # before issue 17
        from django_sendflare.contacts.sync import run_sync as sync
    return sync


def run_sync(client: Any) -> tuple[Any, float, int, int]:
    sync = full_sync_function()
    before = client.calls
    started = time.perf_counter()
    with QueryCounter() as counter:
        report = sync(client=client)
    return report, time.perf_counter() - started, client.calls - before, counter.queries


def change_emails(pks: list[int], tag: str) -> None:
    """Email changes as the receivers record them (an outbox row with the previous address)."""
    from django.contrib.auth import get_user_model

    from django_sendflare.contacts.outbox import record_change
    from django_sendflare.models import ContactChange

    for user in get_user_model().objects.filter(pk__in=pks):
        previous = user.email
        user.email = f"{tag}.{previous}"
        user.save(update_fields=["email"])
        record_change(user, str(ContactChange.Kind.SAVE), email=user.email, previous_email=previous)


def deliver_email_changes(client: Any, pks: list[int], tag: str, batch: int) -> dict[str, Any]:
    """Deliver email changes of these users; the calls, reads, writes, time and peak memory."""
    from django_sendflare.contacts.outbox import deliver_pending

    change_emails(pks, tag)
    calls, reads = client.calls, client.reads
    tracemalloc.start()
    started = time.perf_counter()
    with QueryCounter() as counter:
        report = deliver_pending(client=client, batch_size=batch)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.ok and report.count(report.results[0].outcome) == len(pks), report.summary()
    reads = client.reads - reads
    calls = client.calls - calls
    return {
        "calls": calls,
        "reads": reads,
        "writes": calls - reads,
        "s": seconds,
        "peak": peak,
        "queries": counter.queries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of users changed")
    parser.add_argument("--batch", type=int, default=100, help="email changes in one batch")
    parser.add_argument(
        "--no-email-changes",
        action="store_true",
        help="measure the full sync only (a large list: the email changes read it page by page)",
    )
    parser.add_argument(
        "--seed",
        action="store_true",
        help="load the contacts into the sandbox at start (--seed-contacts), no blind push",
    )
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        seed = os.path.join(tmp, "contacts.jsonl") if args.seed else None
        if seed:
            write_seed(seed, args.users)
        sandbox = start_sandbox(port, seed)
        try:
            run(args, port, tmp)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=10)


def run(args: argparse.Namespace, port: int, tmp: str) -> None:
    configure(port, os.path.join(tmp, "bench.sqlite3"))
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    make_users(args.users)
    client = counting_client()

    print(f"Contact sync benchmark: {args.users:,} users, sandbox on 127.0.0.1:{port}")
    if args.seed:
        print(f"  {args.users:,} contacts seeded into the sandbox (no calls)")
    else:
        seconds = blind_push(client, args.users)
        assert client.calls == args.users
        print(f"  blind push (one save per user): {args.users:,} calls in {seconds:.1f} s")

    changed = change_users(args.changed, offset=0)
    report, seconds, calls, queries = run_sync(client)
    assert report.ok and len(report.plan.updates) == changed, report
    pages = report.listing.pages_read

    changed_b = change_users(args.changed, offset=1)
    tracemalloc.start()
    report_b, _, _, _ = run_sync(client)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report_b.ok and len(report_b.plan.updates) == changed_b, report_b

    blind = args.users
    print(f"  diff sync, {changed:,} users changed ({args.changed:.0%}):")
    print(f"    API calls:   {calls:,} ({pages} list pages + {calls - pages:,} saves)")
    print(f"    per changed user: {calls / max(changed, 1):.2f} calls")
    print(f"    wall time:   {seconds:.2f} s (local server, no rate limit)")
    print(f"    queries:     {queries:,} ({queries / max(args.users, 1):.2f} per user)")
    print(f"    peak memory: {peak / 2**20:.1f} MiB (tracemalloc, second run)")
    print(f"  blind push:    {blind:,} calls (one save per user)")
    print(
        f"  at {DOCUMENTED_RATE:g} requests/s: diff sync {calls / DOCUMENTED_RATE:,.0f} s, "
        f"blind push {blind / DOCUMENTED_RATE:,.0f} s "
        f"({blind / max(calls, 1):.0f}x the calls)"
    )

    if args.no_email_changes:
        return
    # Email changes: the live status of the old address is read from the listing, once
    # per delivery batch, stopping when every old address is found. Where they sit in
    # the list decides the cost: the first user's is on page 1, the last user's on the
    # last page; the batch is spread over the whole list.
    pks = list(get_user_model().objects.order_by("pk").values_list("pk", flat=True))
    step = max(1, len(pks) // args.batch)
    rows = [
        (
            "1 change, address on the first page",
            deliver_email_changes(client, pks[:1], "a", 1),
        ),
        (
            "1 change, address on the last page",
            deliver_email_changes(client, pks[-1:], "b", 1),
        ),
        (
            f"{args.batch} changes in one batch, spread over the list",
            deliver_email_changes(client, pks[1:-1:step][: args.batch], "c", args.batch),
        ),
    ]
    print(f"  email changes on a list of {args.users:,} contacts (outbox delivery):")
    for label, figures in rows:
        print(
            f"    {label}: {figures['calls']:,} calls ({figures['reads']:,} listing reads"
            f" + {figures['writes']:,} writes), {figures['queries']:,} queries, in "
            f"{figures['s']:.2f} s, peak memory {figures['peak'] / 2**20:.1f} MiB"
        )


if __name__ == "__main__":
    main()
