"""Settings: the ``SENDFLARE`` dict (and a Django 6.1 ``MAILERS`` entry's OPTIONS) -> one object.

Every setting is one row of :data:`SETTINGS`: its key, its default, the validator that checks it
and a line saying what it does. That one table feeds

* :func:`validate`, which returns every problem found (the system checks show them all),
* :func:`load_settings`, which raises ``SendflareConfigurationError`` on the first error and
  otherwise returns the frozen :class:`SendflareSettings`, so that a misconfigured project fails
  loudly however it sends,
* :func:`read_setting`, which reads one setting on its own, for code that must keep working when
  another setting is broken (the contact receivers run inside every user save),
* the settings reference (docs/reference/settings.rst, tested against the table).

To add a setting: add a :class:`Setting` row to :data:`SETTINGS` and a field of the same name,
lower case, to :class:`SendflareSettings`; the tests then say what to add to the reference.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .exceptions import SendflareConfigurationError
from .redaction import mask_url

PROVIDER_URLS: dict[str, str] = {
    "sendflare": "https://api.sendflare.io",
    "sendkit": "https://api.sendkit.best",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings, as the system checks report it."""

    id: str
    msg: str
    hint: str
    level: Literal["error", "warning"] = "error"


# Validators ------------------------------------------------------------------------------------
#
# A validator is called with the key and the configured value and returns the problem, or None.
# ``expected`` says in words what it accepts (in messages and in the settings reference) and
# ``check_ids`` the system check ids it can report. ``clean`` turns a valid value into the one the
# settings object keeps (a float for a number, a plain dict for a mapping).


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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    """An int (not a bool) of at least ``minimum``."""

    minimum: int = 0
    expected: str = ""

    def __post_init__(self) -> None:
        if not self.expected:
            object.__setattr__(self, "expected", f"an integer >= {self.minimum}")

    def accepts(self, value: Any) -> bool:
        return _is_integer(value) and value >= self.minimum


@dataclass(frozen=True)
class Number(Validator):
    """An int or float (not a bool); positive, or also 0 with ``zero_allowed``."""

    zero_allowed: bool = False
    expected: str = ""

    def __post_init__(self) -> None:
        if not self.expected:
            wording = "a number >= 0 (0 turns it off)" if self.zero_allowed else "a positive number"
            object.__setattr__(self, "expected", wording)

    def accepts(self, value: Any) -> bool:
        return _is_number(value) and (value >= 0 if self.zero_allowed else value > 0)

    def clean(self, value: Any) -> float:
        return float(value)


@dataclass(frozen=True)
class Timeout(Validator):
    """Seconds: one positive number for both, or a (connect, read) pair."""

    expected: str = "a positive number of seconds or a (connect, read) pair of them"

    def accepts(self, value: Any) -> bool:
        pair = value if isinstance(value, (tuple, list)) else (value, value)
        return len(pair) == 2 and all(_is_number(t) and t > 0 for t in pair)

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
    """A dict of options, kept as a plain dict."""

    expected: str = "a dict"
    secret: bool = True

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def clean(self, value: Any) -> dict[str, Any]:
        return dict(value)


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


