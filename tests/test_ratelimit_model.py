"""A stateful model of RedisRateLimiter through Redis outages (Hypothesis).

Invariants, whatever the order of sends, pauses, idle time and Redis going away and coming back:

1. No exception reaches the sender.
2. The process's sends are spaced: any ``window_count + 1`` sends in a row span at least one
   window (1.02 s at 5/s), across every switch between Redis and the in-process fallback.
3. A send never goes before the end of a pause the API asked for.
4. The log alternates: one warning when an outage starts, one info when Redis answers again;
   never two warnings without an info between them.
5. Redis down and a send made: the limiter knows (warning logged, ``redis_reachable`` False).
   Redis up again and REDIS_RETRY_INTERVAL gone by: the next send uses Redis again.

Redis is a double here (the three scripts' semantics over the model's clock, and a switch that
makes every call raise ``redis.exceptions.ConnectionError``), so that time can be fast-forwarded;
the scripts themselves run against a real Redis in ``test_ratelimit.py``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

redis_exceptions = pytest.importorskip("redis.exceptions")

from django_sendflare import ratelimit  # noqa: E402
from django_sendflare.ratelimit import RedisRateLimiter  # noqa: E402

EPSILON = 1e-5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class RedisDouble:
    """The limiter's three scripts over one key each, on the model's clock (microseconds)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.down = False
        self.next_slot: dict[str, int] = {}
        self.sent: dict[str, dict[str, int]] = {}

    def register_script(self, source: str) -> Any:
        handler = {
            ratelimit._RESERVE_SCRIPT: self._reserve,
            ratelimit._CONFIRM_SCRIPT: self._confirm,
            ratelimit._PAUSE_SCRIPT: self._pause,
            ratelimit._SENT_SCRIPT: self._moved,
        }[source]

        def call(keys: list[str], args: list[Any]) -> int:
            if self.down:
                raise redis_exceptions.ConnectionError("Error 111 connecting. Connection refused.")
            return handler(keys[0], [int(a) if str(a).lstrip("-").isdigit() else a for a in args])

        return call

    def _now(self) -> int:
        return round(self.clock.now * 1_000_000)

    def _reserve(self, key: str, args: list[Any]) -> int:
        interval, _ttl, not_before = args
        now = self._now()
        slot = max(now, self.next_slot.get(key, 0), now + not_before)
        self.next_slot[key] = slot + interval
        return slot - now

    def _confirm(self, key: str, args: list[Any]) -> int:
        window, count, member, _ttl = args
        now = self._now()
        sent = {m: t for m, t in self.sent.get(key, {}).items() if t > now - window}
        self.sent[key] = sent
        if len(sent) < count:
            sent[member] = now
            return 0
        return min(sent.values()) + window - now

    def _moved(self, key: str, args: list[Any]) -> int:
        (member,) = args
        if member in self.sent.get(key, {}):
            self.sent[key][member] = self._now()
        return 0

    def _pause(self, key: str, args: list[Any]) -> int:
        seconds, _ttl = args
        until = self._now() + seconds
        if until > self.next_slot.get(key, 0):
            self.next_slot[key] = until
        return 0


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.levels: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.levels.append(record.levelno)


class RedisOutageModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.redis = RedisDouble(self.clock)
        self.limiter = RedisRateLimiter(5, key="model", client=self.redis, clock=self.clock)
        self.sends: list[float] = []
        self.paused_until = float("-inf")
        self.down_since: float | None = None
        self.up_since = self.clock.now
        self.log = ListHandler()
        logger = logging.getLogger("django_sendflare.ratelimit")
        logger.addHandler(self.log)
        logger.setLevel(logging.INFO)

    def teardown(self) -> None:
        logging.getLogger("django_sendflare.ratelimit").removeHandler(self.log)

    @rule()
    def send(self) -> None:
        redis_was_up_long_enough = (
            not self.redis.down and self.clock.now - self.up_since >= ratelimit.REDIS_RETRY_INTERVAL
        )
        self.limiter.acquire(self.clock.sleep)
        self.limiter.sent()
        self.sends.append(self.clock.now)
        assert self.clock.now >= self.paused_until - EPSILON
        if self.redis.down:
            assert not self.limiter.redis_reachable
            assert self.log.levels and self.log.levels[-1] == logging.WARNING
        elif redis_was_up_long_enough:
            assert self.limiter.redis_reachable

    @rule(seconds=st.floats(0.0, 3.0))
    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)
        self.paused_until = max(self.paused_until, self.clock.now + seconds)

    @rule(seconds=st.floats(0.0, 8.0))
    def idle(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule()
    def redis_goes_away(self) -> None:
        self.redis.down = True

    @rule()
    def redis_comes_back(self) -> None:
        if self.redis.down:
            self.redis.down = False
            self.up_since = self.clock.now

    @invariant()
    def sends_are_spaced(self) -> None:
        count, window = self.limiter.window_count, self.limiter.window
        for first, last in zip(self.sends, self.sends[count:], strict=False):
            assert last - first >= window - EPSILON, (first, last)

    @invariant()
    def one_warning_per_outage_one_info_per_return(self) -> None:
        for earlier, later in zip(self.log.levels, self.log.levels[1:], strict=False):
            assert earlier != later, self.log.levels
        if self.log.levels:
            assert self.log.levels[0] == logging.WARNING


RedisOutageModel.TestCase.settings = hypothesis_settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
test_redis_outage_model = RedisOutageModel.TestCase
