"""Leases: a worker holds a row alone for a short while, and renews it while it works.

A lease is two columns of a :class:`~.models.Leasable` row: until when, and by whom (a token).
Taking it is one conditional ``UPDATE`` (atomic on every database: of two workers, one changes
the row, the other finds it taken). The lease is short (:data:`LEASE_SECONDS`) and the worker
renews it while it works (:meth:`Lease.keep_alive`, called between steps and before each API
call), so that a worker that dies (SIGKILL, a lost machine) frees what it held within
:data:`LEASE_SECONDS`, while a live worker keeps it however long its work takes.

If a renewal finds the lease gone (the worker stalled longer than the lease and another took
over), :meth:`Lease.keep_alive` raises :class:`LeaseLost`: the worker must stop working on that
row at once; the work is not lost (it is still in the queue) and counts as no attempt.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Hashable, Iterable
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .models import db_alias

#: How long a lease lasts unless renewed. A worker that dies frees its rows within this time.
LEASE_SECONDS = 45.0


class LeaseLost(Exception):
    """Another worker took over a lease this worker held (it was not renewed in time)."""

    def __init__(self, keys: Iterable[Hashable]) -> None:
        self.keys = sorted(str(k) for k in keys)
        super().__init__(f"lease lost on {', '.join(self.keys)}: another worker took over")


class Lease:
    """The leases one worker holds on rows of one :class:`~.models.Leasable` model.

    Rows are named by ``key_field`` (``"pk"`` by default; the contact outbox uses
    ``"user_key"``). One ``Lease`` object is one holder (one token): create one per worker run,
    take rows with :meth:`take`, call :meth:`keep_alive` while working, :meth:`release` when done.
    Use it as a context manager to release whatever is still held at the end, even on error::

        with Lease(MyModel) as lease:
            if lease.take(row.pk):
                do_a_step(row)
                lease.keep_alive()  # raises LeaseLost if another worker took over
                do_another_step(row)
                lease.release(row.pk)

    The row must exist: :meth:`take` returns False for a missing row.
    """

    def __init__(
        self,
        model: type[models.Model],
        *,
        key_field: str = "pk",
        seconds: float = LEASE_SECONDS,
        using: str | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.model = model
        self.key_field = key_field
        self.seconds = seconds
        self.using = using or db_alias(model)
        self.token = uuid.uuid4().hex
        self._held: set[Hashable] = set()
        self._clock = clock
        self._renewed_at = clock()

    def __repr__(self) -> str:
        return f"<Lease {self.model.__name__} {self.token[:8]} holding {len(self._held)}>"

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release_all()

    @property
    def held(self) -> frozenset[Hashable]:
        """The keys this holder believes it holds."""
        return frozenset(self._held)

    def _rows(self) -> models.QuerySet[Any]:
        return self.model._default_manager.using(self.using)

    def _until(self) -> datetime.datetime:
        return timezone.now() + datetime.timedelta(seconds=self.seconds)

    def take(self, key: Hashable) -> bool:
        """Take the lease of the row ``key``; False when another live worker holds it."""
        free = Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now())
        taken = (
            self._rows()
            .filter(**{self.key_field: key})
            .filter(free | Q(lease_token=self.token))
            .update(lease_until=self._until(), lease_token=self.token)
        )
        if taken:
            self._held.add(key)
            if len(self._held) == 1:
                self._renewed_at = self._clock()
        return bool(taken)

    def adopt(self, keys: Iterable[Hashable]) -> None:
        """Note keys whose lease was set by a bulk UPDATE with this token (see WorkQueue.claim)."""
        if not self._held:
            self._renewed_at = self._clock()
        self._held.update(keys)

    def renew(self) -> set[Hashable]:
        """Extend every lease held now; return the keys found lost (and forget them)."""
        self._renewed_at = self._clock()
        if not self._held:
            return set()
        lookup = f"{self.key_field}__in"
        held = list(self._held)
        self._rows().filter(**{lookup: held}, lease_token=self.token).update(
            lease_until=self._until()
        )
        still = {
            str(key)
            for key in self._rows()
            .filter(**{lookup: held}, lease_token=self.token)
            .values_list(self.key_field, flat=True)
        }
        lost = {key for key in held if str(key) not in still}
        self._held -= lost
        return lost

    def keep_alive(self) -> None:
        """Renew the leases when a third of their time has passed; raise LeaseLost if any is gone.

        Cheap to call often (before each API call): it writes only every ``seconds / 3``.
        """
        if not self._held or self._clock() - self._renewed_at < self.seconds / 3:
            return
        lost = self.renew()
        if lost:
            raise LeaseLost(lost)

    def release(self, key: Hashable) -> None:
        """Give the lease of ``key`` back (only if this holder still has it)."""
        self._held.discard(key)
        self._rows().filter(**{self.key_field: key}, lease_token=self.token).update(
            lease_until=None, lease_token=""
        )

    def release_all(self) -> None:
        """Give back every lease still held (end of a run, or an error)."""
        if not self._held:
            return
        held, self._held = list(self._held), set()
        self._rows().filter(**{f"{self.key_field}__in": held}, lease_token=self.token).update(
            lease_until=None, lease_token=""
        )
