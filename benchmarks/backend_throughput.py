"""Throughput of django_sendflare's EmailBackend, measured beside a baseline in the same run.

Run from the repository root::

    python benchmarks/backend_throughput.py            # the default run, about 65 s
    python benchmarks/backend_throughput.py --help

Part A, limiter off, HTTPS, no latency: messages/s and client CPU per message of a plain
``requests.Session`` loop against ``EmailBackend.send_messages()`` (default pool, and a pool of
one), alternately over a few rounds, medians reported. Target: backend >= 0.8x the plain loop.

Part B, limiter on (RATE_LIMIT 5) against a server that refuses with 429 beyond 5 requests in
any rolling second, at 80 ms and 300 ms latency: one message to 100 recipients. Targets: at least
96% of the limit, and no error (no 429) reaching the caller. Beside it, the baseline without
concurrency: a plain sequential ``requests.Session`` loop with no sleeps.

The fake API (``benchmarks/apiserver.py``) runs in its own process, so that
``time.process_time()`` here counts the client's CPU only. This is a benchmark, not a test: it
prints figures and PASS/FAIL lines and exits 0 unless something crashed.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import cProfile
import datetime
import gc
import io
import json
import os
import platform
import pstats
import selectors
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    # Run as a script from a checkout: import the django_sendflare next to this directory.
    sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

TOKEN = "bench-token-not-secret"  # noqa: S105 - a fake token for a fake local server
FROM = "bench@example.com"
SUBJECT = "Benchmark"
BODY = "Hello from the throughput benchmark. " * 8
SERVER_START_TIMEOUT = 20.0
SERVER_STOP_TIMEOUT = 5.0
# Generous, so a stalled request shows up as an error rather than a hung benchmark.
HTTP_TIMEOUT = 30.0

# Targets from the issue.
TARGET_RATIO = 0.8
TARGET_SHARE_OF_LIMIT = 0.96


def configure_django() -> None:
    """Minimal settings: the backend needs no database and no installed app."""
    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=[],
            DATABASES={},
            SENDFLARE={"API_TOKEN": TOKEN},
            DEFAULT_FROM_EMAIL=FROM,
            # Keep Django from configuring logging: the backend's warnings go to stderr as-is.
            LOGGING_CONFIG=None,
        )
        django.setup()


# The fake API in its own process.


@dataclass
class APIServer:
    """A running ``apiserver.py`` child process."""

    process: subprocess.Popen[str]
    url: str
    ca: str | None
    session: requests.Session = field(default_factory=requests.Session)

    def stats(self) -> dict[str, Any]:
        """The server's counters (``GET /_stats``)."""
        response = self.session.get(self.url + "/_stats", timeout=HTTP_TIMEOUT, verify=self._verify)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Zero the server's counters and rate-limit windows (``POST /_reset``)."""
        self.session.post(
            self.url + "/_reset", timeout=HTTP_TIMEOUT, verify=self._verify
        ).raise_for_status()

    @property
    def _verify(self) -> str | bool:
        return self.ca or True


@contextmanager
def api_server(
    *, tls: bool = True, latency: float = 0.0, rate_limit: int = 0, connect_delay: float = 0.0
) -> Iterator[APIServer]:
    """Start ``apiserver.py`` on a free port, wait until it listens, always stop it after."""
    command = [
        sys.executable,
        str(HERE / "apiserver.py"),
        "--port=0",
        f"--latency={latency}",
        f"--rate-limit={rate_limit}",
        f"--connect-delay={connect_delay}",
        "--watch-stdin",
        # A safety net only: the server is stopped below long before this.
        "--max-lifetime=900",
    ]
    if tls:
        command.append("--tls")
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT)
    )
    ca_dir: str | None = None
    try:
        info = _read_ready_line(process)
        ca = info.get("ca")
        ca_dir = os.path.dirname(ca) if ca else None
        server = APIServer(process, info["url"], ca)
        if ca:
            # requests reads it at every request (trust_env): the backend's session trusts the
            # throw-away CA without any change to django_sendflare.
            os.environ["REQUESTS_CA_BUNDLE"] = ca
        yield server
        server.session.close()
    finally:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(SERVER_STOP_TIMEOUT)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        if ca_dir and os.path.isdir(ca_dir):
            # The server removes it on a clean stop; this covers a killed one.
            shutil.rmtree(ca_dir, ignore_errors=True)


def _read_ready_line(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The JSON line the server prints once it listens, within SERVER_START_TIMEOUT."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(SERVER_START_TIMEOUT):
            raise RuntimeError(f"apiserver.py did not start within {SERVER_START_TIMEOUT}s")
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"apiserver.py exited with status {process.wait(SERVER_STOP_TIMEOUT)}")
    return json.loads(line)


