"""Validators of settings: one rule per kind of value, and the problem a bad value is.

A validator is called with the key, the configured value and the default, and returns the
:class:`Problem` (as the system checks report it), or None. ``expected`` says in words what it
accepts (in messages and in the settings reference), ``check_ids`` the check ids it can report,
and ``clean`` turns a valid value into the one the settings object keeps (a float for a number, a
plain dict for a mapping). The table of settings is in :mod:`.conf`.

Numbers are bounded (see `The bounds of numbers`_ below): a value no clock, socket or limiter can
use (``inf``, ``1e-300`` requests per second) is refused here, by the system checks, instead of
failing later inside a request. :meth:`Validator.require` applies the same rule to a number that
arrives at run time (a backend option, a limiter option, a command-line option).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from .exceptions import SendflareConfigurationError
from .redaction import mask_url


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings, as the system checks report it."""

    id: str
    msg: str
    hint: str
    level: Literal["error", "warning"] = "error"


@dataclass(frozen=True)
class Validator:
    """A rule for one setting: ``E004`` "must be <expected>" unless ``accepts(value)``."""

    expected: str
    check_ids: tuple[str, ...] = ("sendflare.E004",)
    #: Never repeat the value in a message (it may hold a password, e.g. inside a Redis URL).
    secret: bool = False

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is valid."""
        raise NotImplementedError

    def clean(self, value: Any) -> Any:
        """The value the settings object keeps."""
        return value

    def __call__(self, key: str, value: Any, default: Any) -> Problem | None:
        """Return the problem of ``value``, or None when it is valid."""
        if self.accepts(value):
            return None
        shown = f"a {type(value).__name__}" if self.secret else repr(value)
        return Problem(
            self.check_ids[0],
            f"SENDFLARE[{key!r}] must be {self.expected}, not {shown}.",
            f"The default is {default!r}.",
        )

    def require(self, name: str, value: Any) -> Any:
        """``clean(value)``, or raise SendflareConfigurationError: "<name> must be <expected>".

        For a value that arrives at run time rather than from ``settings.SENDFLARE``.
        """
        if not self.accepts(value):
            shown = f"a {type(value).__name__}" if self.secret else repr(value)
            raise SendflareConfigurationError(f"{name} must be {self.expected}, not {shown}.")
        return self.clean(value)


def _is_number(value: object) -> bool:
    """An int or a finite float (not a bool: ``True`` is no number of seconds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Boolean(Validator):
    """True or False (not a truthy string: ``"no"`` is truthy)."""

    expected: str = "True or False"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


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


@dataclass(frozen=True)
class DottedPath(Validator):
    """The dotted import path of a class (imported where it is used, not here)."""

    expected: str = "a dotted import path"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and "." in value


@dataclass(frozen=True)
class Options(Validator):
    """A dict of options, kept as a read-only copy (the settings object is frozen)."""

    expected: str = "a dict"
    secret: bool = True

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def clean(self, value: Any) -> Mapping[str, Any]:
        return MappingProxyType(dict(value))


@dataclass(frozen=True)
class OptionalText(Validator):
    """None, or a non-empty string."""

    expected: str = "None or a non-empty string"

    def accepts(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and bool(value.strip()))


@dataclass(frozen=True)
class Choice(Validator):
    """One of ``choices``."""

    choices: tuple[str, ...] = ()
    expected: str = ""

    def __post_init__(self) -> None:
        if not self.expected:
            object.__setattr__(self, "expected", " or ".join(map(repr, self.choices)))

    def accepts(self, value: Any) -> bool:
        return value in self.choices


@dataclass(frozen=True)
class Token(Validator):
    """The API token: a non-empty string, without whitespace around it (``E001``)."""

    expected: str = "a non-empty string, without surrounding whitespace"
    check_ids: tuple[str, ...] = ("sendflare.E001",)
    secret: bool = True

    def accepts(self, value: Any) -> bool:
        return self("API_TOKEN", value, None) is None

    def __call__(self, key: str, value: Any, default: Any) -> Problem | None:
        if not value or not isinstance(value, str) or not value.strip():
            return Problem(
                "sendflare.E001",
                f"SENDFLARE[{key!r}] is missing or empty.",
                "Create a token on the API Keys page of your Sendflare dashboard and set it, "
                "e.g. SENDFLARE = {'API_TOKEN': env('SENDFLARE_API_TOKEN')}.",
            )
        if value != value.strip() or any(c in value for c in "\r\n"):
            return Problem(
                "sendflare.E001",
                f"SENDFLARE[{key!r}] has surrounding whitespace or a line break.",
                "Strip the value you read from the environment.",
            )
        return None


@dataclass(frozen=True)
class Provider(Choice):
    """A provider preset (``E005``)."""

    check_ids: tuple[str, ...] = ("sendflare.E005",)

    def __call__(self, key: str, value: Any, default: Any) -> Problem | None:
        if self.accepts(value):
            return None
        return Problem(
            "sendflare.E005",
            f"SENDFLARE[{key!r}] is {value!r}.",
            f"Use one of {sorted(self.choices)}, or set API_URL.",
        )


@dataclass(frozen=True)
class ApiUrl(Validator):
    """None (the provider's URL) or an http(s) base URL; plain http only to loopback."""

    expected: str = "None, or the http(s) base URL of the API (https unless loopback)"
    check_ids: tuple[str, ...] = ("sendflare.E002", "sendflare.E003")

    def accepts(self, value: Any) -> bool:
        return self("API_URL", value, None) is None

    def __call__(self, key: str, url: Any, default: Any) -> Problem | None:
        if url is None:
            return None
        name = f"SENDFLARE[{key!r}]"
        hint = "Use the base URL only, e.g. 'https://api.sendflare.io' (no path below /v1)."
        if not isinstance(url, str):
            return Problem("sendflare.E002", f"{name} must be a string.", hint)
        # The URL is shown (it says what is wrong with it), but never the credentials in it.
        shown = repr(mask_url(url))
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            return Problem("sendflare.E002", f"{name} {shown} is malformed.", hint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return Problem(
                "sendflare.E002", f"{name} {shown} is not an http(s) URL with a host.", hint
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            return Problem(
                "sendflare.E002", f"{name} {shown} has a query, fragment or credentials.", hint
            )
        if parts.path.rstrip("/").endswith("/v1"):
            return Problem(
                "sendflare.E002", f"{name} {shown} ends in /v1: the client adds it.", hint
            )
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            return Problem(
                "sendflare.E003",
                f"{name} {shown} uses plain http to a host other than loopback: "
                "the API token would cross the network in clear text.",
                "Use https, or a loopback address (127.0.0.1, ::1, localhost) for the sandbox.",
            )
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
