"""sendflare_status and the metrics scrape on a large mail log (PostgreSQL), beside COUNT(*).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test_g python benchmarks/status.py \\
        [--rows 1000000] [--due 2000] [--repeat 5]

Fills the mail log with ``--rows`` recipients (one message each: mostly sent, some failed and
unknown, ``--due`` queued and due) in two INSERT ... SELECT FROM generate_series statements,
VACUUM ANALYZEs, then times, best of ``--repeat``: a plain ``SELECT COUNT(*)`` of the
recipients (the baseline), ``status.collect()`` (with its query count) and the metrics' scrape.
The database's tables are emptied first and left filled: use a database of its own.
"""

from __future__ import annotations

import argparse
import os
import time

from queued_common import configure, database, migrate


def fill(rows: int, due: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE django_sendflare_queuedrecipient, django_sendflare_queuedmessage")
        cursor.execute(
            """INSERT INTO django_sendflare_queuedmessage
               (id, mailer, from_email, subject, body, state, attempts, next_attempt_at,
                last_error, created_at, updated_at, lease_token)
               SELECT g, '', 'f@example.com', 'S', 'B',
                      CASE WHEN g <= %s THEN 'pending' ELSE 'done' END, 0,
                      now() - interval '1 minute', '', now(), now(), ''
               FROM generate_series(1, %s) g""",
            [due, rows],
        )
        cursor.execute(
            """INSERT INTO django_sendflare_queuedrecipient
               (message_id, position, email, state, attempts, request_id, error, updated_at)
               SELECT g, 0, 'r' || g || '@example.com',
                      CASE WHEN g <= %s THEN 'queued' WHEN g %% 100 = 0 THEN 'failed'
                           WHEN g %% 1000 = 1 THEN 'unknown' ELSE 'sent' END,
                      1, '', '', now()
               FROM generate_series(1, %s) g""",
            [due, rows],
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('django_sendflare_queuedmessage', 'id'), %s)",
            [rows],
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE django_sendflare_queuedrecipient")
        cursor.execute("VACUUM ANALYZE django_sendflare_queuedmessage")


def best(repeat: int, work) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url or not url.startswith("postgres"):
        parser.error("set DATABASE_URL to a PostgreSQL database of its own")
    configure({"database": database(url), "api_url": "http://127.0.0.1:9", "rate_limit": 0})
    migrate()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_sendflare import status
    from django_sendflare.metrics import QueueCollector

    start = time.perf_counter()
    fill(args.rows, args.due)
    print(f"filled {args.rows} recipients in {time.perf_counter() - start:.1f} s")

    def count() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM django_sendflare_queuedrecipient")

    collector = QueueCollector()
    with CaptureQueriesContext(connection) as queries:
        figures = status.collect()
    print(f"recipients: {figures.mail.recipients}; due messages {figures.mail.due_messages}")
    print(f"baseline COUNT(*):        {best(args.repeat, count) * 1000:7.1f} ms")
    print(
        f"status.collect():         {best(args.repeat, status.collect) * 1000:7.1f} ms, "
        f"{len(queries)} queries"
    )
    scrape = best(args.repeat, lambda: list(collector.collect()))
    print(f"metrics scrape (gauges):  {scrape * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
