"""The one writer of a user's sync state during its steps: values staged, written once.

A step's effects (:mod:`.effects`) are *staged* (the run puts them in the snapshot the next
decision reads at once) and written to the database at the next :meth:`StateRecord.write`: after
the step's call, and before any call that what was staged must precede (the address a save may
create, I3; an unsubscribe learned, I1: ``durable``). So one step costs one write.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import ContactChange, ContactSyncState


class StateRecord:
    """The ``ContactSyncState`` row of the user ``key``, as its run writes it."""

    def __init__(self, key: str, *, using: str) -> None:
        self.key = key
        self.using = using
        self._pending: dict[str, Any] = {}
        #: Something staged must be written before the next call.
        self.due = False

    def stage(self, values: dict[str, Any], *, durable: bool = False) -> None:
        """Note values to write; ``durable``: they must be written before the next call."""
        if not values:
            return
        self._pending.update(values)
        self.due = self.due or durable

    def write(self) -> None:
        """Write what was staged, in one UPDATE (nothing when nothing was)."""
        if not self._pending:
            return
        ContactSyncState.objects.using(self.using).filter(user_key=self.key).update(
            **self._pending, updated_at=timezone.now()
        )
        self._pending, self.due = {}, False

    def forget_user(self, top: int | None) -> None:
        """The deleted user's records are empty: drop its state, and the rows its run read.

        Together: a row left without its state would claim the user's old addresses again
        (``rows_adopted_through`` went with the state) until the outbox resolved it.
        """
        self._pending, self.due = {}, False
        key = self.key
        with transaction.atomic(using=self.using):
            ContactSyncState.objects.using(self.using).filter(user_key=key).delete()
            if top is not None:
                ContactChange.objects.using(self.using).filter(user_key=key, id__lte=top).delete()
