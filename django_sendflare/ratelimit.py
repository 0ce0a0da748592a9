"""Rate limiters: every request of one account waits for its slot here before it is sent.

The API allows ``RATE_LIMIT`` requests per second for the whole account, across all endpoints.
A limiter hands out start times spaced ``(1 s + JITTER_MARGIN) / rate`` apart, so that no
one-second window ever holds more than ``rate`` request starts, however many threads ask, and
requests that the network delays a little do not arrive ``rate + 1`` to a second at the API.

:class:`InProcessRateLimiter` does this for one process. :class:`RedisRateLimiter` does it for
every process and host that shares a Redis server. Any class with the :class:`RateLimiter`
interface can be named in ``SENDFLARE["RATE_LIMITER"]``; it is built once per account and
process with ``cls(rate=..., key=..., **RATE_LIMITER_OPTIONS)``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from django.utils.module_loading import import_string

from .conf import SendflareSettings
from .exceptions import SendflareConfigurationError

logger = logging.getLogger(__name__)

#: Seconds added to each window of ``rate`` requests: jitter on the way to the API must not turn
#: requests sent exactly 1 s apart into requests received 999 ms apart. Costs 2% of the limit.
JITTER_MARGIN = 0.02


class RateLimiter(ABC):
    """Hands out request slots to at most ``rate`` requests per second."""

    def __init__(self, rate: float, key: str = "default") -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0; use no limiter to turn limiting off")
        self.rate = rate
        self.interval = (1.0 + JITTER_MARGIN) / rate
        self.key = key

    @abstractmethod
    def reserve(self) -> float:
        """Reserve the next slot; return how many seconds to wait before using it."""

    @abstractmethod
    def pause(self, seconds: float) -> None:
        """Hold every later slot back for ``seconds`` (the API said to slow down)."""

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until this caller may send; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            sleep(wait)
        return max(wait, 0.0)


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

    def reserve(self) -> float:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        return slot - now

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)


# Reserve a slot atomically on the Redis server, using the server's clock so that hosts with
# skewed clocks still agree. Returns the wait in microseconds.
_RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local next_slot = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, next_slot)
redis.call('SET', KEYS[1], string.format('%d', slot + interval), 'PX', ARGV[2])
return slot - now
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


class RedisRateLimiter(RateLimiter):
    """Spaces the requests of every process and host that share one Redis server.

    Options (``RATE_LIMITER_OPTIONS``): ``url`` (required), ``prefix``. Needs the ``redis``
    package: ``pip install django-sendflare[redis]``.
    """

    def __init__(
        self,
        rate: float,
        key: str = "default",
        url: str | None = None,
        prefix: str = "sendflare:ratelimit:",
        client: Any = None,
    ) -> None:
        super().__init__(rate, key)
        if client is None:
            if not url:
                raise SendflareConfigurationError(
                    "RedisRateLimiter needs SENDFLARE['RATE_LIMITER_OPTIONS']['url']."
                )
            try:
                import redis
            except ImportError as error:
                raise SendflareConfigurationError(
                    "RedisRateLimiter needs the redis package: "
                    "pip install 'django-sendflare[redis]'."
                ) from error
            client = redis.Redis.from_url(url)
        self._redis = client
        self._redis_key = prefix + key
        self._reserve = client.register_script(_RESERVE_SCRIPT)
        self._pause = client.register_script(_PAUSE_SCRIPT)
        # The key only has to outlive the slots it reserves.
        self._ttl_ms = max(int(self.interval * 1000 * 10), 60_000)

    def reserve(self) -> float:
        wait_us = self._reserve(
            keys=[self._redis_key], args=[int(self.interval * 1_000_000), self._ttl_ms]
        )
        return int(wait_us) / 1_000_000

    def pause(self, seconds: float) -> None:
        self._pause(keys=[self._redis_key], args=[int(seconds * 1_000_000), self._ttl_ms])


_limiters: dict[tuple[str, str, float, str], RateLimiter] = {}
_limiters_lock = threading.Lock()


def account_id(conf: SendflareSettings) -> str:
    """A stable name for the account that never reveals its token."""
    digest = hashlib.sha256(f"{conf.api_url}\0{conf.api_token}".encode()).hexdigest()
    return digest[:16]


def get_rate_limiter(conf: SendflareSettings) -> RateLimiter | None:
    """The one limiter of this process for the account of ``conf`` (None when RATE_LIMIT is 0)."""
    if conf.rate_limit <= 0:
        return None
    key = account_id(conf)
    cache_key = (conf.rate_limiter, key, conf.rate_limit, repr(sorted(conf.rate_limiter_options)))
    with _limiters_lock:
        limiter = _limiters.get(cache_key)
        if limiter is None:
            try:
                limiter_class = import_string(conf.rate_limiter)
            except ImportError as error:
                raise SendflareConfigurationError(
                    f"SENDFLARE['RATE_LIMITER'] {conf.rate_limiter!r} cannot be imported: {error}"
                ) from error
            limiter = limiter_class(rate=conf.rate_limit, key=key, **conf.rate_limiter_options)
            _limiters[cache_key] = limiter
        return limiter
