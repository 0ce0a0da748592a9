"""Settings, read one way: :func:`get_settings` -> the frozen, typed :class:`SendflareSettings`.

The table of keys is :mod:`.table` (the settings object's class body); how an object built from
it reads, strictly or tolerantly, is :mod:`.values`. This module reads the Django settings:

* ``get_settings()``: ``settings.SENDFLARE``, validated once and cached until it changes
  (``override_settings`` and pytest-django's ``settings`` included). It never raises for a bad
  value: the object records each key's problem (see :mod:`.values`).
* ``get_settings(mailer)``: the settings that deliver mail queued under a mailer *name*, from
  the same cache. The queue stores a name, never a token, so that the rows (and database dumps,
  and the admin) hold no secret, and a rotated token applies to mail already queued. ``""`` is
  ``settings.SENDFLARE``; a Django 6.1 ``MAILERS`` alias is that entry's ``OPTIONS`` (lower-case
  keys) on top of ``settings.SENDFLARE``, or, when the entry is itself queued and names another
  entry in its ``mailer`` option, that entry's.
* ``load_settings(options)``: for options given in code (``get_connection(backend, **options)``),
  not cached, strict: it raises ``SendflareConfigurationError`` naming every invalid key.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from ..exceptions import SendflareConfigurationError
from ..validators import Problem
from .table import BY_KEY, DEFAULTS, PROVIDER_URLS, SETTINGS, SendflareSettings
from .values import Setting

__all__ = [
    "BY_KEY",
    "DEFAULTS",
    "MAILER_OPTION",
    "PROVIDER_URLS",
    "SETTINGS",
    "Problem",
    "SendflareSettings",
    "Setting",
    "get_settings",
    "load_settings",
    "mailer_options",
]

#: The QueuedEmailBackend option naming the MAILERS entry that delivers its mail.
MAILER_OPTION = "mailer"


def _build(overrides: Mapping[str, Any] | None = None) -> SendflareSettings:
    """``settings.SENDFLARE`` with ``overrides`` (backend options, any case) on top."""
    configured = getattr(django_settings, "SENDFLARE", None)
    if configured is not None and not isinstance(configured, Mapping):
        problem = Problem(
            "sendflare.E000",
            f"settings.SENDFLARE must be a dict, not {type(configured).__name__}.",
            "",
        )
        return SendflareSettings({}, unusable=problem)
    raw = dict(configured or {})
    raw.update({key.upper(): value for key, value in (overrides or {}).items()})
    return SendflareSettings(raw)


def mailer_options(name: str) -> dict[str, Any]:
    """The Sendflare options of the MAILERS entry ``name`` (empty for ``""``), followed once.

    Raises SendflareConfigurationError when the entry is missing, or names in its ``mailer``
    option an entry that is missing or queued itself (check ``sendflare.E111``).
    """
    if not name:
        return {}
    entries = getattr(django_settings, "MAILERS", None)
    if not isinstance(entries, Mapping) or name not in entries:
        raise SendflareConfigurationError(
            f"Queued mail names the mailer {name!r}, which is not in settings.MAILERS. "
            "Restore the entry (the queue stores its name), or discard the mail in the admin."
        )
    options = dict(entries[name].get("OPTIONS") or {})
    target = options.pop(MAILER_OPTION, None)
    if target and target != name:
        nested = dict((entries.get(target) or {}).get("OPTIONS") or {})
        if target not in entries or nested.get(MAILER_OPTION):
            raise SendflareConfigurationError(
                f"MAILERS[{name!r}]['OPTIONS']['mailer'] is {target!r}: it must name a "
                "MAILERS entry with the Sendflare settings (not another queued one)."
            )
        return nested
    return options


_cache: dict[str, SendflareSettings] = {}
_cache_lock = threading.Lock()


def get_settings(mailer: str = "") -> SendflareSettings:
    """The settings of ``settings.SENDFLARE``, or of the mailer ``mailer``: THE accessor.

    Validated once and cached until SENDFLARE or MAILERS changes. Bad values are recorded, not
    raised (see :mod:`.values`); an unknown ``mailer`` raises SendflareConfigurationError.
    """
    with _cache_lock:
        conf = _cache.get(mailer)
        if conf is None:
            conf = _cache[mailer] = _build(mailer_options(mailer))
        return conf


def load_settings(overrides: Mapping[str, Any] | None = None) -> SendflareSettings:
    """``settings.SENDFLARE`` under ``overrides`` (options given in code), validated, uncached.

    Raises SendflareConfigurationError naming every invalid key.
    """
    return _build(overrides).require_valid()


@receiver(setting_changed)
def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SENDFLARE", "MAILERS"):
        with _cache_lock:
            _cache.clear()
