"""System checks of the contact settings (registered when the receivers are connected)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.utils.module_loading import import_string

from ..conf import DEFAULTS, raw_settings
from ..exceptions import SendflareConfigurationError


@checks.register(checks.Tags.compatibility, "sendflare")
def check_contacts(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when contacts are on without an APP_ID; fail on an adapter or task that won't load."""
    try:
        values = {**DEFAULTS, **raw_settings()}
    except SendflareConfigurationError:
        return []  # reported by the settings check
    messages: list[checks.CheckMessage] = []
    if values["SYNC_CONTACTS"] is True and not values["APP_ID"]:
        messages.append(
            checks.Warning(
                "SENDFLARE['SYNC_CONTACTS'] is on but APP_ID is not set: user changes are not "
                "recorded and no contact is synced.",
                hint="Set SENDFLARE['APP_ID'] to your Sendflare application ID, or set "
                "SYNC_CONTACTS to False.",
                id="sendflare.W100",
            )
        )
    path = values["CONTACT_ADAPTER"]
    if isinstance(path, str) and "." in path:
        try:
            import_string(path)
        except ImportError as error:
            messages.append(
                checks.Error(
                    f"SENDFLARE['CONTACT_ADAPTER'] {path!r} cannot be imported: {error}",
                    hint="Give the dotted path of a ContactAdapter subclass.",
                    id="sendflare.E100",
                )
            )
    if values["CONTACTS_ENQUEUE_TASK"] is True:
        from .tasking import tasks_available

        problem = tasks_available()
        if problem:
            messages.append(
                checks.Error(
                    f"SENDFLARE['CONTACTS_ENQUEUE_TASK'] is on but {problem}",
                    hint="Set CONTACTS_ENQUEUE_TASK to False and run "
                    "'manage.py sync_contacts --watch' instead.",
                    id="sendflare.E101",
                )
            )
    return messages
