"""Validators of settings: one rule per kind of value, and the problem a bad value is.

A validator is called with the key, the configured value and the default, and returns the
:class:`Problem` (as the system checks report it), or None. ``expected`` says in words what it
accepts (in messages and in the settings reference), ``check_ids`` the check ids it can report,
and ``clean`` turns a valid value into the one the settings object keeps (a float for a number, a
plain dict for a mapping). The table of settings is in :mod:`.conf`; the validators of numbers,
and the bounds of each, are in :mod:`.bounds`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Boolean(Validator):
    """True or False (not a truthy string: ``"no"`` is truthy)."""

    expected: str = "True or False"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


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
                "e.g. SENDFLARE = {'API_TOKEN': env('SENDFLARE_API_TOKEN')}. Against the "
                "local sandbox (python -m django_sendflare.sandbox) any non-empty token "
                "works, unless it was started with --token.",
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
        hint = (
            "Use the base URL only, without /v1: e.g. 'https://api.sendflare.io', or "
            "'http://127.0.0.1:8025' for the sandbox started with --port 8025."
        )
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
