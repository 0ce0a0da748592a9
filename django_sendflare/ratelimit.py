"""Rate limiters: every request of one account waits for its slot here before it is sent.

The API allows ``RATE_LIMIT`` requests per second for the whole account, across all endpoints,
counted when they *arrive*. A limiter hands out slots spaced ``(1 s + JITTER_MARGIN) / rate``
apart, so that no one-second window ever holds more than ``rate`` of them, however many threads
ask. The client takes a slot once the request's connection is open, right before the request is
written (see :mod:`django_sendflare.transport`): a slot then stands for an arrival, not for a
start that a TCP and TLS handshake could delay into the next slot's second.

:class:`InProcessRateLimiter` does this for one process. :class:`RedisRateLimiter` does it for
every process and host that shares a Redis server, and falls back to an in-process limiter at
the same rate while Redis cannot be reached (one warning per outage). Any class with the
:class:`RateLimiter` interface can be named in ``SENDFLARE["RATE_LIMITER"]``; it is built once
per process for each account and limiter configuration, with
``cls(rate=..., key=..., **RATE_LIMITER_OPTIONS)``.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from django.utils.module_loading import import_string

from .bounds import REQUEST_SECONDS, REQUESTS_PER_SECOND
from .conf import SendflareSettings
from .exceptions import SendflareConfigurationError
from .retry import MAX_RETRY_AFTER

logger = logging.getLogger(__name__)

#: Seconds added to each window of ``rate`` requests: jitter on the way to the API must not turn
#: requests sent exactly 1 s apart into requests received 999 ms apart. Costs 2% of the limit.
JITTER_MARGIN = 0.02

#: How many times one request waits for the window of sends (see RateLimiter.confirm) before it
#: goes regardless: each wait lets the oldest send out, so one is nearly always enough.
MAX_WINDOW_WAITS = 5


class RateLimiter(ABC):
    """Hands out request slots to at most ``rate`` requests per second."""

    #: Whether processes share it through a store that may be unreachable (see reachable()).
    shared = False

    def __init__(self, rate: float, key: str = "default") -> None:
        # Bounded like RATE_LIMIT: 1e-300 would be a wait no clock can sleep, 1e309 (inf) a
        # window of infinitely many sends. Use no limiter at all to turn limiting off.
        self.rate = float(REQUESTS_PER_SECOND.require("The rate limiter's rate", rate))
        self.interval = (1.0 + JITTER_MARGIN) / rate
        self.key = key
        # The window of sends: any `window_count + 1` sends in a row span at least `window`.
        self.window_count = max(1, math.floor(rate))
        self.window = self.window_count * self.interval

    @abstractmethod
    def reserve(self) -> float:
        """Reserve the next slot; return how many seconds to wait before using it."""

    @abstractmethod
    def pause(self, seconds: float) -> None:
        """Hold every later slot back for ``seconds`` (the API said to slow down).

        ``seconds`` is at most ``MAX_RETRY_AFTER``: see ``pause_seconds()``.
        """

    def confirm(self) -> float:
        """Record a send now if the last ``window`` seconds hold fewer than ``window_count``
        sends and return 0; else return how long to wait before asking again.

        Slots space the sends as planned; this checks them as they happen. A thread that wakes
        late for its slot (a busy CPU) sends late, and the slots ``rate`` places after it would
        then share its second at the API: they wait here until it is a full window behind.
        The default (for limiters that only space slots) records nothing and never waits.
        """
        return 0.0

    def sent(self) -> None:  # noqa: B027 - optional, like confirm()
        """This caller's request has just been written: where :meth:`confirm` records sends
        in a shared store, move this caller's record to now (the process may have been held
        up between the two). The default does nothing."""

    def reachable(self) -> bool:
        """Whether the store where a shared limiter keeps its slots answers now (asked, not
        remembered: ``sendflare_status`` calls it). A limiter of one process has no store:
        always True."""
        return True

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until this caller may send (its slot, then the window); return the wait."""
        waited = max(self.reserve(), 0.0)
        if waited > 0:
            sleep(waited)
        for _ in range(MAX_WINDOW_WAITS):
            extra = self.confirm()
            if extra <= 0:
                break
            sleep(extra)
            waited += extra
        return waited


