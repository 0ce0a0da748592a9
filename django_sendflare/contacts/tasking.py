"""Enqueueing the delivery task when a transaction that recorded changes commits."""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)


def tasks_available() -> str | None:
    """None when the delivery task can be enqueued, else why not."""
    try:
        from .. import tasks
    except Exception as error:
        return f"the task could not be defined ({type(error).__name__}: {error})"
    return tasks.UNAVAILABLE


def enqueue_delivery(user_keys: Sequence[str]) -> None:
    """Enqueue the delivery of these users' changes; log, never raise (the rows stay queued)."""
    try:
        from ..tasks import UNAVAILABLE, deliver_contact_changes

        if deliver_contact_changes is None:
            raise RuntimeError(UNAVAILABLE)
        deliver_contact_changes.enqueue(list(user_keys))
    except Exception:
        # The outbox keeps the changes: sync_contacts --pending or --watch delivers them.
        logger.exception(
            "Sendflare: could not enqueue the contact delivery task; the changes stay in the outbox"
        )