# The table -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One key of ``settings.SENDFLARE``."""

    key: str
    default: Any
    validator: Validator
    #: What it does, in one or two sentences (the settings reference shows it).
    help: str

    @property
    def attribute(self) -> str:
        """The name of the field of :class:`SendflareSettings` that holds it."""
        return self.key.lower()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "API_TOKEN",
        None,
        Token(),
        "The API token (Bearer) of your Sendflare or SendKit account. Required. Never shown in "
        "a repr, a log line or a check message.",
    ),
    Setting(
        "PROVIDER",
        "sendflare",
        Provider(choices=tuple(PROVIDER_URLS)),
        "Which service's documented base URL to use: ``'sendflare'`` "
        "(https://api.sendflare.io) or ``'sendkit'`` (https://api.sendkit.best).",
    ),
    Setting(
        "API_URL",
        None,
        ApiUrl(),
        "The base URL of the API, without ``/v1`` (the client adds it); overrides PROVIDER. "
        "Plain http is accepted for loopback hosts only (the sandbox).",
    ),
    Setting(
        "APP_ID",
        None,
        OptionalText(),
        "The application ID of your contact list. Contact sync needs it; sending does not.",
    ),
    Setting(
        "TIMEOUT",
        (5.0, 30.0),
        Timeout(),
        "Seconds to connect and seconds to wait for an answer, per request.",
    ),
    Setting(
        "RATE_LIMIT",
        5,
        Number(zero_allowed=True),
        "Requests per second for the whole account (every endpoint, every thread); "
        "0 turns the limiter off.",
    ),
    Setting(
        "RATE_LIMITER",
        "django_sendflare.ratelimit.InProcessRateLimiter",
        DottedPath(),
        "The limiter class: the in-process one, or "
        "``'django_sendflare.ratelimit.RedisRateLimiter'`` to share the limit between processes.",
    ),
    Setting(
        "RATE_LIMITER_OPTIONS",
        {},
        Options(),
        "Keyword arguments of the limiter class, e.g. ``{'url': 'redis://localhost:6379/0'}``. "
        "The value is never repeated in a check message (a URL may hold a password).",
    ),
    Setting(
        "IGNORE_UNSUPPORTED_FEATURES",
        False,
        Boolean(),
        "Send messages with features the API cannot carry (cc, attachments, custom headers...) "
        "without them, instead of refusing them.",
    ),
    Setting(
        "MAX_RETRIES",
        3,
        Integer(minimum=0),
        "Retries of a request that cannot have been acted upon (connection refused, 429, ...).",
    ),
    Setting(
        "RETRY_MAX_TIME",
        30.0,
        Number(),
        "Seconds after which a request is no longer retried, whatever MAX_RETRIES says.",
    ),
    Setting(
        "RETRY_AMBIGUOUS_SENDS",
        False,
        Boolean(),
        "Also retry sends after a read timeout, a dropped connection or a 5xx: the message may "
        "then be sent twice.",
    ),
    Setting(
        "MAX_CONCURRENT_REQUESTS",
        4,
        Integer(minimum=1),
        "Recipients of one ``send_messages()`` call sent at once (each still waits for its slot "
        "in the rate limiter).",
    ),
    Setting(
        "CONTACT_ADAPTER",
        "django_sendflare.contacts.adapter.ContactAdapter",
        DottedPath(),
        "The ContactAdapter subclass that turns a user into a contact (check E100 imports it).",
    ),
    Setting(
        "SYNC_CONTACTS",
        True,
        Boolean(),
        "Record user changes for contact sync (needs APP_ID; check W100 warns without it).",
    ),
    Setting(
        "CONTACTS_ENQUEUE_TASK",
        False,
        Boolean(),
        "Enqueue a django.tasks task when a transaction that changed users commits, instead of "
        "waiting for ``sync_contacts --watch`` (check E101 needs the tasks framework).",
    ),
    Setting(
        "CONTACTS_RECREATE_TO_CHANGE_STATUS",
        False,
        Boolean(),
        "Change a contact's status by deleting and creating it again (the API has no update).",
    ),
    Setting(
        "CONTACTS_MAX_ATTEMPTS",
        10,
        Integer(minimum=1),
        "Attempts of one contact change before it is marked failed.",
    ),
)

BY_KEY: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}
#: The default of every key (read by the backend to recognise its OPTIONS).
DEFAULTS: dict[str, Any] = {setting.key: setting.default for setting in SETTINGS}


