"""System checks of queued sending: what would otherwise only fail later, in the worker.

* ``sendflare.E110``: ``MAIL_ENQUEUE_TASK`` is on but the tasks framework is not available.
* ``sendflare.E111``: a ``MAILERS`` entry of the ``QueuedEmailBackend`` names, in its ``mailer``
  option, an entry that does not exist or is queued itself: mail queued through it would wait
  forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import checks

from ..conf import read_setting
from ..exceptions import SendflareConfigurationError
from ..task_hooks import tasks_available
from .mailers import MAILER_OPTION, mailer_options


@checks.register(checks.Tags.compatibility, "sendflare")
def check_queued_sending(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E110 and E111 (see the module docstring)."""
    messages: list[checks.CheckMessage] = []
    try:
        enqueue = read_setting("MAIL_ENQUEUE_TASK") is True
    except SendflareConfigurationError:
        enqueue = False  # an invalid value is reported by the settings check (E004)
    if enqueue:
        problem = tasks_available()
        if problem:
            messages.append(
                checks.Error(
                    f"SENDFLARE['MAIL_ENQUEUE_TASK'] is on but {problem}",
                    hint="Set MAIL_ENQUEUE_TASK to False; 'manage.py sendflare_worker' "
                    "delivers queued mail without tasks.",
                    id="sendflare.E110",
                )
            )
    mailers = getattr(settings, "MAILERS", None)
    if isinstance(mailers, Mapping):
        for alias, config in mailers.items():
            options = (config or {}).get("OPTIONS") or {}
            if not isinstance(options, Mapping) or not options.get(MAILER_OPTION):
                continue
            try:
                mailer_options(alias)
            except SendflareConfigurationError as error:
                messages.append(
                    checks.Error(
                        str(error),
                        hint="Name a MAILERS entry of django_sendflare.backends.EmailBackend "
                        "(with the Sendflare settings that deliver the mail).",
                        id="sendflare.E111",
                    )
                )
    return messages