def pause_seconds(seconds: float) -> float:
    """``seconds`` of a pause, refused when no clock can add it to now (``inf``, ``nan``) or
    negative, and capped at ``MAX_RETRY_AFTER`` (what the client takes from a Retry-After)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"a pause is a number of seconds, not {seconds!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a pause must be a finite number of seconds >= 0, not {seconds!r}")
    return min(float(seconds), MAX_RETRY_AFTER)


class InProcessRateLimiter(RateLimiter):
    """Spaces requests of all threads of this process; the clock is injectable for tests."""

    def __init__(
        self,
        rate: float,
        key: str = "default",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(rate, key)
        self._clock = clock
        self._lock = threading.Lock()
        self._next_slot = float("-inf")
        self._sent: collections.deque[float] = collections.deque()

    def reserve(self) -> float:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        return slot - now

    def pause(self, seconds: float) -> None:
        seconds = pause_seconds(seconds)
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)

    def confirm(self) -> float:
        with self._lock:
            now = self._clock()
            while self._sent and self._sent[0] <= now - self.window:
                self._sent.popleft()
            if len(self._sent) < self.window_count:
                self._sent.append(now)
                return 0.0
            return self._sent[0] + self.window - now

    def next_free(self) -> float:
        """Seconds from now to the next free slot (0 when one is free now)."""
        with self._lock:
            return max(self._next_slot - self._clock(), 0.0)


# Reserve a slot atomically on the Redis server, using the server's clock so that hosts with
# skewed clocks still agree: not before the next free slot, nor before ARGV[3] us from now.
# Returns the wait in microseconds.
_RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local next_slot = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_slot, now + tonumber(ARGV[3]))
redis.call('SET', KEYS[1], string.format('%d', slot + interval), 'PX', ARGV[2])
return slot - now
"""

# The window of sends (RateLimiter.confirm) in a sorted set scored by the server's clock.
# ARGV: window (us), window_count, a unique member, TTL (ms). Returns 0, or the wait in us.
_CONFIRM_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
"""

# Move a recorded send (ARGV[1]) to the server's now, if it is still in the window.
_SENT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
end
return 0
"""

_PAUSE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local next_slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > next_slot then
  redis.call('SET', KEYS[1], string.format('%d', until_), 'PX', ARGV[2])