# What is measured.


@dataclass
class Run:
    """One timed send of a batch."""

    label: str
    messages: int
    wall: float
    cpu: float
    server_cpu: float
    accepted: int
    refused: int
    errors: int

    @property
    def per_second(self) -> float:
        return self.messages / self.wall

    @property
    def cpu_ms_per_message(self) -> float:
        return self.cpu * 1000 / self.messages


def timed(label: str, server: APIServer, count: int, send: Callable[[], int]) -> Run:
    """Run ``send`` (which returns its error count) with wall clock, this process's CPU time
    (all threads) and the server's accepted/refused/CPU counters around it."""
    before = server.stats()
    # A collection triggered by the previous run's garbage would be billed to this one.
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    errors = send()
    wall1, cpu1 = time.perf_counter(), time.process_time()
    after = server.stats()
    return Run(
        label=label,
        messages=count,
        wall=wall1 - wall0,
        cpu=cpu1 - cpu0,
        server_cpu=after["cpu_seconds"] - before["cpu_seconds"],
        accepted=after["accepted"] - before["accepted"],
        refused=after["refused"] - before["refused"],
        errors=errors,
    )


def payloads(count: int, prefix: str) -> list[dict[str, str]]:
    """The JSON bodies the backend would send: one recipient each."""
    return [
        {"from": FROM, "to": f"{prefix}{i}@example.com", "subject": SUBJECT, "body": BODY}
        for i in range(count)
    ]


def plain_loop(session: requests.Session, url: str, bodies: list[dict[str, str]]) -> int:
    """The baseline: one request after another on one pooled session; returns the failures.

    It checks what any caller must (HTTP status and the envelope's ``success``) and nothing else.
    """
    headers = {"Authorization": f"Bearer {TOKEN}"}
    failures = 0
    for body in bodies:
        response = session.post(url + "/v1/send", json=body, headers=headers, timeout=HTTP_TIMEOUT)
        if response.status_code != 200 or not response.json().get("success"):
            failures += 1
    return failures


def make_backend(url: str, *, rate_limit: float, workers: int) -> Any:
    """An open EmailBackend for the local server: its client (and pooled connections) stays
    open across the rounds, as with ``with get_connection() as connection:``."""
    from django_sendflare.backends import EmailBackend

    backend = EmailBackend(
        api_token=TOKEN,
        api_url=url,
        rate_limit=rate_limit,
        max_concurrent_requests=workers,
        # Only 429s are retried here; three are plenty, none is expected with the limiter on.
        max_retries=3,
    )
    backend.open()
    return backend


def messages_for(count: int, prefix: str) -> list[Any]:
    """``count`` EmailMessages of one recipient each (built before the clock starts)."""
    from django.core.mail import EmailMessage

    return [EmailMessage(SUBJECT, BODY, FROM, [f"{prefix}{i}@example.com"]) for i in range(count)]


def backend_send(backend: Any, messages: list[Any]) -> int:
    """Send through the backend; return how many recipients failed (reached the caller)."""
    from django_sendflare.exceptions import SendflareAPIError

    # A failure raises after the whole batch: it is counted from the statuses below.
    with contextlib.suppress(SendflareAPIError):
        backend.send_messages(messages)
    return sum(
        1
        for message in messages
        for recipient in message.sendflare_status.recipients.values()
        if recipient.status != "sent"
    )


# Part A.


@dataclass
class PartA:
    """Medians of the rounds of Part A, per variant."""

    messages: int
    rounds: int
    workers: int
    runs: dict[str, list[Run]]

    def median(self, label: str, what: str) -> float:
        return statistics.median(getattr(run, what) for run in self.runs[label])


PLAIN = "plain requests.Session loop"
BACKEND = "EmailBackend, default pool"
BACKEND_1 = "EmailBackend, MAX_CONCURRENT_REQUESTS=1"


