"""When to try a failed request again, and how long to wait first. Pure: no I/O, no clock.

Only requests that cannot have been acted upon are retried by default: connection failures
before the request went out, HTTP 429 and service code 100025. A request that may have been
processed (read timeout, connection dropped after sending, 5xx, an unreadable answer) is retried
only when it is idempotent (contact calls, listing) or when the caller opts in for sends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .bounds import RETRIES, RETRY_SECONDS
from .exceptions import SendflareAPIError

#: The longest wait a Retry-After is taken for, in seconds (a day: a daily quota's reset). A
#: longer one is read as this: no request waits for it anyway (RETRY_MAX_TIME is at most an
#: hour), and every number stays one a clock can add.
MAX_RETRY_AFTER = 86_400.0
#: Backoff doublings beyond this change nothing (``base * 2**64`` is past any cap), and
#: ``2 ** attempt`` of a large attempt would not fit a float.
_MAX_DOUBLINGS = 64


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter; Retry-After wins when given."""

    #: Retries after the first attempt (0: never retry).
    max_retries: int = 3
    #: No retry starts later than this many seconds after the first attempt.
    max_time: float = 30.0
    #: Retry requests that may have been processed, even when they are not idempotent.
    retry_ambiguous: bool = False
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        # The same bounds as MAX_RETRIES and RETRY_MAX_TIME (the policy may be built by hand).
        RETRIES.require("RetryPolicy.max_retries", self.max_retries)
        RETRY_SECONDS.require("RetryPolicy.max_time", self.max_time)

    def should_retry(self, error: SendflareAPIError, *, attempt: int, idempotent: bool) -> bool:
        """Whether ``error``, raised by the ``attempt``-th try (1-based), deserves another."""
        if attempt > self.max_retries or not error.retryable:
            return False
        if error.may_have_been_processed and not idempotent:
            return self.retry_ambiguous
        return True

    def delay(self, error: SendflareAPIError, *, attempt: int) -> float:
        """Seconds to wait before try ``attempt + 1``."""
        if error.retry_after is not None:
            return min(max(0.0, error.retry_after), MAX_RETRY_AFTER)
        return backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_cap, rng=self.rng)


_rng = random.Random()  # noqa: S311 - jitter, not security


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after the ``attempt``-th failed try (1-based): THE backoff formula.

    Exponential (``base * 2 ** (attempt - 1)``), capped at ``cap``, with jitter over the upper
    half: clients (or queue rows) that failed together do not come back together. Used by the
    HTTP retries (:class:`RetryPolicy`) and by the durable queue (:mod:`django_sendflare.queue`).
    """
    ceiling = min(cap, base * (2 ** min(max(0, attempt - 1), _MAX_DOUBLINGS)))
    return (rng or _rng).uniform(ceiling / 2, ceiling)
