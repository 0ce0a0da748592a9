"""A fleet of processes sharing the Redis rate limiter, against an API that counts arrivals.

Run from the repository root, with Redis running (db 2 by default)::

    python benchmarks/fleet_limiter.py                    # about 5 minutes
    python benchmarks/fleet_limiter.py --with-start-slots # also the old design: about 10 minutes
    python benchmarks/fleet_limiter.py --help

The fake API (``benchmarks/apiserver.py``, HTTPS on 127.0.0.1) accepts at most 5 requests of a
token in any rolling second and answers 429 beyond; it holds every NEW connection 160 ms before
its TLS handshake (``--connect-delay``), as the round trips of a real network would, and answers
after 80 ms or 300 ms. For each latency, 1, 4 and 8 worker processes (fresh, so every pooled
connection starts cold) share ``RedisRateLimiter`` and send ``--requests`` recipients between
them, each through ``EmailBackend`` with its default pool of 4 threads; they start together. The
one-process run is the baseline in the same run. Reported: 429s the server sent (retried in the
client), the share of the limit reached (requests accepted / wall time from the common start to
the last answer), errors that reached the caller, the most arrivals in any rolling second.
Targets (issue 9): 0 429s and >= 96% of the limit at every fleet size and latency.

``--with-start-slots`` runs the same fleets with the slot taken before ``session.request()``
(the design before the fix: slots space request starts, a cold connection's first request
arrives a handshake after its slot).

This is a benchmark, not a test: it prints figures and PASS/FAIL lines and exits 0 unless
something crashed. Every process it starts is bounded in time and stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from backend_throughput import (  # noqa: E402
    BODY,
    FROM,
    SUBJECT,
    TOKEN,
    api_server,
    header,
    peak_in_window,
    verdict,
)

TARGET_SHARE_OF_LIMIT = 0.96
WORKER_READY_TIMEOUT = 120.0
WORKER_LIFETIME = 600
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/2"


# The worker: one process of the fleet.


def worker_main(config: dict[str, Any]) -> int:
    """Send ``config['recipients']`` through the backend once the parent says go."""
    # Never outlive a parent that stopped caring.
    signal.alarm(WORKER_LIFETIME)
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=[],
        DATABASES={},
        LOGGING_CONFIG=None,
        DEFAULT_FROM_EMAIL=FROM,
        SENDFLARE={
            "API_TOKEN": TOKEN,
            "API_URL": config["url"],
            "RATE_LIMIT": config["rate_limit"],
            "RATE_LIMITER": "django_sendflare.ratelimit.RedisRateLimiter",
            "RATE_LIMITER_OPTIONS": {"url": config["redis_url"], "prefix": config["prefix"]},
            "MAX_CONCURRENT_REQUESTS": config["workers"],
            "MAX_RETRIES": 3,
        },
    )
    django.setup()
    from django.core.mail import EmailMessage

    from django_sendflare.backends import EmailBackend
    from django_sendflare.exceptions import SendflareAPIError

    if config["start_slots"]:
        _take_slots_at_request_start()
    message = EmailMessage(SUBJECT, BODY, FROM, config["recipients"])
    backend = EmailBackend()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    started = time.monotonic()
    with contextlib.suppress(SendflareAPIError):  # counted from the statuses below
        backend.send_messages([message])
    finished = time.monotonic()
    failed = sum(
        1 for status in message.sendflare_status.recipients.values() if status.status != "sent"
    )
    print(json.dumps({"started": started, "finished": finished, "failed": failed}), flush=True)
    return 0


def _take_slots_at_request_start() -> None:
    """The design before the fix: the slot is taken before the request (and its connection)
    starts, as the client did until the transport took it on an open connection."""
    from django_sendflare.client import SendflareClient

    attempt = SendflareClient._attempt

    def slot_then_attempt(self: SendflareClient, *args: Any, **kwargs: Any) -> Any:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(self._sleep)
        return attempt(self, *args, **kwargs)

    SendflareClient._attempt = slot_then_attempt  # type: ignore[method-assign]
    SendflareClient._take_slot = lambda self: None  # type: ignore[method-assign]
    SendflareClient._sent = lambda self: None  # type: ignore[method-assign]


# The parent: one fleet run.


@dataclass
class FleetRun:
    """One fleet of ``processes`` sending ``requests`` recipients at one latency."""

    design: str
    latency: float
    processes: int
    requests: int
    rate_limit: int
    connect_delay: float
    wall: float
    accepted: int
    refused: int
    errors: int
    peak_window: int
    connections: int
    first_arrival: float
    accepted_span: float
    load: float

    @property
    def share(self) -> float:
        return self.accepted / self.wall / self.rate_limit

    @property
    def sustained_share(self) -> float:
        """The spacing alone: (accepted - 1) over first to last accepted arrival, per limit."""
        if self.accepted < 2 or self.accepted_span <= 0:
            return float("nan")
        return (self.accepted - 1) / self.accepted_span / self.rate_limit

    @property
    def ideal_wall(self) -> float:
        """Perfect spacing after one handshake: (n - 1) / limit + handshake + latency."""
        return (self.requests - 1) / self.rate_limit + self.connect_delay + self.latency


def run_fleet(
    server: Any,
    *,
    design: str,
    latency: float,
    processes: int,
    requests_total: int,
    rate_limit: int,
    connect_delay: float,
    workers: int,
    redis_url: str,
) -> FleetRun:
    """Start the fleet, let it go at once, collect its figures and the server's."""
    prefix = f"sendflare-bench:{uuid.uuid4()}:"
    shares = [
        requests_total // processes + (i < requests_total % processes) for i in range(processes)
    ]
    children: list[subprocess.Popen[str]] = []
    try:
        for index, count in enumerate(shares):
            config = {
                "url": server.url,
                "rate_limit": rate_limit,
                "redis_url": redis_url,
                "prefix": prefix,
                "workers": workers,
                "start_slots": design == "start slots",
                "recipients": [f"p{index}-{i}@example.com" for i in range(count)],
            }
            children.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", json.dumps(config)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=str(ROOT),
                )
            )
        for child in children:
            line = _read_line(child, WORKER_READY_TIMEOUT)
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not start: {line!r}")
        server.reset()
        go = time.monotonic()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        deadline = requests_total / rate_limit * 3 + 60
        results = [json.loads(_read_line(child, deadline)) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
            child.wait(10)
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
    stats = server.stats()
    times = stats["accepted_times"]
    arrivals = times + stats["refused_times"]
    return FleetRun(
        design=design,
        latency=latency,
        processes=processes,
        requests=requests_total,
        rate_limit=rate_limit,
        connect_delay=connect_delay,
        wall=max(r["finished"] for r in results) - go,
        accepted=stats["accepted"],
        refused=stats["refused"],
        errors=sum(r["failed"] for r in results),
        peak_window=peak_in_window(times),
        connections=stats["connections"],
        first_arrival=(min(arrivals) - go) if arrivals else float("nan"),
        accepted_span=(max(times) - min(times)) if times else 0.0,
        # The machine is shared: the 1-minute load average at the end says how busy it was.
        load=os.getloadavg()[0],
    )


def _read_line(child: subprocess.Popen[str], timeout: float) -> str:
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"a worker said nothing within {timeout:.0f} s")
    return child.stdout.readline()