def part_a(count: int, rounds: int, workers: int, profile: bool) -> PartA:
    """Limiter off, HTTPS, no latency: the plain loop and the backend, alternately."""
    print(f"\nPart A: limiter off, HTTPS, no latency, {count} messages x {rounds} rounds ...")
    runs: dict[str, list[Run]] = {PLAIN: [], BACKEND: [], BACKEND_1: []}
    with api_server(tls=True) as server:
        session = requests.Session()
        backends = {
            BACKEND: make_backend(server.url, rate_limit=0, workers=workers),
            BACKEND_1: make_backend(server.url, rate_limit=0, workers=1),
        }

        def run(label: str, n: int, tag: str) -> Run:
            if label == PLAIN:
                bodies = payloads(n, tag)
                return timed(label, server, n, lambda: plain_loop(session, server.url, bodies))
            messages = messages_for(n, tag)
            return timed(label, server, n, lambda: backend_send(backends[label], messages))

        # Warm-up: open the pooled TLS connections and import everything lazily imported, so
        # that no variant pays for them inside its timing.
        for label in runs:
            run(label, max(workers * 4, 20), "warmup")
        for round_ in range(rounds):
            # Rotate the order: whoever runs first after a pause is not always the same one.
            labels = list(runs)
            labels = labels[round_ % len(labels) :] + labels[: round_ % len(labels)]
            for label in labels:
                result = run(label, count, f"r{round_}-")
                runs[label].append(result)
                print(
                    f"  round {round_ + 1} {label:<40} {result.per_second:8.0f} msg/s "
                    f"{result.cpu_ms_per_message:6.2f} ms CPU/msg  errors {result.errors}"
                )
        if profile:
            _profile_backend(backends[BACKEND_1], count)
        session.close()
    return PartA(count, rounds, workers, runs)


def _profile_backend(backend: Any, count: int) -> None:
    """Where the backend's CPU goes (pool of one, so that the profile sees every call)."""
    messages = messages_for(count, "profile-")
    profiler = cProfile.Profile()
    profiler.enable()
    backend_send(backend, messages)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(35)
    print("\ncProfile of the backend (MAX_CONCURRENT_REQUESTS=1), top 35 by cumulative time:")
    print(out.getvalue())


# Part B.


@dataclass
class PartBResult:
    """The rate-limited send at one latency, with its baseline."""

    latency: float
    connect_delay: float
    workers: int
    recipients: int
    rate_limit: int
    client_rate_limit: float
    wall: float
    accepted: int
    refused: int
    errors: int
    peak_window: int
    server_span: float
    baseline_recipients: int
    baseline_wall: float
    baseline_accepted: int
    baseline_refused: int

    @property
    def achieved(self) -> float:
        """Accepted requests per second of the send_messages() call."""
        return self.accepted / self.wall

    @property
    def share(self) -> float:
        return self.achieved / self.rate_limit

    @property
    def ideal_wall(self) -> float:
        """Perfect spacing: the last start (n - 1) / rate after the first, plus one latency."""
        return (self.recipients - 1) / self.rate_limit + self.latency

    @property
    def baseline_rate(self) -> float:
        return self.baseline_accepted / self.baseline_wall

    @property
    def baseline_projected_wall(self) -> float:
        """The baseline's time for ``recipients`` accepted requests, at the rate it showed."""
        return self.recipients / self.baseline_rate if self.baseline_accepted else float("inf")


def peak_in_window(times: list[float], window: float = 1.0) -> int:
    """The most arrivals in any half-open window ``(t - window, t]`` (the server's rule)."""
    times = sorted(times)
    peak = 0
    for i, t in enumerate(times):
        first = bisect.bisect_right(times, t - window)
        peak = max(peak, i + 1 - first)
    return peak


def part_b(
    latency: float,
    recipients: int,
    rate_limit: int,
    client_rate_limit: float,
    workers: int,
    baseline_recipients: int,
    connect_delay: float = 0.0,
) -> PartBResult:
    """Limiter on (``client_rate_limit``) against a server enforcing ``rate_limit``/rolling s."""
    print(
        f"\nPart B: RATE_LIMIT {client_rate_limit:g}, server enforcing {rate_limit}/s, latency "
        f"{latency * 1000:.0f} ms, one message to {recipients} recipients ..."
    )
    with api_server(
        tls=True, latency=latency, rate_limit=rate_limit, connect_delay=connect_delay
    ) as server:
        backend = make_backend(server.url, rate_limit=client_rate_limit, workers=workers)
        from django.core.mail import EmailMessage

        message = EmailMessage(
            SUBJECT, BODY, FROM, [f"b{i}@example.com" for i in range(recipients)]
        )
        server.reset()
        run = timed("backend", server, recipients, lambda: backend_send(backend, [message]))
        stats = server.stats()
        times = stats["accepted_times"]
        print(
            f"  backend: {run.wall:.2f} s, accepted {run.accepted}, 429s sent {run.refused}, "
            f"errors to the caller {run.errors}"
        )

        # The baseline: no concurrency, no pacing. The reset empties the server's window, so
        # that it does not start in the backend's last second.
        server.reset()
        session = requests.Session()
        bodies = payloads(baseline_recipients, "seq-")
        baseline = timed(
            "plain sequential loop",
            server,
            baseline_recipients,
            lambda: plain_loop(session, server.url, bodies),
        )
        session.close()
        print(
            f"  plain sequential loop: {baseline_recipients} requests in {baseline.wall:.2f} s, "
            f"accepted {baseline.accepted}, 429s {baseline.refused}"
        )
    return PartBResult(
        latency=latency,
        connect_delay=connect_delay,
        workers=workers,
        recipients=recipients,
        rate_limit=rate_limit,
        client_rate_limit=client_rate_limit,
        wall=run.wall,
        accepted=run.accepted,
        refused=run.refused,
        errors=run.errors,
        peak_window=peak_in_window(times),
        server_span=(max(times) - min(times)) if times else 0.0,
        baseline_recipients=baseline_recipients,
        baseline_wall=baseline.wall,
        baseline_accepted=baseline.accepted,
        baseline_refused=baseline.refused,
    )


