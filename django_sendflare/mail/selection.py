"""Picking queued mail by what an operator knows of it: ``sendflare_mail``'s filters.

A :class:`Selection` finds recipient rows (by state, address, mailer, age, message ids); the
Resend and Discard decisions are then taken on the *messages* that hold them, by the same
services as the admin's actions (:mod:`.actions`), which act on a whole message: a Resend
queues every failed recipient of it again, a Discard every queued and failed one.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import router
from django.db.models import QuerySet

from .models import QueuedMessage, QueuedRecipient

State = QueuedRecipient.State


@dataclass
class Selection:
    """Filters on recipients; empty ones match everything."""

    states: Sequence[str] = ()
    to: str = ""
    mailer: str | None = None
    #: Messages queued before / after these moments.
    older_than: datetime.datetime | None = None
    newer_than: datetime.datetime | None = None
    message_ids: Sequence[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = [s for s in self.states if s not in State.values]
        if unknown:
            raise ValueError(f"unknown state {unknown[0]!r}: choose from {', '.join(State.values)}")

    def recipients(self) -> QuerySet[QueuedRecipient]:
        """The matching recipient rows, message by message."""
        rows = QueuedRecipient.objects.using(router.db_for_read(QueuedMessage)).select_related(
            "message"
        )
        if self.states:
            rows = rows.filter(state__in=list(self.states))
        if self.to:
            rows = rows.filter(email__iexact=self.to)
        if self.mailer is not None:
            rows = rows.filter(message__mailer=self.mailer)
        if self.older_than is not None:
            rows = rows.filter(message__created_at__lt=self.older_than)
        if self.newer_than is not None:
            rows = rows.filter(message__created_at__gte=self.newer_than)
        if self.message_ids:
            rows = rows.filter(message_id__in=list(self.message_ids))
        return rows.order_by("message_id", "position")

    def message_ids_with(self, states: Sequence[str]) -> list[int]:
        """The ids of the messages with a matching recipient in one of ``states``."""
        wanted = [s for s in states if not self.states or s in self.states]
        rows = self.recipients().filter(state__in=wanted).order_by("message_id")
        return list(rows.values_list("message_id", flat=True).distinct())
