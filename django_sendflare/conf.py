"""Settings: the ``SENDFLARE`` dict (and a Django 6.1 ``MAILERS`` entry's OPTIONS) -> one object.

The key names of ``SENDFLARE`` are the public contract. Reading them goes through
:func:`validate`, which returns every problem found (the system checks show them all), and
:func:`load_settings`, which raises ``SendflareConfigurationError`` on the first error, so that
a misconfigured project fails loudly however it sends.
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

PROVIDER_URLS: dict[str, str] = {
    "sendflare": "https://api.sendflare.io",
    "sendkit": "https://api.sendkit.best",
}

DEFAULTS: dict[str, Any] = {
    "API_TOKEN": None,
    "PROVIDER": "sendflare",
    # None: the PROVIDER's documented base URL.
    "API_URL": None,
    "APP_ID": None,
    # Seconds to connect and seconds to wait for an answer; a number, or a (connect, read) pair.
    "TIMEOUT": (5.0, 30.0),
    # Requests per second for the whole account (every endpoint, every thread); 0 turns it off.
    "RATE_LIMIT": 5,
    "RATE_LIMITER": "django_sendflare.ratelimit.InProcessRateLimiter",
    "RATE_LIMITER_OPTIONS": {},
    "IGNORE_UNSUPPORTED_FEATURES": False,
    # Retries of requests that cannot have been acted upon (see README, "Retries").
    "MAX_RETRIES": 3,
    "RETRY_MAX_TIME": 30.0,
    # Also retry sends after a read timeout, a dropped connection or a 5xx: may send twice.
    "RETRY_AMBIGUOUS_SENDS": False,
    # Recipients of one send_messages() call sent at once.
    "MAX_CONCURRENT_REQUESTS": 4,
    # Contacts.
    "CONTACT_ADAPTER": "django_sendflare.contacts.adapter.ContactAdapter",
    "SYNC_CONTACTS": True,
    "CONTACTS_ENQUEUE_TASK": False,
    "CONTACTS_RECREATE_TO_CHANGE_STATUS": False,
    "CONTACTS_MAX_ATTEMPTS": 10,
    # Queued mail (QueuedEmailBackend, sendflare_worker).
    "MAIL_ENQUEUE_TASK": False,
    "MAIL_MAX_ATTEMPTS": 10,
    # Days a sent recipient row is kept for the mail log; None keeps them.
    "MAIL_RETENTION_DAYS": 30,
}

_POSITIVE_NUMBERS = ("RETRY_MAX_TIME",)
_NON_NEGATIVE_NUMBERS = ("RATE_LIMIT",)
_NON_NEGATIVE_INTEGERS = ("MAX_RETRIES",)
_POSITIVE_INTEGERS = ("MAX_CONCURRENT_REQUESTS", "CONTACTS_MAX_ATTEMPTS", "MAIL_MAX_ATTEMPTS")
_BOOLEANS = (
    "IGNORE_UNSUPPORTED_FEATURES",
    "RETRY_AMBIGUOUS_SENDS",
    "SYNC_CONTACTS",
    "CONTACTS_ENQUEUE_TASK",
    "CONTACTS_RECREATE_TO_CHANGE_STATUS",
    "MAIL_ENQUEUE_TASK",
)
_DOTTED_PATHS = ("RATE_LIMITER", "CONTACT_ADAPTER")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the settings, as the system checks report it."""

    id: str
    msg: str
    hint: str
    level: Literal["error", "warning"] = "error"


@dataclass(frozen=True)
class SendflareSettings:
    """The validated settings. The token is kept out of ``repr()``."""

    api_token: str = field(repr=False)
    api_url: str
    provider: str
    app_id: str | None
    connect_timeout: float
    read_timeout: float
    rate_limit: float
    rate_limiter: str
    rate_limiter_options: Mapping[str, Any] = field(hash=False)
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

    @property
    def account_key(self) -> tuple[str, str]:
        """What identifies one account: requests sharing it share a rate limiter and a pool."""
        return (self.api_url, self.api_token)


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