# The report.


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report_a(a: PartA) -> list[str]:
    """The table of Part A and its verdict lines."""
    lines = [
        "",
        f"Part A: limiter off, HTTPS to 127.0.0.1, no latency; {a.messages} messages of one "
        f"recipient, median of {a.rounds} alternating rounds",
        f"  {'':<42}{'msg/s':>9}{'client CPU':>14}{'server CPU':>14}{'vs plain':>10}",
        f"  {'':<42}{'':>9}{'ms/msg':>14}{'ms/msg':>14}{'msg/s':>10}",
    ]
    plain_rate = a.median(PLAIN, "per_second")
    for label in (PLAIN, BACKEND, BACKEND_1):
        rate = a.median(label, "per_second")
        server_cpu = statistics.median(r.server_cpu * 1000 / r.messages for r in a.runs[label])
        name = label if label != BACKEND else f"{label} ({a.workers} workers)"
        lines.append(
            f"  {name:<42}{rate:9.0f}{a.median(label, 'cpu_ms_per_message'):14.3f}"
            f"{server_cpu:14.3f}{rate / plain_rate:9.2f}x"
        )
    errors = sum(r.errors for runs in a.runs.values() for r in runs)
    ratio = a.median(BACKEND, "per_second") / plain_rate
    ratio_1 = a.median(BACKEND_1, "per_second") / plain_rate
    lines += [
        f"  errors in all rounds: {errors}",
        f"  {verdict(ratio >= TARGET_RATIO)}  backend (default pool) >= {TARGET_RATIO}x the "
        f"plain loop's msg/s: {ratio:.2f}x",
        f"  {verdict(ratio_1 >= TARGET_RATIO)}  (like for like) backend with a pool of one >= "
        f"{TARGET_RATIO}x: {ratio_1:.2f}x",
    ]
    return lines


def report_b(results: list[PartBResult]) -> list[str]:
    """The table of Part B and its verdict lines."""
    if not results:
        return []
    first = results[0]
    lines = [
        "",
        f"Part B: RATE_LIMIT {first.client_rate_limit:g}, MAX_CONCURRENT_REQUESTS "
        f"{first.workers}; HTTPS server allowing {first.rate_limit} "
        f"requests in any rolling 1 s (sliding window, 429 + Retry-After: 1 beyond);",
        f"  one message to {first.recipients} recipients. achieved = requests accepted by the "
        "server / wall time of the send_messages() call",
        "  (which spans the first request's start to the last response); ideal = "
        "(n - 1) / limit + latency.",
        *(
            [
                f"  Each new connection held {first.connect_delay * 1000:.0f} ms before its "
                "TLS handshake (--connect-delay)."
            ]
            if first.connect_delay
            else []
        ),
        f"  {'latency':>8}{'elapsed':>9}{'ideal':>8}{'achieved':>10}{'of limit':>10}"
        f"{'429s sent':>11}{'errors':>8}{'peak/1s':>9}",
    ]
    for r in results:
        lines.append(
            f"  {r.latency * 1000:6.0f}ms{r.wall:8.2f}s{r.ideal_wall:7.2f}s"
            f"{r.achieved:8.2f}/s{r.share * 100:9.1f}%{r.refused:11d}{r.errors:8d}"
            f"{r.peak_window:9d}"
        )
    lines += [
        "",
        "  Baseline without concurrency: a plain requests.Session loop, one request after "
        "another, no sleeps, no retry of a 429;",
        f"  'time for {first.recipients}' = {first.recipients} / its accepted/s (measured when "
        f"it sent {first.recipients} requests, projected when fewer).",
        f"  {'latency':>8}{'requests':>10}{'elapsed':>9}{'accepted':>10}{'429s':>6}"
        f"{'accepted/s':>12}{'of limit':>10}{'time for ' + str(first.recipients):>14}",
    ]
    for r in results:
        notes = []
        if r.baseline_recipients != r.recipients:
            notes.append("projected")
        if r.baseline_refused:
            notes.append(f"{r.baseline_refused} sends refused and lost")
        lines.append(
            f"  {r.latency * 1000:6.0f}ms{r.baseline_recipients:10d}{r.baseline_wall:8.2f}s"
            f"{r.baseline_accepted:10d}{r.baseline_refused:6d}{r.baseline_rate:10.2f}/s"
            f"{r.baseline_rate / r.rate_limit * 100:9.1f}%{r.baseline_projected_wall:13.1f}s"
            + (f"  ({', '.join(notes)})" if notes else "")
        )
    for r in results:
        lines.append(
            f"  {verdict(r.share >= TARGET_SHARE_OF_LIMIT)}  {r.latency * 1000:.0f} ms: >= "
            f"{TARGET_SHARE_OF_LIMIT:.0%} of the limit: {r.share:.1%}"
        )
        lines.append(
            f"  {verdict(r.errors == 0)}  {r.latency * 1000:.0f} ms: no error (429) reaches the "
            f"caller: {r.errors} failed recipients ({r.refused} 429s retried inside the client)"
        )
    return lines


