"""The documented rate limit: N requests per second per token, all endpoints together.

A sliding window: a request is refused when ``rate`` requests were already accepted in the preceding
1.0 s (the half-open interval ``(now - 1.0, now]``). Refused requests do not count, so a client that
retries after ``Retry-After`` is not punished for having been refused.
"""

from __future__ import annotations

import math
from collections import deque

WINDOW_SECONDS = 1.0


class SlidingWindowLimiter:
    """Per-key sliding-window limiter; the caller holds the lock and passes the clock reading."""

    def __init__(self, rate: int) -> None:
        """``rate`` accepted requests per second per key; 0 turns the limiter off."""
        if rate < 0:
            raise ValueError("rate must be >= 0")
        self.rate = rate
        self._accepted: dict[str, deque[float]] = {}

    def acquire(self, key: str, now: float) -> int:
        """Accept and count a request (return 0), or refuse it (return Retry-After seconds)."""
        if self.rate == 0:
            return 0
        window = self._accepted.setdefault(key, deque())
        while window and now - window[0] >= WINDOW_SECONDS:
            window.popleft()
        if len(window) >= self.rate:
            # The oldest counted request leaves the window at window[0] + 1.0; Retry-After is
            # whole seconds (RFC 9110) and at least 1.
            return max(1, math.ceil(window[0] + WINDOW_SECONDS - now))
        window.append(now)
        return 0

    def reset(self) -> None:
        """Forget every window."""
        self._accepted.clear()
