"""A person's decisions on queued mail (the admin's actions): Resend and Discard.

Each takes the message's lease first, as a worker would: a message a worker is delivering
right now is left alone (reported busy), so that a decision never races a delivery.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from ..queue import Lease, db_alias
from .delivery import settle_lost_requests
from .drain import mail_queue
from .models import QueuedMessage, QueuedRecipient

State = QueuedRecipient.State


@dataclass
class ActionResult:
    """Recipients changed, and the messages left alone because a worker holds them."""

    recipients: int = 0
    messages: int = 0
    busy: list[int] = field(default_factory=list)


def unknown_recipients(message_ids: Iterable[int]) -> list[QueuedRecipient]:
    """The ``unknown`` recipients of these messages (a Resend may mail them twice)."""
    return list(
        QueuedRecipient.objects.using(db_alias(QueuedMessage))
        .filter(message_id__in=list(message_ids), state=State.UNKNOWN)
        .select_related("message")
        .order_by("message_id", "position")
    )


def resend(message_ids: Iterable[int], *, include_unknown: bool) -> ActionResult:
    """Queue the failed (and, with ``include_unknown``, the unknown) recipients again, due now.

    Their errors stay visible until the next attempt; the message's attempts start from 0.
    """
    states: list[Any] = [State.FAILED, State.UNKNOWN] if include_unknown else [State.FAILED]
    return _decide(message_ids, states, State.QUEUED, requeue=True)


def discard(message_ids: Iterable[int]) -> ActionResult:
    """Never send the recipients still queued or failed: they become ``discarded``.

    ``unknown`` recipients stay ``unknown``: they may have been sent, and the log must keep
    saying so. Nothing sends them anyway.
    """
    return _decide(message_ids, [State.QUEUED, State.FAILED], State.DISCARDED)


def _decide(
    message_ids: Iterable[int], states: list[Any], new_state: Any, *, requeue: bool = False
) -> ActionResult:
    using = db_alias(QueuedMessage)
    queue = mail_queue(using)
    result = ActionResult()
    with Lease(QueuedMessage, using=using) as lease:
        for pk in message_ids:
            if not lease.take(pk):
                result.busy.append(pk)
                continue
            # A worker that died mid-request left it 'sending': it may have been sent.
            settle_lost_requests(pk, using=using)
            changed = (
                QueuedRecipient.objects.using(using)
                .filter(message_id=pk, state__in=states)
                .update(state=new_state, updated_at=timezone.now())
            )
            if changed:
                result.recipients += changed
                result.messages += 1
                if requeue:
                    queue.retry([pk])
                elif not (
                    QueuedRecipient.objects.using(using)
                    .filter(message_id=pk, state=State.QUEUED)
                    .exists()
                ):
                    queue.done([pk])
            lease.release(pk)
    return result