@dataclass(frozen=True)
class SendflareSettings:
    """The validated settings: one field per row of :data:`SETTINGS` (the token out of repr).

    Two fields are derived: ``api_url`` is the PROVIDER's URL when API_URL is None, and TIMEOUT
    is kept as ``connect_timeout`` and ``read_timeout``.
    """

    api_token: str = field(repr=False)
    api_url: str
    provider: str
    app_id: str | None
    connect_timeout: float
    read_timeout: float
    rate_limit: float
    rate_limiter: str
    rate_limiter_options: Mapping[str, Any] = field(hash=False, repr=False)
    ignore_unsupported_features: bool
    max_retries: int
    retry_max_time: float
    retry_ambiguous_sends: bool
    max_concurrent_requests: int
    contact_adapter: str
    sync_contacts: bool
    contacts_enqueue_task: bool
    contacts_recreate_to_change_status: bool
    contacts_max_attempts: int

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> SendflareSettings:
        """Build it from cleaned values by key (every key of :data:`SETTINGS`)."""
        fields = {BY_KEY[key].attribute: value for key, value in values.items()}
        fields["connect_timeout"], fields["read_timeout"] = fields.pop("timeout")
        fields["api_url"] = (fields["api_url"] or PROVIDER_URLS[fields["provider"]]).rstrip("/")
        return cls(**fields)

    @property
    def account_key(self) -> tuple[str, str]:
        """What identifies one account: requests sharing it share a rate limiter and a pool."""
        return (self.api_url, self.api_token)


# Reading ---------------------------------------------------------------------------------------


def raw_settings(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``SENDFLARE`` from the Django settings, with ``overrides`` (backend OPTIONS) on top."""
    configured = getattr(django_settings, "SENDFLARE", None)
    raw: dict[str, Any] = {}
    if configured is not None:
        if not isinstance(configured, Mapping):
            raise SendflareConfigurationError(
                f"settings.SENDFLARE must be a dict, not {type(configured).__name__}."
            )
        raw.update(configured)
    if overrides:
        raw.update({key.upper(): value for key, value in overrides.items()})
    return raw


def _unknown_key_problem(key: object) -> Problem:
    close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
    return Problem(
        "sendflare.W001",
        f"SENDFLARE has an unknown key {key!r}: it is ignored.",
        f"Did you mean {close[0]!r}?"
        if close
        else "Remove it; the settings reference lists every key.",
        level="warning",
    )


def validate(raw: Mapping[str, Any]) -> list[Problem]:
    """Return every problem of a raw settings dict (empty when it is usable)."""
    problems = [_unknown_key_problem(key) for key in raw if key not in BY_KEY]
    for setting in SETTINGS:
        value = raw.get(setting.key, setting.default)
        problem = setting.validator(setting.key, value, setting.default)
        if problem is not None:
            problems.append(problem)
    return problems


def load_settings(overrides: Mapping[str, Any] | None = None) -> SendflareSettings:
    """Validate and freeze the settings; raise SendflareConfigurationError on any error."""
    raw = raw_settings(overrides)
    errors = [p for p in validate(raw) if p.level == "error"]
    if errors:
        raise SendflareConfigurationError(
            " ".join(f"{p.msg} {p.hint}" for p in errors) + f" [{errors[0].id}]"
        )
    return SendflareSettings.from_values(
        {s.key: s.validator.clean(raw.get(s.key, s.default)) for s in SETTINGS}
    )


def read_setting(key: str) -> Any:
    """One setting of ``settings.SENDFLARE``, validated on its own (the others may be broken).

    Raises SendflareConfigurationError when this one is invalid, or SENDFLARE is not a dict.
    """
    setting = BY_KEY[key]
    value = raw_settings().get(key, setting.default)
    problem = setting.validator(key, value, setting.default)
    if problem is not None:
        raise SendflareConfigurationError(f"{problem.msg} {problem.hint} [{problem.id}]")
    return setting.validator.clean(value)


_cached: SendflareSettings | None = None


def get_settings() -> SendflareSettings:
    """The settings from ``settings.SENDFLARE``, validated once and cached until they change."""
    global _cached
    if _cached is None:
        _cached = load_settings()
    return _cached


@receiver(setting_changed)
def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    global _cached
    if setting == "SENDFLARE":
        _cached = None
