"""Which Sendflare settings deliver a queued message: a mailer *name* -> SendflareSettings.

The queue stores a name, never a token, so that the rows (and database dumps, and the admin)
hold no secret, and a rotated token applies to mail already queued:

* ``""``: ``settings.SENDFLARE`` (the ``QueuedEmailBackend`` as ``EMAIL_BACKEND``);
* a ``MAILERS`` alias (Django 6.1): that entry's ``OPTIONS`` on top of ``settings.SENDFLARE``.
  When the entry is itself queued and names another entry in its ``mailer`` option, that entry
  delivers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from ..conf import SendflareSettings, load_settings
from ..exceptions import SendflareConfigurationError

#: The QueuedEmailBackend option naming the MAILERS entry that delivers its mail.
MAILER_OPTION = "mailer"


def mailer_options(name: str) -> dict[str, Any]:
    """The Sendflare options of the MAILERS entry ``name`` (empty for ``""``), followed once."""
    if not name:
        return {}
    entries = getattr(settings, "MAILERS", None)
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


def settings_for(name: str) -> SendflareSettings:
    """The validated Sendflare settings that deliver mail queued under ``name``."""
    return load_settings(mailer_options(name))
