"""A local fake of the Sendflare ``POST /v1/send`` endpoint, run in its own process.

It exists so that the benchmarks measure the client against real HTTP(S) on loopback, with the
server's CPU spent in another process (``time.process_time()`` of the benchmark then counts the
client only). Run it as a script::

    python benchmarks/apiserver.py --tls --latency 0.3 --rate-limit 5

Once it listens it prints ONE line of JSON on stdout, ``{"url": ..., "ca": ...}`` (``ca``: the
path of the PEM of the throw-away CA that signed its certificate, or null without ``--tls``), and
serves until SIGTERM/SIGINT, until EOF on stdin with ``--watch-stdin`` (the parent went away),
or for at most ``--max-lifetime`` seconds.

Endpoints:

* ``POST /v1/send``: Bearer token required; answers the API's success envelope with a fresh
  ``requestId`` after ``--latency`` seconds. With ``--rate-limit N`` it accepts at most N requests
  per token in any rolling second (a sliding window over the arrival times of the requests it
  accepted in the preceding 1.0 s) and refuses the others with HTTP 429, ``Retry-After: 1`` and
  envelope code 100025, after the same latency. With ``--connect-delay`` each new connection
  waits that long before its TLS handshake, so its first request arrives late (the set-up round
  trips of a real network).
* ``GET /_stats``: counters as JSON (accepted, refused, arrival times, the server's CPU seconds).
  Times are ``time.monotonic()``: CLOCK_MONOTONIC, the same clock in every process on Linux.
* ``POST /_reset``: zeroes the counters and the rate-limit windows (between benchmark rounds).

Only ever binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WINDOW_SECONDS = 1.0
RATE_LIMITED_CODE = 100025


class FakeAPIServer(ThreadingHTTPServer):
    """Threaded HTTP/1.1 server holding the counters and the per-token sliding windows."""

    daemon_threads = True
    # Concurrent clients open a few connections at once; the default backlog of 5 is tight.
    request_queue_size = 64

    def __init__(
        self, port: int, latency: float, rate_limit: int, connect_delay: float = 0.0
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.latency = latency
        self.rate_limit = rate_limit
        self.connect_delay = connect_delay
        self.lock = threading.Lock()
        self.reset()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-answer (the crash benchmark SIGKILLs a worker) is part of
        # the experiment, not a server error: no traceback for it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def reset(self) -> None:
        """Zero every counter and window (holding the lock is the caller's job, or no thread)."""
        self.windows: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self.accepted = 0
        self.refused = 0
        self.unauthorized = 0
        self.accepted_times: list[float] = []
        self.refused_times: list[float] = []
        # (arrival, recipient, accepted) of every send: lets a diagnosis match arrivals to sends.
        self.log: list[tuple[float, str, bool]] = []
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def admit(self, token: str, now: float, recipient: str) -> bool:
        """Whether a request of ``token`` arriving at ``now`` fits the window; record it."""
        with self.lock:
            if self.rate_limit > 0:
                window = self.windows[token]
                # Keep the accepted requests of (now - 1.0 s, now]: one arriving exactly 1.0 s
                # after another no longer shares its window.
                while window and window[0] <= now - WINDOW_SECONDS:
                    window.popleft()
                if len(window) >= self.rate_limit:
                    self.refused += 1
                    self.refused_times.append(now)
                    self.log.append((now, recipient, False))
                    return False
                window.append(now)
            self.accepted += 1
            self.accepted_times.append(now)
            self.log.append((now, recipient, True))
            return True

    def stats(self) -> dict[str, Any]:
        """A JSON-able snapshot of the counters."""
        with self.lock:
            return {
                "accepted": self.accepted,
                "refused": self.refused,
                "unauthorized": self.unauthorized,
                "accepted_times": list(self.accepted_times),
                "refused_times": list(self.refused_times),
                "log": list(self.log),
                "connections": self.connections,
                "max_in_flight": self.max_in_flight,
                # All threads of this process: the server's share of the CPU.
                "cpu_seconds": time.process_time(),
                "latency": self.latency,
                "rate_limit": self.rate_limit,
                "connect_delay": self.connect_delay,
            }


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so that clients keep their connections alive, as they do with the real API.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the
    # client's delayed ACK would add ~40 ms to every response.
    disable_nagle_algorithm = True
    server: FakeAPIServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
        if self.server.connect_delay > 0:
            # Before the (lazy) TLS handshake: the client waits, as it would for the round trips
            # of TCP and TLS set-up over a real network, and its first request arrives late.
            time.sleep(self.server.connect_delay)

    def do_POST(self) -> None:
        # The arrival time is taken before reading the body: it is when the request reached us.
        now = time.monotonic()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_reset":
            with self.server.lock:
                self.server.reset()
            self._reply(200, {"ok": True})
            return
        if self.path != "/v1/send":
            self._reply(404, _envelope(404, "Not found", success=False))
            return
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            with self.server.lock:
                self.server.unauthorized += 1
            self._reply(401, _envelope(401, "Unauthorized", success=False))
            return
        try:
            payload = json.loads(body)
            missing = [k for k in ("from", "to", "subject", "body") if k not in payload]
        except (ValueError, TypeError):
            missing = ["a JSON body"]
        if missing:
            self._reply(400, _envelope(400, f"missing {', '.join(missing)}", success=False))
            return
        admitted = self.server.admit(auth[7:], now, str(payload["to"]))
        with self.server.lock:
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            if self.server.latency > 0:
                time.sleep(self.server.latency)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1
        if admitted:
            self._reply(200, _envelope(0, "Successfully"))
        else:
            self._reply(
                429,
                _envelope(RATE_LIMITED_CODE, "Too many requests", success=False),
                {"Retry-After": "1"},
            )

    def do_GET(self) -> None:
        if self.path == "/_stats":
            self._reply(200, self.server.stats())
        else:
            self._reply(404, _envelope(404, "Not found", success=False))

    def _reply(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        # One line per request on stderr would cost more CPU than the request itself.
        pass


def _envelope(code: int, message: str, *, success: bool = True) -> dict[str, Any]:
    return {
        "requestId": str(uuid.uuid4()),
        "code": code,
        "success": success and code == 0,
        "message": message,
        "ts": int(time.time() * 1000),
        "data": None,
    }


def _make_tls(server: FakeAPIServer, directory: str) -> str:
    """Serve TLS with a fresh trustme CA; return the path of the CA's PEM."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    # The handshake happens on the first read, in the connection's own thread, instead of in
    # accept() where it would hold up every other client.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    ca_path = os.path.join(directory, "ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    return ca_path


def main(argv: list[str] | None = None) -> int:
    """Parse the options, serve until told to stop, clean up the CA file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a throw-away CA")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering")
    parser.add_argument(
        "--rate-limit", type=int, default=0, help="requests per rolling second per token (0: off)"
    )
    parser.add_argument(
        "--connect-delay",
        type=float,
        default=0.0,
        help="seconds each new connection waits before its handshake (models round trips)",
    )
    parser.add_argument(
        "--max-lifetime",
        type=float,
        default=900.0,
        help="stop by itself after this many seconds (default 900)",
    )
    parser.add_argument(
        "--watch-stdin",
        action="store_true",
        help="stop at EOF on stdin (a parent that holds a pipe to it went away)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    # SIGTERM from the parent: stop cleanly so that the temporary CA file is removed.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    directory = tempfile.mkdtemp(prefix="sendflare-bench-")
    server = FakeAPIServer(args.port, args.latency, args.rate_limit, args.connect_delay)
    try:
        ca_path = _make_tls(server, directory) if args.tls else None
        scheme = "https" if args.tls else "http"
        url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        serving = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
        serving.start()
        print(json.dumps({"url": url, "ca": ca_path, "pid": os.getpid()}), flush=True)

        def watch_stdin() -> None:
            # EOF on stdin means the parent is gone: do not outlive it.
            try:
                sys.stdin.read()
            finally:
                stop.set()

        if args.watch_stdin:
            threading.Thread(target=watch_stdin, daemon=True).start()
        stop.wait(args.max_lifetime)
        server.shutdown()
        serving.join(5)
    finally:
        server.server_close()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