end
return 0
"""

#: During an outage, Redis is tried again (by one request) at most this often, in seconds.
REDIS_RETRY_INTERVAL = 5.0


class RedisRateLimiter(RateLimiter):
    """Spaces the requests of every process and host that share one Redis server.

    Options (``RATE_LIMITER_OPTIONS``): ``url`` (required), ``prefix``, ``timeout`` (seconds to
    connect to Redis and to wait for its answer, default 1). Needs the ``redis`` package:
    ``pip install django-sendflare[redis]``.

    When Redis cannot be reached (or answers an error), this process goes on under an
    in-process limiter at the same rate, continuing from the last slot Redis gave it: one
    warning is logged when the outage starts, an info when Redis answers again, and one request
    tries Redis every :data:`REDIS_RETRY_INTERVAL` seconds meanwhile. No Redis error reaches
    the caller. While it lasts, each process keeps the rate on its own, so a fleet of N
    processes may send up to N times the limit: the API's 429s are then retried as usual.
    """

    def __init__(
        self,
        rate: float,
        key: str = "default",
        url: str | None = None,
        prefix: str = "sendflare:ratelimit:",
        timeout: float = 1.0,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(rate, key)
        if client is None:
            timeout = REQUEST_SECONDS.require(
                "SENDFLARE['RATE_LIMITER_OPTIONS']['timeout']", timeout
            )
            client = _redis_client(url, timeout)
        self._redis = client
        self._where = _describe_redis(client)
        self._redis_errors = _redis_errors()
        self._redis_key = prefix + key
        self._sent_key = f"{self._redis_key}:sent"
        self._reserve = client.register_script(_RESERVE_SCRIPT)
        self._confirm = client.register_script(_CONFIRM_SCRIPT)
        self._sent = client.register_script(_SENT_SCRIPT)
        self._pause = client.register_script(_PAUSE_SCRIPT)
        # Each thread's last recorded send, which sent() moves to when it really went out.
        self._last_send = threading.local()
        # The key only has to outlive the slots it reserves.
        self._ttl_ms = max(int(self.interval * 1000 * 10), 60_000)
        self._fallback = InProcessRateLimiter(rate, key, clock=clock)
        self._clock = clock
        self._state_lock = threading.Lock()
        self._outage_since: float | None = None
        self._next_try = 0.0

    def reserve(self) -> float:
        recovering = self._outage_since is not None
        if not self._redis_due():
            return self._fallback.reserve()
        # Coming back from an outage, the first shared slot follows this process's last local
        # one, so that the switch does not put two requests of this process too close.
        not_before = self._fallback.next_free() if recovering else 0.0
        try:
            wait_us = self._reserve(
                keys=[self._redis_key],
                args=[int(self.interval * 1_000_000), self._ttl_ms, int(not_before * 1_000_000)],
            )
            wait = int(wait_us) / 1_000_000
        except self._redis_errors as error:
            self._redis_failed(error)
            return self._fallback.reserve()
        self._redis_answered()
        # Keep the fallback in step: were Redis lost now, it would go on after this slot.
        self._fallback.pause(wait + self.interval)
        return wait

    def confirm(self) -> float:
        self._last_send.member = None
        if self._outage_since is not None:
            return self._fallback.confirm()
        member = uuid.uuid4().hex
        try:
            wait_us = self._confirm(
                keys=[self._sent_key],
                args=[int(self.window * 1_000_000), self.window_count, member, self._ttl_ms],
            )
        except self._redis_errors as error:
            self._redis_failed(error)
            return self._fallback.confirm()
        if int(wait_us) > 0:
            return int(wait_us) / 1_000_000
        self._last_send.member = member
        return 0.0

    def sent(self) -> None:
        member = getattr(self._last_send, "member", None)
        if member is None or self._outage_since is not None:
            return
        self._last_send.member = None
        try:
            self._sent(keys=[self._sent_key], args=[member])
        except self._redis_errors as error:
            self._redis_failed(error)

    def pause(self, seconds: float) -> None:
        seconds = pause_seconds(seconds)
        self._fallback.pause(seconds)
        if self._outage_since is not None:
            # Only reserve() tries Redis during an outage: it hands the local schedule over.
            return
        try:
            self._pause(keys=[self._redis_key], args=[int(seconds * 1_000_000), self._ttl_ms])
        except self._redis_errors as error:
            self._redis_failed(error)
        else:
            self._redis_answered()

    @property
    def redis_reachable(self) -> bool:
        """False from a failed Redis call until one succeeds (the fallback limits meanwhile)."""
        return self._outage_since is None

    shared = True

    def reachable(self) -> bool:
        """Ping Redis (within the limiter's timeout); False when it does not answer."""
        try:
            self._redis.ping()
        except self._redis_errors:
            return False
        return True

    def _redis_due(self) -> bool:
        """Whether this call should use Redis: always, except during an outage, when one call
        every REDIS_RETRY_INTERVAL tries it (the others go straight to the fallback)."""
        with self._state_lock:
            if self._outage_since is None:
                return True
            now = self._clock()
            if now < self._next_try:
                return False
            self._next_try = now + REDIS_RETRY_INTERVAL
            return True

    def _redis_failed(self, error: BaseException) -> None:
        with self._state_lock:
            now = self._clock()
            self._next_try = now + REDIS_RETRY_INTERVAL
            if self._outage_since is not None:
                return
            self._outage_since = now
        logger.warning(
            "Sendflare rate limiter: Redis at %s cannot be reached (%s: %s); this process now "
            "limits itself to %g requests/s until Redis answers again, so several processes "
            "together may exceed the account's limit meanwhile.",
            self._where,
            type(error).__name__,
            error,
            self.rate,
        )

    def _redis_answered(self) -> None:
        if self._outage_since is None:
            return
        with self._state_lock:
            since, self._outage_since = self._outage_since, None
        if since is not None:
            logger.info(
                "Sendflare rate limiter: Redis at %s answers again after %.0f s; the limit is "
                "shared again.",
                self._where,
                self._clock() - since,
            )


def _redis_client(url: str | None, timeout: float) -> Any:
    if not url:
        raise SendflareConfigurationError(
            "RedisRateLimiter needs SENDFLARE['RATE_LIMITER_OPTIONS']['url']."
        )
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as error:
        raise SendflareConfigurationError(
            "RedisRateLimiter needs the redis package: pip install 'django-sendflare[redis]'."
        ) from error
    try:
        # Bounded waits and one immediate retry (a pooled connection Redis has closed): a Redis
        # that is down must cost a request milliseconds, not redis-py's default backoff.
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
    except ValueError as error:
        raise SendflareConfigurationError(
            f"SENDFLARE['RATE_LIMITER_OPTIONS']['url'] is not a Redis URL: {error}"
        ) from None


def _redis_errors() -> tuple[type[BaseException], ...]:
    """What a failing Redis raises (socket errors too, in case a client lets one through)."""
    try:
        from redis.exceptions import RedisError
    except ImportError:
        return (OSError,)
    return (RedisError, OSError)


def _describe_redis(client: Any) -> str:
    """host:port/db of the client's server, without its credentials (for the log)."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    if "host" in kwargs:
        return f"{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    return type(client).__name__


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def account_id(conf: SendflareSettings) -> str:
    """A stable name for the account that never reveals its token."""
    digest = hashlib.sha256(f"{conf.api_url}\0{conf.api_token}".encode()).hexdigest()
    return digest[:16]


def limiter_key(conf: SendflareSettings) -> str:
    """What one limiter of this process stands for: the account and the limiter's whole
    configuration (class, rate, every option's value). A digest: it reveals no token or URL."""
    configuration = (conf.rate_limiter, conf.rate_limit, _canonical(conf.rate_limiter_options))
    digest = hashlib.sha256(repr(configuration).encode()).hexdigest()[:16]
    return f"{account_id(conf)}:{digest}"


def _canonical(value: Any) -> Any:
    """An order-independent form of an options value, equal for equal settings."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((repr(k), _canonical(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_canonical(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted(repr(_canonical(v)) for v in value)))
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return value
    # Anything else (a client object, a callable) stands for itself.
    return (type(value).__qualname__, id(value))


def get_rate_limiter(conf: SendflareSettings) -> RateLimiter | None:
    """The one limiter of this process for the account and limiter settings of ``conf``
    (None when RATE_LIMIT is 0)."""
    if conf.rate_limit <= 0:
        return None
    cache_key = limiter_key(conf)
    with _limiters_lock:
        limiter = _limiters.get(cache_key)
        if limiter is None:
            limiter = _build_limiter(conf)
            _limiters[cache_key] = limiter
        return limiter


def _build_limiter(conf: SendflareSettings) -> RateLimiter:
    try:
        limiter_class = import_string(conf.rate_limiter)
    except ImportError as error:
        raise SendflareConfigurationError(
            f"SENDFLARE['RATE_LIMITER'] {conf.rate_limiter!r} cannot be imported: {error}"
        ) from error
    try:
        limiter: RateLimiter = limiter_class(
            rate=conf.rate_limit, key=account_id(conf), **conf.rate_limiter_options
        )
    except TypeError as error:
        raise SendflareConfigurationError(
            f"SENDFLARE['RATE_LIMITER_OPTIONS'] do not fit {conf.rate_limiter}: {error}"
        ) from None
    return limiter
