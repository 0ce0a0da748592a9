"""Reading the contact settings where a broken configuration must not break anything.

The receivers run inside every user save. A missing token must not fail the save, nor drop the
change: recording needs only ``SYNC_CONTACTS`` and ``APP_ID``; the token is needed at delivery.
So each of these reads one setting on its own (:func:`django_sendflare.conf.read_setting`), and
an invalid value (reported by the system checks) counts as "off".
"""

from __future__ import annotations

from typing import Any

from ..conf import DEFAULTS, read_setting
from ..exceptions import SendflareConfigurationError


def _read(key: str, when_invalid: Any) -> Any:
    try:
        return read_setting(key)
    except SendflareConfigurationError:
        return when_invalid


def recording_enabled() -> bool:
    """Whether user changes are recorded: ``SYNC_CONTACTS`` is on and ``APP_ID`` is set."""
    return _read("SYNC_CONTACTS", False) is True and bool(_read("APP_ID", None))


def adapter_path() -> str:
    """The dotted path of the contact adapter, even when other settings are invalid."""
    path: str = _read("CONTACT_ADAPTER", DEFAULTS["CONTACT_ADAPTER"])
    return path


def enqueue_task_enabled() -> bool:
    """Whether a delivery task is enqueued when a transaction that recorded changes commits."""
    return _read("CONTACTS_ENQUEUE_TASK", False) is True
