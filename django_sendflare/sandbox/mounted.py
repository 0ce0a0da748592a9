"""The sandbox used by the mounted Django views: one per process, configured by settings.

The mounted views answer only while ``DEBUG`` is on (404 otherwise), unless
``SENDFLARE_SANDBOX["SERVE_WITHOUT_DEBUG"]`` is True: see :func:`serving_allowed`.

``SENDFLARE_SANDBOX`` is a dict; every key is optional::

    SENDFLARE_SANDBOX = {
        "SERVE_WITHOUT_DEBUG": False,   # answer with DEBUG off too (a shared staging host)
        "TOKEN": None,                  # the only Bearer token accepted; None: any non-empty token
        "RATE_LIMIT": 5,                # requests/s per token, all endpoints; 0 turns it off
        "MAX_MESSAGE_SIZE": 10485760,   # bytes of a /v1/send body before code 100023
        "ALLOWED_SENDERS": [],          # sender allow-list (code 100048); empty: any sender
        "DAILY_QUOTA": 0,               # sends per token per UTC day (code 100031); 0: off
        "ERRORS_AS_HTTP_200": False,    # service errors as HTTP 200 instead of 4xx
        "SEED": None,                   # fault seed; None picks one (shown by /_sandbox/api/faults)
        "LATENCY": 0.0,                 # seconds added to every API request
        "JITTER": 0.0,                  # plus uniform(0, JITTER) seconds
        "SLOW": 2.0,                    # seconds added by the "latency" fault
        "FAULT_RATES": {},              # kind -> probability, e.g. {"503": 0.1, "reset": 0.05}
        "FAULT_QUEUE": [],              # kinds for the next requests, in order ("ok": no fault)
    }
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from django_sendflare.sandbox.engine import Sandbox, SandboxConfig
from django_sendflare.sandbox.faults import FaultSettings

SETTING_NAME = "SENDFLARE_SANDBOX"
#: The key that lets the mounted views answer with DEBUG off.
SERVE_WITHOUT_DEBUG = "SERVE_WITHOUT_DEBUG"
KNOWN_KEYS = frozenset(
    {
        SERVE_WITHOUT_DEBUG,
        "TOKEN",
        "RATE_LIMIT",
        "MAX_MESSAGE_SIZE",
        "ALLOWED_SENDERS",
        "DAILY_QUOTA",
        "ERRORS_AS_HTTP_200",
        "SEED",
        "LATENCY",
        "JITTER",
        "SLOW",
        "FAULT_RATES",
        "FAULT_QUEUE",
    }
)

_lock = threading.Lock()
_default: Sandbox | None = None


def config_from_mapping(options: Mapping[str, Any]) -> SandboxConfig:
    """Build a :class:`SandboxConfig` from a ``SENDFLARE_SANDBOX``-style dict."""
    unknown = sorted(set(options) - KNOWN_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"{SETTING_NAME} has unknown key(s): {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_KEYS))}"
        )
    if not isinstance(options.get(SERVE_WITHOUT_DEBUG, False), bool):
        raise ImproperlyConfigured(f"{SETTING_NAME}[{SERVE_WITHOUT_DEBUG!r}] must be True or False")
    defaults = SandboxConfig()
    fault_defaults = FaultSettings()
    try:
        faults = FaultSettings(
            seed=options.get("SEED"),
            latency=options.get("LATENCY", fault_defaults.latency),
            jitter=options.get("JITTER", fault_defaults.jitter),
            slow=options.get("SLOW", fault_defaults.slow),
            rates=dict(options.get("FAULT_RATES") or {}),
            queue=list(options.get("FAULT_QUEUE") or []),
        )
        return SandboxConfig(
            token=options.get("TOKEN"),
            rate_limit=options.get("RATE_LIMIT", defaults.rate_limit),
            max_message_size=options.get("MAX_MESSAGE_SIZE", defaults.max_message_size),
            allowed_senders=tuple(options.get("ALLOWED_SENDERS") or ()),
            daily_quota=options.get("DAILY_QUOTA", defaults.daily_quota),
            errors_as_http_200=bool(options.get("ERRORS_AS_HTTP_200", False)),
            faults=faults,
        )
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{SETTING_NAME}: {exc}") from exc


def _options() -> Mapping[str, Any]:
    options = getattr(settings, SETTING_NAME, None) or {}
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(f"{SETTING_NAME} must be a dict, not {type(options).__name__}")
    return options


def serving_allowed() -> bool:
    """Whether the mounted views answer: ``DEBUG`` is on, or ``SERVE_WITHOUT_DEBUG`` says so.

    The sandbox has no real authentication: mounted in a production URLconf by mistake, it would
    show every message to anyone. Only an explicit ``True`` counts (not a truthy string).
    """
    return bool(settings.DEBUG) or _options().get(SERVE_WITHOUT_DEBUG) is True


def get_default_sandbox() -> Sandbox:
    """Return the process-wide sandbox of the mounted views, creating it from settings."""
    global _default
    with _lock:
        if _default is None:
            _default = Sandbox(config_from_mapping(_options()))
        return _default


def reset_default_sandbox() -> None:
    """Forget the process-wide sandbox; the next request builds a fresh one from settings."""
    global _default
    with _lock:
        _default = None


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        reset_default_sandbox()


def connect_signals() -> None:
    """Rebuild the sandbox whenever SENDFLARE_SANDBOX changes (override_settings, ``settings``)."""
    setting_changed.connect(_on_setting_changed, dispatch_uid="sendflare_sandbox_settings")
