"""Numbers: the validators of numbers, and the bounds of every number the library takes.

A value no clock, socket or limiter can use (``inf``, ``nan``, ``1e-300`` requests per second)
is refused here, by the system checks, instead of failing later inside a request.
:meth:`~.validators.Validator.require` applies the same rule to a number that arrives at run
time: a backend's option, a limiter's option, a command-line option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .validators import Validator


def _is_number(value: object) -> bool:
    """An int or a finite float (not a bool: ``True`` is no number of seconds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Integer(Validator):
    """An int (not a bool) of at least ``minimum`` and, when given, at most ``maximum``."""

    minimum: int = 0
    maximum: int | None = None
    expected: str = ""

    def __post_init__(self) -> None:
        if not self.expected:
            wording = (
                f"an integer >= {self.minimum}"
                if self.maximum is None
                else f"an integer from {self.minimum} to {self.maximum}"
            )
            object.__setattr__(self, "expected", wording)

    def accepts(self, value: Any) -> bool:
        return (
            _is_integer(value)
            and value >= self.minimum
            and (self.maximum is None or value <= self.maximum)
        )


@dataclass(frozen=True)
class Number(Validator):
    """A finite int or float (not a bool): positive, or at least ``minimum`` when it is given,
    and at most ``maximum`` when that is given.

    ``zero_allowed`` accepts 0 too ("0 turns it off"), ``none_allowed`` None ("None keeps them");
    ``unit`` names what is counted, in the wording ("seconds").
    """

    minimum: float | None = None
    maximum: float | None = None
    zero_allowed: bool = False
    none_allowed: bool = False
    unit: str = ""
    expected: str = ""

    def __post_init__(self) -> None:
        if not self.expected:
            object.__setattr__(self, "expected", self._wording())

    def _wording(self) -> str:
        noun = f"a number of {self.unit}" if self.unit else "a number"
        if self.minimum is not None:
            wording = f"{noun} >= {self.minimum:g}"
            if self.maximum is not None:
                wording = f"{noun} from {self.minimum:g} to {self.maximum:g}"
        elif self.zero_allowed and self.maximum is None:
            wording = f"{noun} >= 0 (0 turns it off)"
        else:
            wording = f"a positive {noun.removeprefix('a ')}"
            if self.maximum is not None:
                wording += f", at most {self.maximum:g}"
        if self.zero_allowed and (self.minimum is not None or self.maximum is not None):
            wording = f"0 (off), or {wording}"
        if self.none_allowed:
            wording += ", or None"
        return wording

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none_allowed
        if not _is_number(value):
            return False
        if value == 0 and self.zero_allowed:
            return True
        low = value >= self.minimum if self.minimum is not None else value > 0
        return low and (self.maximum is None or value <= self.maximum)

    def clean(self, value: Any) -> float | None:
        return None if value is None else float(value)


@dataclass(frozen=True)
class Timeout(Validator):
    """Seconds: one number for both, or a (connect, read) pair, each within ``seconds``."""

    seconds: Number = field(default_factory=lambda: _request_seconds())
    expected: str = ""

    def __post_init__(self) -> None:
        if not self.expected:
            wording = f"{self.seconds.expected}, or a (connect, read) pair of them"
            object.__setattr__(self, "expected", wording)

    def accepts(self, value: Any) -> bool:
        pair = value if isinstance(value, (tuple, list)) else (value, value)
        return len(pair) == 2 and all(self.seconds.accepts(t) for t in pair)

    def clean(self, value: Any) -> tuple[float, float]:
        connect, read = value if isinstance(value, (tuple, list)) else (value, value)
        return (float(connect), float(read))


# The bounds of numbers -------------------------------------------------------------------------
#
# Why each bound (the settings reference says the same to operators):
#
# * Seconds of one request (TIMEOUT, a Redis limiter's ``timeout``): under 10 ms no API answers,
#   and a read timeout makes a send *unknown* (it may have been delivered), so a tiny value would
#   turn every message into one a person must look at; over an hour a request holds a worker
#   thread and its lease for longer than any answer is worth waiting. ``inf`` cannot be given to
#   a socket at all (OverflowError inside the request).
# * Requests per second (RATE_LIMIT): the limiter sleeps ``1.02 / rate`` between two requests:
#   below 0.01 (one request per 102 s) that wait outgrows any sensible run, and ``1e-300`` cannot
#   be slept at all; above 10,000 the spacing falls under 102 microseconds, the resolution of
#   the Redis limiter's clock, and is far above any account's limit (the documented one is 5).
# * Seconds of retries (RETRY_MAX_TIME): at most an hour, like a request.
# * Counts (MAX_RETRIES, MAX_CONCURRENT_REQUESTS, the MAX_ATTEMPTS): each is a loop or a pool of
#   threads; the caps are far above any useful value and keep the backoff, a thread pool and the
#   database's attempts column within what they can hold.
# * Days (MAIL_RETENTION_DAYS): at most 100 years; ``now - days`` must stay a date.

#: Seconds one request (connecting, or waiting for an answer) may take.
REQUEST_SECONDS = Number(minimum=0.01, maximum=3600.0, unit="seconds")


def _request_seconds() -> Number:
    return REQUEST_SECONDS


#: Requests per second of the rate limiter.
REQUESTS_PER_SECOND = Number(minimum=0.01, maximum=10_000.0, unit="requests per second")
#: The same, where 0 turns the limiter off (RATE_LIMIT).
RATE_LIMIT = Number(
    minimum=REQUESTS_PER_SECOND.minimum,
    maximum=REQUESTS_PER_SECOND.maximum,
    zero_allowed=True,
    unit=REQUESTS_PER_SECOND.unit,
)
#: Seconds after the first attempt of a request within which it may be retried.
RETRY_SECONDS = Number(maximum=3600.0, unit="seconds")
#: Retries of one request.
RETRIES = Integer(minimum=0, maximum=100)
#: Requests in flight at once (threads).
CONCURRENT_REQUESTS = Integer(minimum=1, maximum=256)
#: Attempts of one queued item (a message, a contact change) before it is parked as failed.
ATTEMPTS = Integer(minimum=1, maximum=1000)
#: Days the mail log is kept (None: forever).
RETENTION_DAYS = Number(maximum=36_500.0, none_allowed=True, unit="days")
#: Seconds a worker waits between two looks at empty queues (``--interval``).
POLL_SECONDS = Number(minimum=0.01, maximum=3600.0, unit="seconds")
#: Days of sent mail to keep, given on the command line (``purge_sendflare_mail --days``).
PURGE_DAYS = Number(minimum=0, maximum=RETENTION_DAYS.maximum, unit="days")
#: Rows read per database query, given on the command line (``--chunk-size``, ``--batch-size``).
MAX_ROWS_PER_QUERY = 100_000
