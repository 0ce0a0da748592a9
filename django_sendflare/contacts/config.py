"""Reading the contact settings where a broken configuration must not break anything.

The receivers run inside every user save. A missing token must not fail the save, nor drop the
change: recording needs only ``SYNC_CONTACTS`` and ``APP_ID``; the token is needed at delivery.
"""

from __future__ import annotations

import logging
from typing import Any

from ..conf import DEFAULTS, get_settings, raw_settings
from ..exceptions import SendflareConfigurationError

logger = logging.getLogger(__name__)


def _values() -> dict[str, Any]:
    try:
        conf = get_settings()
    except SendflareConfigurationError:
        try:
            return {**DEFAULTS, **raw_settings()}
        except SendflareConfigurationError:
            return dict(DEFAULTS)
    return {
        "SYNC_CONTACTS": conf.sync_contacts,
        "APP_ID": conf.app_id,
        "CONTACT_ADAPTER": conf.contact_adapter,
        "CONTACTS_ENQUEUE_TASK": conf.contacts_enqueue_task,
    }


def recording_enabled() -> bool:
    """Whether user changes are recorded: ``SYNC_CONTACTS`` is on and ``APP_ID`` is set."""
    values = _values()
    return values.get("SYNC_CONTACTS") is True and bool(values.get("APP_ID"))


def adapter_path() -> str:
    """The dotted path of the contact adapter, even when other settings are invalid."""
    path = _values().get("CONTACT_ADAPTER")
    return path if isinstance(path, str) else DEFAULTS["CONTACT_ADAPTER"]


def enqueue_task_enabled() -> bool:
    """Whether a delivery task is enqueued when a transaction that recorded changes commits."""
    return _values().get("CONTACTS_ENQUEUE_TASK") is True
