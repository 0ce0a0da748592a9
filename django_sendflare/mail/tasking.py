"""Enqueueing a delivery task when a transaction that queued a message commits.

With ``SENDFLARE["MAIL_ENQUEUE_TASK"] = True`` each committed message enqueues
:data:`django_sendflare.tasks.deliver_queued_mail` on whatever task backend the project runs.
The queue stays the source of truth: a task that is lost (or a task backend that is down) leaves
the message to the worker's polling, a task that runs twice finds it claimed or delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..conf import SendflareSettings

logger = logging.getLogger(__name__)


def on_commit_hook(conf: SendflareSettings) -> Callable[[int], None] | None:
    """What the backend runs when a queued message commits (None: nothing, the worker polls)."""
    return enqueue_delivery if conf.mail_enqueue_task else None


def enqueue_delivery(message_id: int) -> None:
    """Enqueue the delivery task of one message; log, never raise (the row stays queued)."""
    try:
        from ..tasks import UNAVAILABLE, deliver_queued_mail

        if deliver_queued_mail is None:
            raise RuntimeError(UNAVAILABLE)
        deliver_queued_mail.enqueue(message_id)
    except Exception:
        logger.exception(
            "Sendflare: could not enqueue the delivery task of queued message %s; "
            "it stays queued for sendflare_worker",
            message_id,
        )
