"""System checks of the contact settings: the ones that need more than one key, or an import.

Each key is checked on its own by the settings check (``sendflare.E004``); here an invalid key
counts as off, as it does for the receivers (see :mod:`.config`).
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.utils.module_loading import import_string

from ..conf import raw_settings, read_setting
from ..exceptions import SendflareConfigurationError
from .config import adapter_path, enqueue_task_enabled


@checks.register(checks.Tags.compatibility, "sendflare")
def check_contacts(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when contacts are on without an APP_ID; fail on an adapter or task that won't load."""
    try:
        raw_settings()
    except SendflareConfigurationError:
        return []  # SENDFLARE is not a dict: reported by the settings check (E000)
    messages: list[checks.CheckMessage] = []
    if _sync_on_without_app_id():
        messages.append(
            checks.Warning(
                "SENDFLARE['SYNC_CONTACTS'] is on but APP_ID is not set: user changes are not "
                "recorded and no contact is synced.",
                hint="Set SENDFLARE['APP_ID'] to your Sendflare application ID (against the "
                "sandbox any non-empty ID works, e.g. 'sandbox-app'), or set SYNC_CONTACTS to "
                "False if you do not sync contacts.",
                id="sendflare.W100",
            )
        )
    path = adapter_path()
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
    if enqueue_task_enabled():
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


def _sync_on_without_app_id() -> bool:
    try:
        return read_setting("SYNC_CONTACTS") is True and not read_setting("APP_ID")
    except SendflareConfigurationError:
        return False  # an invalid one is reported by the settings check (E004)
