"""Benchmark: the sandbox holding a million contacts: memory, and reading the whole list.

Fills one appId of the sandbox's store in-process (no HTTP, no JSON: the store's own records),
then reads the list page after page through the engine, as ``GET /v1/contact`` would (query
parsing, the envelope and JSON included, the socket left out). Each size runs in a fresh
subprocess so that its resident memory is its own. Printed beside each other, in one run:

* a baseline of 10,000 contacts and the large size: if reading is linear, the time per contact
  of the two is about the same;
* what the list used to cost (a copy of the whole list for every page) at the large size,
  estimated from the time of one copy times the number of pages::

    python benchmarks/sandbox_contacts.py [--contacts 1000000] [--baseline 10000] [--page-size 500]

Bounded: each subprocess is killed after ``--timeout`` seconds (default 600).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

APP_ID = "bench-app"
AUTH = {"Authorization": "Bearer bench-token"}


def rss_kib() -> int:
    """The process's resident set size now, in KiB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() // 1024


def measure(count: int, page_size: int) -> dict[str, Any]:
    """Fill ``count`` contacts, read them all back; the figures of one size."""
    from django_sendflare.sandbox.engine import Sandbox, SandboxConfig, SandboxRequest
    from django_sendflare.sandbox.store import Contact, contact_key

    sandbox = Sandbox(SandboxConfig(rate_limit=0))
    before = rss_kib()
    started = time.perf_counter()
    # The store's records, made the way a save makes them (one shared date string per day).
    book = sandbox._store.book(APP_ID)  # a benchmark may reach into the engine
    today = "2026-12-04"
    for index in range(count):
        email = f"user{index:07d}@example.com"
        data: dict[str, str | int] = {"firstName": f"User{index}", "vipLevel": index % 5}
        book.add(contact_key(email), Contact(email, "Confirmed", today, today, data))
    filled = time.perf_counter() - started
    memory = rss_kib() - before

    seen = 0
    pages = 0
    started = time.perf_counter()
    while True:
        pages += 1
        query = f"appId={APP_ID}&page={pages}&pageSize={page_size}"
        response = sandbox.handle(SandboxRequest("GET", "/v1/contact", query, AUTH))
        listed = json.loads(response.body)["data"]["list"]
        if not listed:
            break
        seen += len(listed)
    read = time.perf_counter() - started
    assert seen == count, (seen, count)

    # What each page cost before the list was kept in order: a copy of every contact.
    started = time.perf_counter()
    list(iter(book))
    one_copy = time.perf_counter() - started
    return {
        "contacts": count,
        "fill_s": filled,
        "rss_mib": memory / 1024,
        "bytes_per_contact": memory * 1024 / count,
        "pages": pages,
        "read_s": read,
        "us_per_contact": read / count * 1e6,
        "ms_per_page": read / pages * 1000,
        "old_copy_ms_per_page": one_copy * 1000,
        "old_read_s_estimate": read + one_copy * pages,
    }


def run_one(count: int, page_size: int, timeout: float) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--one", str(count), "--page-size", str(page_size)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return dict(json.loads(result.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.page_size)))
        return 0

    rows = [run_one(n, args.page_size, args.timeout) for n in (args.baseline, args.contacts)]
    print(f"{'contacts':>10} {'fill s':>7} {'RSS MiB':>8} {'B/contact':>9} {'pages':>6} "
          f"{'read s':>7} {'us/contact':>10} {'ms/page':>8} {'old read s (est.)':>18}")  # fmt: skip
    for row in rows:
        print(
            f"{row['contacts']:>10,} {row['fill_s']:>7.2f} {row['rss_mib']:>8.1f} "
            f"{row['bytes_per_contact']:>9.0f} {row['pages']:>6} {row['read_s']:>7.2f} "
            f"{row['us_per_contact']:>10.2f} {row['ms_per_page']:>8.2f} "
            f"{row['old_read_s_estimate']:>18.1f}"
        )
    small, large = rows
    ratio = large["us_per_contact"] / small["us_per_contact"]
    verdict = "PASS" if ratio < 2 else "FAIL"
    print(f"{verdict}: reading is linear (time per contact at {large['contacts']:,} is "
          f"{ratio:.2f}x that at {small['contacts']:,}; target < 2x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
