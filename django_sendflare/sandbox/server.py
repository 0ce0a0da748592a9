"""The standalone front end: a threaded HTTP/1.1 server (standard library only, no Django).

It serves the API at the root (``/v1/send``, ``/v1/contact``) and the inspection endpoints under
``/_sandbox/``. Unlike the Django views, it can really drop a connection: ``reset`` closes the
socket with SO_LINGER 0 (the client sees a TCP reset) before any response, and ``lost_response``
does the same after the request was processed and recorded.

It serves loopback Host names only, unless started with ``allow_remote`` (``--allow-remote``),
and refuses cross-site state changes of the inspection endpoints (see :mod:`.guard`).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from django_sendflare.sandbox.engine import Sandbox, SandboxConfig, SandboxRequest, SandboxResponse
from django_sendflare.sandbox.engine import json_response as _json_response
from django_sendflare.sandbox.guard import cross_site_refusal, host_refusal, is_loopback
from django_sendflare.sandbox.inspection import handle_inspection

logger = logging.getLogger(__name__)

INSPECTION_PREFIX = "/_sandbox/"
#: Bodies larger than this are refused before being read (on top of the size check of /v1/send).
HARD_BODY_LIMIT_MARGIN = 1024 * 1024
#: Idle keep-alive connections are closed after this many seconds.
IDLE_TIMEOUT = 30.0


__all__ = ["RunningSandbox", "SandboxHTTPServer", "is_loopback", "make_server", "start_in_thread"]


class SandboxHandler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 with keep-alive, every response with a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "SendflareSandbox"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK
    # would add ~40 ms to every response.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def do_GET(self) -> None:
        """Dispatch GET."""
        self._dispatch()

    def do_HEAD(self) -> None:
        """Dispatch HEAD (inspection pages only answer it meaningfully)."""
        self._dispatch()

    def do_POST(self) -> None:
        """Dispatch POST."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Dispatch PUT."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Dispatch DELETE."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """Dispatch PATCH (always refused, but with a proper answer)."""
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            self._serve()
        except OSError:
            # The client went away mid-request (or a drop fault already closed the socket).
            logger.debug("connection error", exc_info=True)
            self.close_connection = True
        except Exception:
            # A sandbox bug must not look like a fault the client should handle: say so loudly.
            logger.exception("sandbox error on %s %s", self.command, self.path)
            self._write(_json_response(500, {"error": "sandbox internal error (a bug)"}))
            self.close_connection = True

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        path = url.path
        host = self.headers.get("Host")
        refusal = host_refusal(host, allow_remote=self.server.allow_remote)
        if refusal is None and path.startswith(INSPECTION_PREFIX):
            refusal = cross_site_refusal(self.command, dict(self.headers.items()), host)
        if refusal is not None:
            response = _json_response(403, {"error": refusal})
        elif path.startswith(INSPECTION_PREFIX):
            response = handle_inspection(
                sandbox,
                self.command,
                path[len(INSPECTION_PREFIX) :],
                url.query,
                body,
                INSPECTION_PREFIX,
            )
        elif path in ("/", "/_sandbox"):
            response = SandboxResponse(status=302, headers={"Location": INSPECTION_PREFIX})
        else:
            response = sandbox.handle(
                SandboxRequest(
                    method=self.command,
                    path=path,
                    query=url.query,
                    headers=dict(self.headers.items()),
                    body=body,
                )
            )
        if response.delay:
            time.sleep(response.delay)
        if response.drop:
            self._drop_connection()
            return
        self._write(response)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            # Neither curl -d nor requests' json= chunk a body; refusing keeps this server small.
            self._write(_json_response(411, {"error": "chunked bodies are not supported"}))
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        limit = self.server.sandbox.config.max_message_size + HARD_BODY_LIMIT_MARGIN
        if length < 0 or length > limit:
            self._write(_json_response(413, {"error": f"the body must be 0..{limit} bytes"}))
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _drop_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN: the client
        # gets "connection reset" with no status line at all.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The buffered reader holds a reference to the socket; close it first so that
            # close() below really closes (and resets) the connection now.
            self.rfile.close()
            self.connection.close()
        except OSError:
            logger.debug("the client closed the connection first", exc_info=True)

    def _write(self, response: SandboxResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Send the access log to logging instead of stderr."""
        logger.debug("%s - %s", self.address_string(), format % args)


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threaded server bound to one :class:`Sandbox`."""

    daemon_threads = True
    # Restarting on the same port right after a stop must not fail with "address in use".
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], sandbox: Sandbox, *, allow_remote: bool = False
    ) -> None:
        """Bind to ``address`` (IPv6 when the host contains a colon).

        Without ``allow_remote``, requests whose Host header is not a loopback name are refused.
        """
        self.sandbox = sandbox
        self.allow_remote = allow_remote
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, SandboxHandler)

    @property
    def url(self) -> str:
        """The base URL to give a client as API_URL."""
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"


class RunningSandbox:
    """A sandbox server running in a background thread (used by the pytest fixture)."""

    def __init__(self, server: SandboxHTTPServer, thread: threading.Thread) -> None:
        """Wrap a started server."""
        self.server = server
        self.thread = thread

    @property
    def sandbox(self) -> Sandbox:
        """The engine (state, faults) behind the server."""
        return self.server.sandbox

    @property
    def url(self) -> str:
        """The base URL (``API_URL``)."""
        return self.server.url

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def make_server(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allow_remote: bool = False,
    sandbox: Sandbox | None = None,
) -> SandboxHTTPServer:
    """Create (bind) a server; port 0 picks a free one.

    ``allow_remote`` is needed to listen on a non-loopback address, and to serve requests whose
    Host header is not a loopback name (behind a proxy, or on a LAN).
    """
    if not is_loopback(host) and not allow_remote:
        raise ValueError(
            f"refusing to listen on {host!r}: the sandbox has no real authentication and shows "
            "every message; pass allow_remote=True (--allow-remote) to do it anyway"
        )
    return SandboxHTTPServer((host, port), sandbox or Sandbox(config), allow_remote=allow_remote)


def start_in_thread(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningSandbox:
    """Start a server on a free loopback port in a daemon thread and return it."""
    server = make_server(config, host, port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},
        name=f"sendflare-sandbox-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return RunningSandbox(server, thread)