def validate(raw: Mapping[str, Any]) -> list[Problem]:
    """Return every problem of a raw settings dict (empty when it is usable)."""
    problems: list[Problem] = []
    for key in raw:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            problems.append(
                Problem(
                    "sendflare.W001",
                    f"SENDFLARE has an unknown key {key!r}: it is ignored.",
                    f"Did you mean {close[0]!r}?" if close else "Remove it; see the README.",
                    level="warning",
                )
            )
    values = {**DEFAULTS, **raw}

    token = values["API_TOKEN"]
    if not token or not isinstance(token, str) or not token.strip():
        problems.append(
            Problem(
                "sendflare.E001",
                "SENDFLARE['API_TOKEN'] is missing or empty.",
                "Create a token on the API Keys page of your Sendflare dashboard and set it, "
                "e.g. SENDFLARE = {'API_TOKEN': env('SENDFLARE_API_TOKEN')}.",
            )
        )
    elif token != token.strip() or any(c in token for c in "\r\n"):
        problems.append(
            Problem(
                "sendflare.E001",
                "SENDFLARE['API_TOKEN'] has surrounding whitespace or a line break.",
                "Strip the value you read from the environment.",
            )
        )

    provider = values["PROVIDER"]
    if provider not in PROVIDER_URLS:
        problems.append(
            Problem(
                "sendflare.E005",
                f"SENDFLARE['PROVIDER'] is {provider!r}.",
                f"Use one of {sorted(PROVIDER_URLS)}, or set API_URL.",
            )
        )
    problems.extend(_url_problems(values["API_URL"]))
    problems.extend(_number_problems(values))

    app_id = values["APP_ID"]
    if app_id is not None and (not isinstance(app_id, str) or not app_id.strip()):
        problems.append(
            Problem(
                "sendflare.E004",
                f"SENDFLARE['APP_ID'] must be a non-empty string, not {app_id!r}.",
                "Copy the application ID from your Sendflare dashboard, or leave APP_ID unset.",
            )
        )
    limiter_options = values["RATE_LIMITER_OPTIONS"]
    if not isinstance(limiter_options, Mapping):
        problems.append(
            Problem(
                "sendflare.E004",
                "SENDFLARE['RATE_LIMITER_OPTIONS'] must be a dict.",
                "For example {'url': 'redis://localhost:6379/0'}.",
            )
        )
    return problems


