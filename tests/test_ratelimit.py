"""The rate limiters: spacing, windows, threads, pause, the Redis one across processes and
through an outage, the limiter cache, and where the client takes its slot."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.mail import EmailMessage

from django_sendflare import ratelimit
from django_sendflare.backends import EmailBackend
from django_sendflare.client import SendflareClient
from django_sendflare.conf import load_settings
from django_sendflare.ratelimit import (
    InProcessRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    get_rate_limiter,
    limiter_key,
)

from .localserver import recording_server


def max_in_any_window(starts: list[float], width: float = 1.0) -> int:
    """The most starts that any half-open window [t, t + width) holds."""
    starts = sorted(starts)
    best = 0
    for i, start in enumerate(starts):
        j = i
        while j < len(starts) and starts[j] < start + width - 1e-9:
            j += 1
        best = max(best, j - i)
    return best


class FrozenClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slots_are_spaced_by_one_over_rate_plus_a_jitter_margin():
    clock = FrozenClock()
    limiter = InProcessRateLimiter(5, clock=clock)
    waits = [limiter.reserve() for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.204, 0.408, 0.612, 0.816, 1.02])


def test_an_idle_limiter_does_not_make_the_next_request_wait():
    clock = FrozenClock()
    limiter = InProcessRateLimiter(5, clock=clock)
    limiter.reserve()
    clock.now += 10
    assert limiter.reserve() == 0.0


def test_no_window_holds_more_than_the_limit_across_threads():
    clock = FrozenClock()
    limiter = InProcessRateLimiter(5, clock=clock)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait = limiter.reserve()
            with lock:
                starts.append(clock.now + wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(starts) == 200
    assert max_in_any_window(starts) == 5
    # Even seen through 20 ms of jitter, no window of the API holds six.
    assert max_in_any_window(starts, width=0.98) == 5
    # And it does not under-use the limit: 200 requests take 199 intervals of 204 ms.
    assert max(starts) - min(starts) == pytest.approx(199 * 0.204)


def test_pause_holds_back_every_later_slot():
    clock = FrozenClock()
    limiter = InProcessRateLimiter(5, clock=clock)
    limiter.reserve()
    limiter.pause(3.0)
    assert limiter.reserve() == pytest.approx(3.0)
    assert limiter.reserve() == pytest.approx(3.204)


def test_acquire_sleeps_for_the_wait():
    clock = FrozenClock()
    limiter = InProcessRateLimiter(2, clock=clock)
    slept: list[float] = []
    limiter.acquire(slept.append)
    limiter.acquire(slept.append)
    assert slept == [pytest.approx(0.51)]


def test_a_late_send_holds_back_the_send_rate_places_after_it():
    """Slots are spaced; sends are checked as they happen (a thread can wake up late)."""
    clock = FrozenClock()
    limiter = InProcessRateLimiter(5, clock=clock)
    slots = [clock.now + limiter.reserve() for _ in range(7)]
    sent = []
    for index, slot in enumerate(slots):
        # The first send goes 100 ms after its slot, as after a slow wake-up on a busy CPU.
        clock.now = slot + (0.1 if index == 0 else 0.0)
        extra = limiter.confirm()
        if extra:
            clock.now += extra
            assert limiter.confirm() == 0.0
        sent.append(clock.now)
    # Sends 0-4 keep their slots; send 5 waits until send 0 is a full window (1.02 s) behind.
    assert sent[1:5] == pytest.approx(slots[1:5])
    assert sent[5] == pytest.approx(sent[0] + 1.02)
    assert sent[6] == pytest.approx(slots[6])
    assert max_in_any_window(sent, width=1.0) == 5


def test_acquire_waits_for_the_slot_then_for_the_window():
    clock = FrozenClock()
    limiter = InProcessRateLimiter(1, clock=clock)

    def sleep(seconds: float) -> None:
        clock.now += seconds

    assert limiter.acquire(sleep) == 0.0
    clock.now += 0.5  # this one's slot is 1.02 s after the first
    assert limiter.acquire(sleep) == pytest.approx(0.52)
    assert clock.now == pytest.approx(101.02)


def test_one_limiter_per_account_and_none_when_off(settings):
    settings.SENDFLARE = {"API_TOKEN": "a", "RATE_LIMIT": 5}
    first = get_rate_limiter(load_settings())
    assert first is get_rate_limiter(load_settings())
    assert first is not get_rate_limiter(load_settings({"API_TOKEN": "b"}))
    assert get_rate_limiter(load_settings({"RATE_LIMIT": 0})) is None
    assert "a" not in first.key  # the key names the account without its token


@pytest.mark.redis
def test_redis_limiter_spaces_requests_of_several_processes():
    key = f"test-{uuid.uuid4()}"
    # Two limiters with their own connections stand for two processes or hosts.
    limiters = [RedisRateLimiter(10, key=key, url=settings.REDIS_URL) for _ in range(2)]
    starts = []
    for i in range(20):
        wait = limiters[i % 2].reserve()
        starts.append(time.monotonic() + wait)
    # 10 per second: slots 102 ms apart (with the jitter margin), whichever process asked.
    # Measured on this side of the Redis round trip, each start carries a few ms of noise
    # (more on a loaded machine), so compare the span and windows, not single gaps.
    assert max(starts) - min(starts) == pytest.approx(19 * 0.102, abs=0.04)
    assert max_in_any_window(starts, width=0.96) <= 10
    limiters[0].pause(5)
    assert limiters[1].reserve() > 4.5


@pytest.mark.redis
def test_redis_window_of_sends_is_shared_by_processes():
    key = f"test-{uuid.uuid4()}"
    limiters = [RedisRateLimiter(5, key=key, url=settings.REDIS_URL) for _ in range(2)]
    started = time.monotonic()
    assert [limiters[i % 2].confirm() for i in range(5)] == [0.0] * 5
    # A sixth send within the window waits until the first is 1.02 s behind.
    wait = limiters[1].confirm()
    assert 1.02 - (time.monotonic() - started) - 0.05 < wait <= 1.02


@pytest.mark.redis
def test_redis_window_counts_a_send_from_when_it_was_written():
    """A process held up between its check and its write: sent() moves its record."""
    limiter = RedisRateLimiter(5, key=f"test-{uuid.uuid4()}", url=settings.REDIS_URL)
    assert limiter.confirm() == 0.0
    time.sleep(0.3)  # the request goes out 300 ms after it was checked
    written = time.monotonic()
    limiter.sent()
    assert [limiter.confirm() for _ in range(4)] == [0.0] * 4
    wait = limiter.confirm()
    # Counted from the write, not from the check (which would be 300 ms less).
    assert 1.02 - (time.monotonic() - written) - 0.05 < wait <= 1.02


@pytest.mark.redis
def test_redis_limiter_is_used_by_the_settings(settings):
    settings.SENDFLARE = {
        "API_TOKEN": "t",
        "RATE_LIMITER": "django_sendflare.ratelimit.RedisRateLimiter",
        "RATE_LIMITER_OPTIONS": {"url": settings.REDIS_URL, "prefix": f"t-{uuid.uuid4()}:"},
    }
    limiter = get_rate_limiter(load_settings())
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == pytest.approx(0.204, abs=0.02)


# The limiter cache: one limiter per account AND limiter configuration.


def dead_redis_url(db: int = 2, password: str | None = None) -> str:
    """A Redis URL on loopback where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{port}/{db}"


