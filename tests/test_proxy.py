"""Through a real HTTP proxy on loopback: requests arrive, and each takes its limiter slot only
once its connection (through the proxy, and for HTTPS through the tunnel) is open."""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
import trustme

from django_sendflare.client import SendflareClient
from django_sendflare.ratelimit import RateLimiter

from .localserver import RecordingServer, recording_server, serving


class LoopbackProxy(socketserver.ThreadingTCPServer):
    """A forward proxy: ``CONNECT host:port`` tunnels, and absolute-URI requests forwarded.

    Either way, once the first line names the origin, the bytes are piped both ways until one
    side closes. Only loopback origins are served.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.lock = threading.Lock()
        self.connections = 0
        self.first_lines: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: LoopbackProxy
    request: socket.socket

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        first = _read_line(self.request)
        method, target, _ = first.split(" ", 2)
        with self.server.lock:
            self.server.first_lines.append(f"{method} {target}")
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
        else:
            parts = urlsplit(target)
            host, port = parts.hostname or "", str(parts.port or 80)
        if host not in ("127.0.0.1", "localhost"):
            self.request.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection((host, int(port)), timeout=5) as upstream:
            if method == "CONNECT":
                while _read_line(self.request) not in ("\r\n", "\n", ""):
                    pass  # the CONNECT request's headers
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(first.encode("latin-1"))
            _pipe(self.request, upstream)


def _read_line(sock: socket.socket) -> str:
    """One line, read a byte at a time: nothing after it may be taken from the socket."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            break
        line += byte
    return line.decode("latin-1")


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until a side closes (or both are idle for 5 s)."""
    sockets = [client, upstream]
    while True:
        readable, _, _ = select.select(sockets, [], [], 5)
        if not readable:
            return
        for source in readable:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            (upstream if source is client else client).sendall(data)


def loopback_proxy() -> contextlib.AbstractContextManager[LoopbackProxy]:
    return serving(LoopbackProxy())


class SlotWatchingLimiter(RateLimiter):
    """Notes, at each slot, whether ``opened()`` says the request's connection is open."""

    def __init__(self, opened: Callable[[], bool]) -> None:
        super().__init__(rate=1000)
        self.opened = opened
        self.open_at_slot: list[bool] = []

    def reserve(self) -> float:
        # The far side counts a connection when its thread takes it up, a few milliseconds
        # after the connect; one not opened before the slot cannot open while this waits.
        deadline = time.monotonic() + 5.0
        while not self.opened() and time.monotonic() < deadline:
            time.sleep(0.005)
        self.open_at_slot.append(self.opened())
        return 0.0

    def pause(self, seconds: float) -> None:
        pass


def serve_tls(server: RecordingServer, directory: str) -> str:
    """Make ``server`` speak TLS with a fresh trustme CA; return the path of the CA's PEM."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    path = f"{directory}/ca.pem"
    ca.cert_pem.write_to_path(path)
    return path


@pytest.fixture
def proxy_env(monkeypatch):
    """No proxy variables but those a test sets (the machine's own are not ours to use)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def send_two(client: SendflareClient) -> None:
    for to in ("a@example.com", "b@example.com"):
        client.send(from_email="f@example.com", to=to, subject="S", body="B")


def test_plain_http_through_a_proxy_takes_each_slot_on_an_open_connection(proxy_env):
    with recording_server() as server, loopback_proxy() as proxy:
        proxy_env.setenv("HTTP_PROXY", proxy.url)
        # The proxy opens its own connection to the API only once the request is written:
        # what must be open at the slot is the connection to the proxy.
        limiter = SlotWatchingLimiter(lambda: proxy.connections > 0)
        with SendflareClient("t", api_url=server.url, rate_limiter=limiter) as client:
            send_two(client)
    assert [body["to"] for body in server.bodies] == ["a@example.com", "b@example.com"]
    assert proxy.first_lines == [f"POST {server.url}/v1/send"]  # one kept-alive connection
    assert limiter.open_at_slot == [True, True]


def test_https_through_a_connect_tunnel_takes_each_slot_once_the_tunnel_is_open(
    proxy_env, tmp_path
):
    with recording_server() as server, loopback_proxy() as proxy:
        proxy_env.setenv("HTTPS_PROXY", proxy.url)
        proxy_env.setenv("REQUESTS_CA_BUNDLE", serve_tls(server, str(tmp_path)))
        api_url = server.url.replace("http://", "https://")
        # Through the tunnel, the API's side of the connection exists once the tunnel does.
        limiter = SlotWatchingLimiter(lambda: server.connections > 0)
        with SendflareClient("t", api_url=api_url, rate_limiter=limiter) as client:
            send_two(client)
    assert [body["to"] for body in server.bodies] == ["a@example.com", "b@example.com"]
    host = api_url.removeprefix("https://")
    assert proxy.first_lines == [f"CONNECT {host}"]  # one tunnel for both requests
    assert limiter.open_at_slot == [True, True]
