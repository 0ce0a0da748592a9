"""Retention: delete the log of mail that was sent, once it is older than MAIL_RETENTION_DAYS.

Only messages whose every recipient is ``sent`` (or ``discarded``) are deleted: a message with
a ``failed`` or ``unknown`` recipient waits for a person (Resend or Discard in the admin),
and queued mail is never touched.
"""

from __future__ import annotations

import datetime
import logging

from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..bounds import PURGE_DAYS
from ..conf import get_settings
from ..queue import QueueItem, db_alias
from .models import QueuedMessage, QueuedRecipient

logger = logging.getLogger(__name__)

#: Messages deleted per DELETE: keeps each statement (and its lock) short.
CHUNK = 1000

_OPEN = (
    QueuedRecipient.State.QUEUED,
    QueuedRecipient.State.SENDING,
    QueuedRecipient.State.FAILED,
    QueuedRecipient.State.UNKNOWN,
)


def purge_sent_mail(
    *, days: float | None = None, now: datetime.datetime | None = None, dry_run: bool = False
) -> int:
    """Delete sent mail older than ``days`` (default MAIL_RETENTION_DAYS); return how many.

    Returns 0 without deleting anything when the retention is None (keep everything).
    """
    if days is None:
        days = get_settings().mail_retention_days
    else:  # bounded like MAIL_RETENTION_DAYS: the cut-off must remain a date
        days = PURGE_DAYS.require("purge_sent_mail(days=...)", days)
    if days is None:
        return 0
    using = db_alias(QueuedMessage)
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    open_recipients = QueuedRecipient.objects.using(using).filter(
        message_id=OuterRef("pk"), state__in=_OPEN
    )
    expired = (
        QueuedMessage.objects.using(using)
        .filter(state=QueueItem.State.DONE, updated_at__lt=cutoff)
        .exclude(Exists(open_recipients))
        .order_by("pk")
    )
    if dry_run:
        return expired.count()
    deleted = 0
    while True:
        ids = list(expired.values_list("pk", flat=True)[:CHUNK])
        if not ids:
            break
        QueuedMessage.objects.using(using).filter(pk__in=ids).delete()
        deleted += len(ids)
    if deleted:
        logger.info("Sendflare: purged %d sent message(s) older than %g days", deleted, days)
    return deleted
