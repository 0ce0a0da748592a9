"""The client's HTTP transport: each request takes its rate-limit slot once its connection is open.

The API counts requests when they *arrive*. A limiter consulted before ``session.request()``
spaces request *starts*: a request that must first open a connection (the TCP and TLS round
trips, 100-300 ms over a real network) then arrives that much after its slot, in the same second
as the slots that follow, and the API answers 429. So the slot is taken here instead, inside
urllib3: after the connection is established and just before the request's bytes are written.
Arrivals are then spaced like the slots, give or take the jitter the limiter's margin covers.

The same place knows how far a request got: :class:`RequestProgress` records whether its
connection was being opened, whether it was waiting for its slot, and whether its bytes had
started to go out. A failure before that last point cannot have reached the API, whatever
raised it (a refused connection, the limiter's store, a timeout the socket cannot take), so the
client never reports it as "may have been processed".

Only :mod:`django_sendflare.client` uses this module (it is the client's HTTP layer, split out
so that the client reads as the API's plumbing). The hook travels in a context variable, set
around one ``session.request()`` call by :func:`before_each_request`: a session used without it
(or a test double that replaces ``HTTPAdapter.send``) sends without waiting, and its progress
stays at ``None`` (no connection of this module was used).
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util.wait import wait_for_read

_Hook = Callable[[], None]

#: How far a request got on a connection of this module, in order.
Stage = Literal["connecting", "waiting", "writing", "written"]


@dataclass
class RequestProgress:
    """How far the request of one :func:`before_each_request` block got.

    ``stage`` is None until a connection of this module is used: the failure came from the
    code before it (preparing the request, the pool) or from a test double.
    """

    stage: Stage | None = None

    @property
    def may_have_left(self) -> bool:
        """Whether any byte of the request can have been written to the network."""
        return self.stage in ("writing", "written")


@dataclass(frozen=True)
class _Block:
    before: _Hook
    after: _Hook | None
    progress: RequestProgress


#: What a connection calls right before it writes a request, and right after, and where it
#: records its progress (None: outside any block).
_block: ContextVar[_Block | None] = ContextVar("sendflare_request_block", default=None)

#: A connection that waited longer than this for its slot is checked before it is written to:
#: the server may have closed it meanwhile (keep-alive timeouts can be a few seconds).
_RECHECK_AFTER_WAIT = 1.0

#: Reconnections (each followed by a new slot) before a request is sent regardless.
_MAX_RECONNECTS = 2


@contextmanager
def before_each_request(before: _Hook, after: _Hook | None = None) -> Iterator[RequestProgress]:
    """Run ``before`` right before each request of this block goes out on an open connection,
    and ``after`` once it has been written; yield the block's :class:`RequestProgress`."""
    progress = RequestProgress()
    token = _block.set(_Block(before, after, progress))
    try:
        yield progress
    finally:
        _block.reset(token)


def _reached(stage: Stage) -> None:
    block = _block.get()
    # Never back from "writing": once bytes may have left, nothing makes them unsent.
    if block is not None and not block.progress.may_have_left:
        block.progress.stage = stage


class _SlotAfterConnect:
    """Mixed into urllib3's connection classes: connect, then run the hook, then write."""

    sock: Any

    def connect(self) -> None:
        # Also reached from urllib3's own code: an HTTPS pool connects before request().
        _reached("connecting")
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        block = _block.get()
        if block is None:
            super().request(*args, **kwargs)  # type: ignore[misc]
            return
        self._connect_then(block.before)
        # From here on the API may receive (part of) the request.
        block.progress.stage = "writing"
        super().request(*args, **kwargs)  # type: ignore[misc]
        block.progress.stage = "written"
        if block.after is not None:
            block.after()

    def _connect_then(self, hook: _Hook) -> None:
        for reconnects in range(_MAX_RECONNECTS + 1):
            if self.sock is None:
                # HTTPS pools have connected already; plain HTTP would connect inside
                # request(), after the slot: open it here, outside the limiter.
                self.connect()
            _reached("waiting")
            started = time.monotonic()
            hook()
            waited = time.monotonic() - started
            if (
                waited < _RECHECK_AFTER_WAIT
                or reconnects == _MAX_RECONNECTS
                or not _closed_by_peer(self.sock)
            ):
                return
            # Closed while waiting for the slot: reopen it, and take a slot that follows the
            # handshake rather than the one that has just gone by.
            self.close()  # type: ignore[attr-defined]


def _closed_by_peer(sock: Any) -> bool:
    """Whether the peer closed an idle connection (EOF or reset) while it waited for its slot."""
    if not wait_for_read(sock, timeout=0.0):
        return False
    # Readable is not closed: a TLS 1.3 server sends its session tickets after the handshake.
    # A non-blocking read takes such records in and finds no data; EOF or a reset is final.
    timeout = sock.gettimeout()
    try:
        sock.settimeout(0.0)
        sock.recv(1)
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)
    # b"" (EOF), or bytes nobody asked for: the connection is no use either way.
    return True


@functools.cache
def _slot_after_connect_pool(pool_class: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    """``pool_class`` whose connections take their slot after connecting (one class each)."""
    connection_class = pool_class.ConnectionCls
    if issubclass(connection_class, _SlotAfterConnect):
        return pool_class
    paced_connection = type(
        f"SlotAfterConnect{connection_class.__name__}", (_SlotAfterConnect, connection_class), {}
    )
    return type(
        f"SlotAfterConnect{pool_class.__name__}", (pool_class,), {"ConnectionCls": paced_connection}
    )


def _slot_after_connect(manager: PoolManager) -> PoolManager:
    # An instance attribute: urllib3's module-level mapping is left alone.
    manager.pool_classes_by_scheme = {
        scheme: _slot_after_connect_pool(pool_class)
        for scheme, pool_class in manager.pool_classes_by_scheme.items()
    }
    return manager


class SlotAfterConnectAdapter(HTTPAdapter):
    """requests' adapter whose connections (direct or through a proxy) call the hook of
    :func:`before_each_request` once connected, right before each request is written."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _slot_after_connect(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        return _slot_after_connect(super().proxy_manager_for(proxy, **proxy_kwargs))
