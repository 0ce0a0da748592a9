"""Storing messages in the queue, in the caller's database transaction.

Nothing here talks to the API: the messages are validated and converted by the same code as
``EmailBackend`` (:func:`django_sendflare.payload.build_requests`), then written as one
:class:`~.models.QueuedMessage` and one :class:`~.models.QueuedRecipient` per recipient. When
the caller's transaction rolls back, the rows go with it and nothing is ever sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from django.db import router, transaction

from ..payload import SendRequest
from .models import QueuedMessage, QueuedRecipient

logger = logging.getLogger(__name__)


def db_alias() -> str:
    """The database the mail queue is written to."""
    return router.db_for_write(QueuedMessage)


def store_message(
    requests: Sequence[SendRequest],
    *,
    mailer: str,
    on_commit: Callable[[int], None] | None = None,
) -> QueuedMessage:
    """Store one message (its requests, one per recipient; all share from, subject and body).

    ``on_commit(message_id)`` runs once the caller's transaction commits (at once outside one).
    """
    using = db_alias()
    first = requests[0]
    # No savepoint: in the backend's (or the caller's) transaction, an error marks the whole
    # transaction for rollback anyway, and two statements fewer per message count here.
    with transaction.atomic(using=using, savepoint=False):
        message = QueuedMessage.objects.using(using).create(
            mailer=mailer,
            from_email=first.from_email,
            subject=first.subject,
            body=first.body,
        )
        QueuedRecipient.objects.using(using).bulk_create(
            QueuedRecipient(message=message, position=position, email=request.to)
            for position, request in enumerate(requests)
        )
    if on_commit is not None:
        message_id = message.pk
        transaction.on_commit(lambda: on_commit(message_id), using=using)
    logger.debug("Sendflare: queued message %s to %d recipient(s)", message.pk, len(requests))
    return message