def header() -> list[str]:
    """When and where the figures were taken."""
    import urllib3

    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return [
        f"django-sendflare backend throughput, {now}",
        f"  {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Django {django.get_version()}, requests {requests.__version__}, "
        f"urllib3 {urllib3.__version__}",
    ]


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the parts, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="Part A batch size (300)")
    parser.add_argument("--rounds", type=int, default=5, help="Part A rounds (5)")
    parser.add_argument(
        "--workers", type=int, default=4, help="MAX_CONCURRENT_REQUESTS of the backend (4)"
    )
    parser.add_argument("--recipients", type=int, default=100, help="Part B recipients (100)")
    parser.add_argument(
        "--rate-limit", type=int, default=5, help="Part B: the server's limit, req/s (5)"
    )
    parser.add_argument(
        "--client-rate-limit",
        type=float,
        help="Part B: the backend's RATE_LIMIT setting (default: the server's limit); e.g. 4.9 "
        "to see the effect of a small safety margin",
    )
    parser.add_argument(
        "--latencies",
        default="0.08,0.3",
        help="Part B server latencies in seconds, comma-separated (0.08,0.3)",
    )
    parser.add_argument(
        "--with-sequential-baseline",
        action="store_true",
        help="run Part B's baseline with every recipient at every latency (adds ~25 s); by "
        "default it runs in full only below 100 ms latency and on --baseline-recipients above",
    )
    parser.add_argument(
        "--baseline-recipients",
        type=int,
        default=20,
        help="Part B baseline requests at high latency, projected to --recipients (20)",
    )
    parser.add_argument(
        "--connect-delay",
        type=float,
        default=0.0,
        help="Part B: seconds the server holds each new connection before its TLS handshake, "
        "as round trips would over a real network (0)",
    )
    parser.add_argument("--skip-a", action="store_true", help="skip Part A")
    parser.add_argument("--skip-b", action="store_true", help="skip Part B")
    parser.add_argument("--profile", action="store_true", help="cProfile the backend in Part A")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if min(args.messages, args.rounds, args.workers, args.recipients, args.rate_limit) < 1:
        parser.error("counts must be >= 1")
    if args.client_rate_limit is not None and args.client_rate_limit <= 0:
        parser.error("--client-rate-limit must be > 0")

    configure_django()
    lines = header()
    print("\n".join(lines))
    results: dict[str, Any] = {}
    if not args.skip_a:
        a = part_a(args.messages, args.rounds, args.workers, args.profile)
        lines += report_a(a)
        results["part_a"] = {label: [asdict(r) for r in runs] for label, runs in a.runs.items()}
    b_results = []
    if not args.skip_b:
        for latency in (float(x) for x in args.latencies.split(",")):
            full = args.with_sequential_baseline or latency < 0.1
            baseline = args.recipients if full else min(args.baseline_recipients, args.recipients)
            b_results.append(
                part_b(
                    latency,
                    args.recipients,
                    args.rate_limit,
                    args.client_rate_limit or args.rate_limit,
                    args.workers,
                    baseline,
                    args.connect_delay,
                )
            )
        lines += report_b(b_results)
        results["part_b"] = [asdict(r) for r in b_results]
    print("\n" + "=" * 100)
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