REDIS = "django_sendflare.ratelimit.RedisRateLimiter"


def test_configurations_of_one_account_with_other_option_values_get_their_own_limiter():
    first_url, second_url = dead_redis_url(), dead_redis_url(db=3)
    base = {"API_TOKEN": "a", "RATE_LIMIT": 5, "RATE_LIMITER": REDIS}
    first = get_rate_limiter(load_settings({**base, "RATE_LIMITER_OPTIONS": {"url": first_url}}))
    second = get_rate_limiter(load_settings({**base, "RATE_LIMITER_OPTIONS": {"url": second_url}}))
    assert first is not second
    assert first is get_rate_limiter(
        load_settings({**base, "RATE_LIMITER_OPTIONS": {"url": first_url}})
    )
    # Same values in another order, nested too: the same configuration.
    options = {"url": first_url, "prefix": "p:", "timeout": 0.5}
    shuffled = {"timeout": 0.5, "prefix": "p:", "url": first_url}
    assert get_rate_limiter(
        load_settings({**base, "RATE_LIMITER_OPTIONS": options})
    ) is get_rate_limiter(load_settings({**base, "RATE_LIMITER_OPTIONS": shuffled}))
    assert limiter_key(load_settings({"RATE_LIMITER_OPTIONS": {"a": {"x": 1, "y": [1, 2]}}})) == (
        limiter_key(load_settings({"RATE_LIMITER_OPTIONS": {"a": {"y": [1, 2], "x": 1}}}))
    )
    # The rate is part of it too.
    assert limiter_key(load_settings({"RATE_LIMIT": 5})) != limiter_key(
        load_settings({"RATE_LIMIT": 4})
    )


