"""The rate limiters: spacing, windows, threads, pause, and the Redis one across processes."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.conf import settings

from django_sendflare.conf import load_settings
from django_sendflare.ratelimit import (
    InProcessRateLimiter,
    RedisRateLimiter,
    get_rate_limiter,
)


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
