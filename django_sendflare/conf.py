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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .exceptions import SendflareConfigurationError
from .validators import (
    ATTEMPTS,
    CONCURRENT_REQUESTS,
    RATE_LIMIT,
    RETENTION_DAYS,
    RETRIES,
    RETRY_SECONDS,
    ApiUrl,
    Boolean,
    DottedPath,
    OptionalText,
    Options,
    Problem,
    Provider,
    Timeout,
    Token,
    Validator,
)

__all__ = [
    "BY_KEY",
    "DEFAULTS",
    "PROVIDER_URLS",
    "SETTINGS",
    "Problem",
    "SendflareSettings",
    "Setting",
    "get_settings",
    "load_settings",
    "raw_settings",
    "read_setting",
    "validate",
]

PROVIDER_URLS: dict[str, str] = {
    "sendflare": "https://api.sendflare.io",
    "sendkit": "https://api.sendkit.best",
}


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
        "The API token (Bearer) of your Sendflare or SendKit account. Required when something "
        "sends with SENDFLARE (see below). Never shown in "
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
        RATE_LIMIT,
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
        RETRIES,
        "Retries of a request that cannot have been acted upon (connection refused, 429, ...).",
    ),
    Setting(
        "RETRY_MAX_TIME",
        30.0,
        RETRY_SECONDS,
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
        CONCURRENT_REQUESTS,
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
        ATTEMPTS,
        "Attempts of one contact change before it is marked failed.",
    ),
    Setting(
        "MAIL_ENQUEUE_TASK",
        False,
        Boolean(),
        "With the QueuedEmailBackend: enqueue a django.tasks task for each message when the "
        "transaction that queued it commits, besides ``sendflare_worker``'s polling.",
    ),
    Setting(
        "MAIL_MAX_ATTEMPTS",
        10,
        ATTEMPTS,
        "Delivery runs of a queued message that may end in a transient failure (API down, "
        "429) before its remaining recipients are marked failed.",
    ),
    Setting(
        "MAIL_RETENTION_DAYS",
        30,
        RETENTION_DAYS,
        "Days the mail log keeps a queued message once every recipient is sent (or "
        "discarded); the worker and ``purge_sendflare_mail`` delete older ones. None keeps "
        "them. Failed and unknown mail is kept until you act on it.",
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
    mail_enqueue_task: bool
    mail_max_attempts: int
    mail_retention_days: float | None

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
