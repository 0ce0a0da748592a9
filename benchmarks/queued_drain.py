"""Draining the mail queue: rate under the limit, memory over 10,000 messages, SIGKILL recovery.

Run from the repository root (about 4 minutes; Redis for the two-worker rows)::

    python benchmarks/queued_drain.py --redis-url redis://127.0.0.1:6379/6
    python benchmarks/queued_drain.py --database-url postgres://... --redis-url ...

The fake API is ``benchmarks/apiserver.py`` in its own process (HTTP, rate limit enforced with
429s like the real API). Each worker is a real ``Worker().run_once()`` (or ``run()``) in its own
process, configured like this one (SQLite file in WAL mode by default).

Part A, rate: ``--messages`` one-recipient messages at 80 ms and 300 ms latency, with one worker
and with two (two processes share the account's limit through the Redis limiter), 4 requests in
flight per worker. Reported: the accepted requests' arrival span beside the ideal span of the
same number of requests at exactly 5/s (the baseline), their ratio (target >= 96%), and the
429s the server sent (target 0).

Part B, memory: 1,000 then 10,000 messages drained with the limiter off (latency 0), the worker's
resident memory sampled as it goes. Target: flat (the 10,000 run peaks where the 1,000 run does).

Part C, crash: a worker is SIGKILLed mid-drain (rate 5/s, 300 ms latency, 4 in flight); a new
worker is started at once. Reported: the time until every recipient is settled (target < 60 s:
the dead worker's leases run out after 45 s), requests accepted twice (target 0), and the
recipients left ``unknown`` (at most the requests that were in flight).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from queued_common import ROOT, configure, database, environment, migrate, rss_mb

LIMIT = 5
TARGET_SHARE = 0.96


# The worker process.


def worker_main(loop: bool) -> None:
    options = json.loads(os.environ["SENDFLARE_BENCH"])
    configure(options)
    from django_sendflare.worker import Worker

    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            samples.append(rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    worker = Worker(contacts=False, purge=False, interval=0.2, threads=options["threads"])
    if loop:
        signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
        worker.run()
        report = None
    else:
        report = worker.run_once()
    done.set()
    samples.append(rss_mb())
    print(
        json.dumps(
            {
                "samples": samples,
                "sent": report.mail.sent if report else None,
                "messages": report.mail.messages if report else None,
            }
        )
    )


def start_workers(options: dict[str, Any], count: int, *, loop: bool = False) -> list[Any]:
    command = [sys.executable, __file__, "--worker-loop" if loop else "--worker"]
    return [
        subprocess.Popen(
            command, env=environment(options), cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]


def finish(workers: list[Any]) -> list[dict[str, Any]]:
    results = []
    for worker in workers:
        output, _ = worker.communicate(timeout=3600)
        if worker.returncode != 0:
            raise RuntimeError(f"a worker exited with {worker.returncode}: {output}")
        results.append(json.loads(output.strip().splitlines()[-1]))
    return results


# The parent.


def enqueue(count: int, *, fast: bool = False) -> None:
    from django.core import mail

    from django_sendflare.models import QueuedMessage, QueuedRecipient

    if not fast:
        for i in range(count):
            mail.send_mail("Bench", "Body", "bench@example.com", [f"r{i}@example.com"])
        return
    # 10,000 rows: written in bulk (the enqueue cost is queued_enqueue.py's business).
    for start in range(0, count, 1000):
        messages = QueuedMessage.objects.bulk_create(
            QueuedMessage(from_email="bench@example.com", subject="Bench", body="Body")
            for _ in range(start, min(count, start + 1000))
        )
        QueuedRecipient.objects.bulk_create(
            QueuedRecipient(message=m, position=0, email=f"r{m.pk}@example.com") for m in messages
        )


def clear() -> None:
    from django_sendflare.models import QueuedMessage

    QueuedMessage.objects.all().delete()


def part_a(args: argparse.Namespace, base: dict[str, Any]) -> None:
    from backend_throughput import api_server

    print("\nPart A: drain rate under the limit (5 requests/s), one and two workers")
    print(
        f"{'latency':>8} {'workers':>7} {'accepted':>8} {'span s':>7} {'ideal s':>7} "
        f"{'share':>6} {'429s':>5}  verdict"
    )
    for latency in (0.08, 0.3):
        with api_server(tls=False, latency=latency, rate_limit=LIMIT) as server:
            for workers in (1, 2):
                if workers == 2 and not args.redis_url:
                    print(f"{latency:8.2f} {workers:7}  skipped: needs --redis-url (shared limit)")
                    continue
                clear()
                server.reset()
                enqueue(args.messages)
                options = {**base, "api_url": server.url, "run_id": uuid.uuid4().hex}
                finish(start_workers(options, workers))
                stats = server.stats()
                times = sorted(stats["accepted_times"])
                span = times[-1] - times[0]
                ideal = (len(times) - 1) / LIMIT
                share = ideal / span if span else 0.0
                ok = share >= TARGET_SHARE and stats["refused"] == 0
                print(
                    f"{latency:8.2f} {workers:7} {stats['accepted']:8} {span:7.2f} {ideal:7.2f} "
                    f"{share:6.1%} {stats['refused']:5}  {'PASS' if ok else 'FAIL'}"
                )


def part_b(args: argparse.Namespace, base: dict[str, Any]) -> None:
    from backend_throughput import api_server

    print("\nPart B: memory of one worker draining, limiter off, latency 0")
    print(f"{'messages':>9} {'seconds':>8} {'msg/s':>7} {'RSS start MB':>12} {'peak MB':>8}")
    peaks = {}
    with api_server(tls=False) as server:
        for count in (1000, args.memory_messages):
            clear()
            enqueue(count, fast=True)
            options = {**base, "api_url": server.url, "rate_limit": 0}
            started = time.monotonic()
            [result] = finish(start_workers(options, 1))
            elapsed = time.monotonic() - started
            samples = result["samples"]
            peaks[count] = max(samples)
            print(
                f"{count:9} {elapsed:8.1f} {result['sent'] / elapsed:7.0f} "
                f"{samples[0]:12.1f} {max(samples):8.1f}"
            )
    small, large = peaks[1000], peaks[args.memory_messages]
    verdict = "PASS" if large <= small * 1.10 + 5 else "FAIL"
    print(f"{verdict}: peak {large:.1f} MB for {args.memory_messages} vs {small:.1f} MB for 1000")


def part_c(args: argparse.Namespace, base: dict[str, Any]) -> None:
    from backend_throughput import api_server

    from django_sendflare.models import QueuedRecipient

    print("\nPart C: a worker SIGKILLed mid-drain, a new one started at once")
    with api_server(tls=False, latency=0.3, rate_limit=LIMIT) as server:
        clear()
        enqueue(40)
        options = {**base, "api_url": server.url, "run_id": uuid.uuid4().hex}
        [first] = start_workers(options, 1, loop=True)
        while server.stats()["accepted"] < 10:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait()
        in_flight = QueuedRecipient.objects.filter(state="sending").count()
        [second] = start_workers(options, 1, loop=True)
        open_states = ["queued", "sending"]
        while QueuedRecipient.objects.filter(state__in=open_states).exists():
            if time.monotonic() - killed_at > 300:
                break
            time.sleep(0.2)
        recovered = time.monotonic() - killed_at
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
        stats = server.stats()
        accepted = collections.Counter(to for _, to, ok in stats["log"] if ok)
        twice = sum(1 for n in accepted.values() if n > 1)
        states = collections.Counter(QueuedRecipient.objects.values_list("state", flat=True))
    ok = recovered < 60 and twice == 0 and states["unknown"] <= 4
    print(
        f"recovered in {recovered:.1f} s (leases last 45 s); in flight at the kill: {in_flight}; "
        f"states: {dict(states)}; accepted twice: {twice}  {'PASS' if ok else 'FAIL'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--redis-url", help="Redis for the shared limiter of two workers")
    parser.add_argument("--messages", type=int, default=60, help="Part A's messages per run")
    parser.add_argument("--memory-messages", type=int, default=10_000)
    parser.add_argument("--parts", default="abc", help="which parts to run, e.g. 'ac'")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-loop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker or args.worker_loop:
        worker_main(loop=args.worker_loop)
        return
    base = {
        "database": database(args.database_url),
        "api_url": "http://127.0.0.1:9",
        "rate_limit": LIMIT,
        "redis_url": args.redis_url,
        "threads": 4,
    }
    configure(base)
    migrate()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for part in args.parts:
        {"a": part_a, "b": part_b, "c": part_c}[part](args, base)
    clear()


if __name__ == "__main__":
    main()