def _url_problems(url: object) -> list[Problem]:
    if url is None:
        return []
    hint = "Use the base URL only, e.g. 'https://api.sendflare.io' (no path below /v1)."
    if not isinstance(url, str):
        return [Problem("sendflare.E002", "SENDFLARE['API_URL'] must be a string.", hint)]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return [Problem("sendflare.E002", f"SENDFLARE['API_URL'] {url!r} is malformed.", hint)]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Problem(
                "sendflare.E002",
                f"SENDFLARE['API_URL'] {url!r} is not an http(s) URL with a host.",
                hint,
            )
        ]
    if parts.query or parts.fragment or parts.username or parts.password:
        return [
            Problem(
                "sendflare.E002",
                f"SENDFLARE['API_URL'] {url!r} has a query, fragment or credentials.",
                hint,
            )
        ]
    if parts.path.rstrip("/").endswith("/v1"):
        return [
            Problem(
                "sendflare.E002",
                f"SENDFLARE['API_URL'] {url!r} ends in /v1: the client adds it.",
                hint,
            )
        ]
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return [
            Problem(
                "sendflare.E003",
                f"SENDFLARE['API_URL'] {url!r} uses plain http to a host other than loopback: "
                "the API token would cross the network in clear text.",
                "Use https, or a loopback address (127.0.0.1, ::1, localhost) for the sandbox.",
            )
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_problems(values: Mapping[str, Any]) -> list[Problem]:
    problems = []

    def bad(key: str, expected: str) -> None:
        problems.append(
            Problem(
                "sendflare.E004",
                f"SENDFLARE[{key!r}] must be {expected}, not {values[key]!r}.",
                f"The default is {DEFAULTS[key]!r}.",
            )
        )

    timeout = values["TIMEOUT"]
    pair = timeout if isinstance(timeout, (tuple, list)) else (timeout, timeout)
    if len(pair) != 2 or not all(_is_number(t) and t > 0 for t in pair):
        bad("TIMEOUT", "a positive number of seconds or a (connect, read) pair of them")
    for key in _POSITIVE_NUMBERS:
        if not (_is_number(values[key]) and values[key] > 0):
            bad(key, "a positive number")
    for key in _NON_NEGATIVE_NUMBERS:
        if not (_is_number(values[key]) and values[key] >= 0):
            bad(key, "a number >= 0 (0 turns it off)")
    for key in _NON_NEGATIVE_INTEGERS:
        if not (isinstance(values[key], int) and not isinstance(values[key], bool)) or (
            values[key] < 0
        ):
            bad(key, "an integer >= 0")
    for key in _POSITIVE_INTEGERS:
        if not (isinstance(values[key], int) and not isinstance(values[key], bool)) or (
            values[key] < 1
        ):
            bad(key, "an integer >= 1")
    for key in _BOOLEANS:
        if not isinstance(values[key], bool):
            bad(key, "True or False")
    retention = values["MAIL_RETENTION_DAYS"]
    if retention is not None and not (_is_number(retention) and retention > 0):
        bad("MAIL_RETENTION_DAYS", "a positive number of days, or None to keep sent mail")
    for key in _DOTTED_PATHS:
        if not isinstance(values[key], str) or "." not in values[key]:
            bad(key, "a dotted import path")
    return problems


def load_settings(overrides: Mapping[str, Any] | None = None) -> SendflareSettings:
    """Validate and freeze the settings; raise SendflareConfigurationError on any error."""
    raw = raw_settings(overrides)
    errors = [p for p in validate(raw) if p.level == "error"]
    if errors:
        raise SendflareConfigurationError(
            " ".join(f"{p.msg} {p.hint}" for p in errors) + f" [{errors[0].id}]"
        )
    values = {**DEFAULTS, **{k: v for k, v in raw.items() if k in DEFAULTS}}
    timeout = values["TIMEOUT"]
    connect_timeout, read_timeout = (
        timeout if isinstance(timeout, (tuple, list)) else (timeout, timeout)
    )
    return SendflareSettings(
        api_token=values["API_TOKEN"],
        api_url=(values["API_URL"] or PROVIDER_URLS[values["PROVIDER"]]).rstrip("/"),
        provider=values["PROVIDER"],
        app_id=values["APP_ID"],
        connect_timeout=float(connect_timeout),
        read_timeout=float(read_timeout),
        rate_limit=float(values["RATE_LIMIT"]),
        rate_limiter=values["RATE_LIMITER"],
        rate_limiter_options=dict(values["RATE_LIMITER_OPTIONS"]),
        ignore_unsupported_features=values["IGNORE_UNSUPPORTED_FEATURES"],
        max_retries=values["MAX_RETRIES"],
        retry_max_time=float(values["RETRY_MAX_TIME"]),
        retry_ambiguous_sends=values["RETRY_AMBIGUOUS_SENDS"],
        max_concurrent_requests=values["MAX_CONCURRENT_REQUESTS"],
        contact_adapter=values["CONTACT_ADAPTER"],
        sync_contacts=values["SYNC_CONTACTS"],
        contacts_enqueue_task=values["CONTACTS_ENQUEUE_TASK"],
        contacts_recreate_to_change_status=values["CONTACTS_RECREATE_TO_CHANGE_STATUS"],
        contacts_max_attempts=values["CONTACTS_MAX_ATTEMPTS"],
        mail_enqueue_task=values["MAIL_ENQUEUE_TASK"],
        mail_max_attempts=values["MAIL_MAX_ATTEMPTS"],
        mail_retention_days=(
            None if values["MAIL_RETENTION_DAYS"] is None else float(values["MAIL_RETENTION_DAYS"])
        ),
    )


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