def test_the_limiter_key_reveals_neither_the_token_nor_the_redis_password():
    conf = load_settings(
        {
            "API_TOKEN": "tok-SECRET-123",
            "RATE_LIMIT": 5,
            "RATE_LIMITER": REDIS,
            "RATE_LIMITER_OPTIONS": {"url": dead_redis_url(password="pw-SECRET-456")},
        }
    )
    key = limiter_key(conf)
    assert "SECRET" not in key and "tok" not in key and "pw" not in key
    limiter = get_rate_limiter(conf)
    assert limiter is not None and "SECRET" not in limiter.key + repr(limiter)


def test_options_the_limiter_does_not_take_are_a_configuration_error():
    from django_sendflare.exceptions import SendflareConfigurationError

    conf = load_settings({"RATE_LIMIT": 5, "RATE_LIMITER_OPTIONS": {"url": "redis://x"}})
    with pytest.raises(SendflareConfigurationError, match=r"RATE_LIMITER_OPTIONS.*InProcess"):
        get_rate_limiter(conf)


# Redis unreachable: the in-process fallback.


def test_an_unreachable_redis_falls_back_to_the_configured_rate_in_process(caplog):
    clock = FrozenClock()
    limiter = RedisRateLimiter(5, key=f"t-{uuid.uuid4()}", url=dead_redis_url(), clock=clock)
    with caplog.at_level(logging.INFO, logger="django_sendflare.ratelimit"):
        waits = [limiter.reserve() for _ in range(6)]
        limiter.pause(2.0)
        after_pause = limiter.reserve()
    assert waits == pytest.approx([0.0, 0.204, 0.408, 0.612, 0.816, 1.02])
    assert after_pause == pytest.approx(2.0)
    assert not limiter.redis_reachable
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot be reached" in warnings[0].getMessage()
    assert "127.0.0.1:" in warnings[0].getMessage()


def test_the_outage_warning_shows_no_redis_password(caplog):
    url = dead_redis_url(password="pw-SECRET-456")
    limiter = RedisRateLimiter(5, key="k", url=url)
    with caplog.at_level(logging.WARNING, logger="django_sendflare.ratelimit"):
        limiter.reserve()
    assert caplog.records and "SECRET" not in caplog.text


def test_sends_and_contact_calls_go_on_when_the_shared_limiter_is_unreachable(caplog, settings):
    """The issue's observation: redis.exceptions.ConnectionError escaped send_messages."""
    with recording_server() as server:
        settings.SENDFLARE = {
            "API_TOKEN": "t",
            "API_URL": server.url,
            "APP_ID": "app",
            "RATE_LIMIT": 50,
            "RATE_LIMITER": REDIS,
            "RATE_LIMITER_OPTIONS": {"url": dead_redis_url()},
        }
        message = EmailMessage("S", "B", "f@example.com", ["a@example.com", "b@example.com"])
        with caplog.at_level(logging.WARNING, logger="django_sendflare.ratelimit"):
            assert EmailBackend().send_messages([message]) == 1
            client = SendflareClient.from_settings(load_settings())
            client.save_contact(email="c@example.com")
            client.close()
    assert sorted(body.get("to", body.get("emailAddress")) for body in server.bodies) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