def _raise_priority(pid: int, nice: int) -> None:
    """Run the fake API ahead of everything else on this machine: it stands for a server
    elsewhere, whose arrival stamps a busy client machine does not delay."""
    if nice == 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError as error:
        print(f"  (the fake API keeps its priority: {error}; its arrival stamps may lag)")


def redis_reachable(url: str) -> str | None:
    """None when Redis answers a PING, else why not."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as error:
        return f"{type(error).__name__}: {error}"
    return None


# The report.


def report(runs: list[FleetRun], args: argparse.Namespace) -> list[str]:
    lines = [
        "",
        f"Fleet of processes sharing RedisRateLimiter (RATE_LIMIT {args.rate_limit}, "
        f"MAX_CONCURRENT_REQUESTS {args.workers} each), {args.requests} recipients between them;",
        f"  HTTPS server allowing {args.rate_limit} requests in any rolling 1 s (429 + "
        f"Retry-After: 1 beyond), each NEW connection held {args.connect_delay * 1000:.0f} ms "
        "before its TLS handshake; every process starts with cold connections; the server runs at "
        f"nice {args.server_nice}.",
        "  of limit = accepted / (common start -> last answer) / limit; ideal = (n - 1) / limit "
        "+ handshake + latency; errors = failed recipients reaching the caller;",
        "  sustained = (accepted - 1) / (first to last accepted arrival) / limit: the spacing "
        "alone, without the cold start; load = 1-minute load average after the run (2 cores).",
        f"  {'design':<16}{'latency':>8}{'procs':>6}{'elapsed':>9}{'ideal':>8}{'of limit':>10}"
        f"{'sustained':>11}{'429s':>6}{'errors':>8}{'peak/1s':>9}{'conns':>7}"
        f"{'1st arrival':>13}{'load':>6}",
    ]
    for run in runs:
        lines.append(
            f"  {run.design:<16}{run.latency * 1000:6.0f}ms{run.processes:6d}{run.wall:8.2f}s"
            f"{run.ideal_wall:7.2f}s{run.share * 100:9.1f}%{run.sustained_share * 100:10.1f}%"
            f"{run.refused:6d}{run.errors:8d}"
            f"{run.peak_window:9d}{run.connections:7d}{run.first_arrival * 1000:10.0f} ms"
            f"{run.load:6.1f}"
        )
    for run in runs:
        if run.design != "open connection":
            continue
        where = f"{run.latency * 1000:.0f} ms, {run.processes} process(es)"
        lines.append(
            f"  {verdict(run.refused == 0 and run.errors == 0)}  {where}: no 429: "
            f"{run.refused} 429s, {run.errors} errors reaching the caller"
        )
        lines.append(
            f"  {verdict(run.share >= TARGET_SHARE_OF_LIMIT)}  {where}: >= "
            f"{TARGET_SHARE_OF_LIMIT:.0%} of the limit: {run.share:.1%}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--processes", default="1,4,8", help="fleet sizes (1,4,8)")
    parser.add_argument("--latencies", default="0.08,0.3", help="server latencies, s (0.08,0.3)")
    parser.add_argument("--requests", type=int, default=200, help="recipients per fleet (200)")
    parser.add_argument("--rate-limit", type=int, default=5, help="requests/s, both sides (5)")
    parser.add_argument(
        "--connect-delay", type=float, default=0.16, help="handshake delay of a new connection"
    )
    parser.add_argument("--workers", type=int, default=4, help="MAX_CONCURRENT_REQUESTS (4)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
        help=f"the shared limiter's Redis (REDIS_URL, else {DEFAULT_REDIS_URL})",
    )
    parser.add_argument(
        "--with-start-slots",
        action="store_true",
        help="also run the design before the fix (slot taken before the request starts)",
    )
    parser.add_argument(
        "--server-nice",
        type=int,
        default=-10,
        help="scheduling priority of the fake API process (-10; needs root, else left as is); "
        "0 to leave it competing with the clients and everything else",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(json.loads(args.worker))

    import django

    lines = header()
    lines[0] = lines[0].replace("backend throughput", "fleet limiter")
    print("\n".join(lines))
    problem = redis_reachable(args.redis_url)
    if problem:
        print(f"Redis at {args.redis_url.rsplit('@', 1)[-1]} does not answer ({problem}).")
        return 1
    print(f"  Redis: {args.redis_url.rsplit('@', 1)[-1]}, Django {django.get_version()}")
    designs = ["open connection"] + (["start slots"] if args.with_start_slots else [])
    runs: list[FleetRun] = []
    for latency in (float(x) for x in args.latencies.split(",")):
        with api_server(
            tls=True,
            latency=latency,
            rate_limit=args.rate_limit,
            connect_delay=args.connect_delay,
        ) as server:
            _raise_priority(server.process.pid, args.server_nice)
            for design in designs:
                for processes in (int(x) for x in args.processes.split(",")):
                    print(
                        f"\n{design}: latency {latency * 1000:.0f} ms, {processes} process(es), "
                        f"{args.requests} recipients ...",
                        flush=True,
                    )
                    run = run_fleet(
                        server,
                        design=design,
                        latency=latency,
                        processes=processes,
                        requests_total=args.requests,
                        rate_limit=args.rate_limit,
                        connect_delay=args.connect_delay,
                        workers=args.workers,
                        redis_url=args.redis_url,
                    )
                    runs.append(run)
                    print(
                        f"  {run.wall:.2f} s, {run.share:.1%} of the limit, {run.refused} 429s, "
                        f"{run.errors} errors, peak {run.peak_window}/s",
                        flush=True,
                    )
    lines += report(runs, args)
    print("\n" + "=" * 100)
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([run.__dict__ for run in runs], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
