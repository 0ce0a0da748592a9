"""What one user's step may do to other users' records, under their leases.

A user's records change only under its lease. Two steps reach into other users' records: the
hand-over of an address (another user keeps it, so this one forgets it) and the sharing of an
unsubscribe (an Unsubscribed address about to be deleted is recorded as an unsubscribe of every
other user that has it). :meth:`Neighbours.holding` takes those users' leases first; a user
another worker holds makes the step a transient failure, retried later.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ..models import ContactSyncState
from ..queue import Lease
from .results import CallFailed


class Neighbours:
    """The other users one run touches, through the run's lease holder."""

    def __init__(self, lease: Lease, *, using: str) -> None:
        self.lease = lease
        self.using = using

    @contextmanager
    def holding(self, keys: Iterable[str], why: str) -> Iterator[None]:
        """Hold the leases of these users for the block; CallFailed if one is busy."""
        taken: list[str] = []
        try:
            for key in sorted(set(keys)):
                if key in self.lease.held:
                    continue  # this holder has that user already (one lease serves a batch)
                # A lease needs the row: a user never delivered yet has none.
                ContactSyncState.objects.using(self.using).get_or_create(user_key=key)
                if not self.lease.take(key):
                    raise CallFailed(
                        f"user {key}, {why}, is being brought up to date by another worker"
                    )
                taken.append(key)
            yield
        finally:
            for key in taken:
                self.lease.release(key)

    def unsubscribe(self, keys: Iterable[str], now: datetime.datetime) -> list[str]:
        """Record these users as unsubscribed (hold their leases); return those that were not."""
        keys = sorted(set(keys))
        rows = ContactSyncState.objects.using(self.using).filter(
            user_key__in=keys, unsubscribed_at__isnull=True
        )
        first = list(rows.values_list("user_key", flat=True))
        rows.update(unsubscribed_at=now, updated_at=now)
        return first