class TCPForwarder:
    """127.0.0.1:port -> target, that can be stopped (connections cut) and started again on the
    same port: a Redis that goes away mid-run and comes back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
            listener, self._listener = self._listener, None
        for sock in [*sockets, *([listener] if listener else [])]:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass


@contextmanager
def forwarded_redis() -> Iterator[TCPForwarder]:
    parts = urlsplit(settings.REDIS_URL)
    forwarder = TCPForwarder((parts.hostname or "127.0.0.1", parts.port or 6379))
    forwarder.start()
    try:
        yield forwarder
    finally:
        forwarder.stop()


@pytest.mark.redis
def test_redis_gone_mid_run_one_warning_per_outage_and_an_info_when_back(caplog):
    db = urlsplit(settings.REDIS_URL).path.strip("/") or "0"
    clock = FrozenClock()
    with forwarded_redis() as redis_proxy, caplog.at_level(logging.INFO, "django_sendflare"):
        limiter = RedisRateLimiter(
            10,
            key=f"t-{uuid.uuid4()}",
            url=f"redis://127.0.0.1:{redis_proxy.port}/{db}",
            clock=clock,
        )
        assert limiter.reserve() == 0.0
        shared_wait = limiter.reserve()
        assert shared_wait == pytest.approx(0.102, abs=0.03)
        assert limiter.redis_reachable

        redis_proxy.stop()
        # The fallback goes on after the last shared slot, at the configured rate.
        local = [limiter.reserve() for _ in range(3)]
        assert local[0] == pytest.approx(shared_wait + 0.102, abs=1e-6)
        assert [b - a for a, b in itertools.pairwise(local)] == pytest.approx([0.102] * 2)
        assert not limiter.redis_reachable

        redis_proxy.start()
        clock.now += ratelimit.REDIS_RETRY_INTERVAL - 0.5
        limiter.reserve()  # not tried yet: still local
        assert not limiter.redis_reachable
        clock.now += 0.5
        back = limiter.reserve()
        assert limiter.redis_reachable
        # The first shared slot after the outage does not crowd this process's last local one.
        assert back >= 0.0

        redis_proxy.stop()
        limiter.reserve()
        assert not limiter.redis_reachable

    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO, logging.WARNING]
    assert "answers again" in messages[1][1]


@pytest.mark.redis
def test_a_process_does_not_burst_when_redis_comes_back():
    """Back from an outage, the shared schedule starts after this process's local one."""
    db = urlsplit(settings.REDIS_URL).path.strip("/") or "0"
    clock = FrozenClock()
    with forwarded_redis() as redis_proxy:
        limiter = RedisRateLimiter(
            5,
            key=f"t-{uuid.uuid4()}",
            url=f"redis://127.0.0.1:{redis_proxy.port}/{db}",
            clock=clock,
        )
        limiter.reserve()
        redis_proxy.stop()
        limiter.reserve()
        # The API said to slow down during the outage: this process's own schedule is far ahead.
        limiter.pause(30.0)
        redis_proxy.start()
        clock.now += ratelimit.REDIS_RETRY_INTERVAL
        wait = limiter.reserve()
    assert limiter.redis_reachable
    assert wait == pytest.approx(30.0 - ratelimit.REDIS_RETRY_INTERVAL, abs=0.5)


# Where the client takes its slot: on an open connection, right before the request is written.


class ConnectionWatchingLimiter(RateLimiter):
    """Notes, at each slot, whether the server had taken up the request's connection."""

    def __init__(self, server) -> None:
        super().__init__(rate=1000)
        self.server = server
        self.connected_at_slot: list[bool] = []
        self.written = 0

    def reserve(self) -> float:
        # Loopback connections are taken up in milliseconds; a connection not opened before
        # the slot cannot be opened while the client waits here, so this wait decides it.
        deadline = time.monotonic() + 5.0
        while self.server.connections == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        self.connected_at_slot.append(self.server.connections > 0)
        return 0.0

    def sent(self) -> None:
        self.written += 1

    def pause(self, seconds: float) -> None:
        pass


def test_the_client_takes_its_slot_once_the_connection_is_open():
    with recording_server() as server:
        limiter = ConnectionWatchingLimiter(server)
        with SendflareClient("t", api_url=server.url, rate_limiter=limiter) as client:
            client.send(from_email="f@example.com", to="a@example.com", subject="S", body="B")
            client.send(from_email="f@example.com", to="b@example.com", subject="S", body="B")
    assert limiter.connected_at_slot == [True, True]
    assert limiter.written == 2  # and it was told when each request went out
    assert server.connections == 1  # the second request reused the open connection
    assert len(server.bodies) == 2


class ClosingLimiter(RateLimiter):
    """At its second slot, the server closes the idle connection the request is about to use."""

    def __init__(self, server) -> None:
        super().__init__(rate=1000)
        self.server = server
        self.slots = 0

    def reserve(self) -> float:
        self.slots += 1
        if self.slots == 2:
            self.server.close_connections()
            # Until the client's side of the connection sees the close (loopback: at once).
            time.sleep(0.2)
        return 0.0

    def pause(self, seconds: float) -> None:
        pass


def test_a_connection_closed_during_a_long_wait_is_reopened_with_a_new_slot(monkeypatch):
    from django_sendflare import transport

    # Every wait counts as long: the check runs whatever the machine's speed.
    monkeypatch.setattr(transport, "_RECHECK_AFTER_WAIT", 0.0)
    with recording_server() as server:
        limiter = ClosingLimiter(server)
        with SendflareClient("t", api_url=server.url, rate_limiter=limiter) as client:
            client.send(from_email="f@example.com", to="a@example.com", subject="S", body="B")
            # Without the check this send fails as "may have been processed" (dropped).
            client.send(from_email="f@example.com", to="b@example.com", subject="S", body="B")
    assert [body["to"] for body in server.bodies] == ["a@example.com", "b@example.com"]
    assert server.connections == 2
    assert limiter.slots == 3  # the reopened connection took a slot of its own
