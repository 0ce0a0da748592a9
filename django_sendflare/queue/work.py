"""The queue's operations on the rows of one :class:`~.models.QueueItem` model.

:class:`WorkQueue` claims due rows (``SELECT ... FOR UPDATE SKIP LOCKED`` where the database
supports it, so that workers running at once pick different rows instead of queueing on the
same ones), and records what an attempt did: done, a transient failure (back to pending, due
after a backoff), or a permanent one (parked as failed). It makes no decision about *what* is
transient: the caller says so. Its backoff is :func:`django_sendflare.retry.backoff_delay`.
"""

from __future__ import annotations

import datetime
import enum
import logging
import threading
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from django.db import connections, transaction
from django.db.models import F, Max, Min, Q, QuerySet
from django.utils import timezone

from ..retry import backoff_delay
from .leases import Lease
from .models import QueueItem, db_alias

logger = logging.getLogger(__name__)

ItemT = TypeVar("ItemT", bound=QueueItem)

#: Seconds before the first retry of a transient failure; doubled at each attempt (jittered).
BACKOFF_BASE = 30.0
#: The longest wait between two attempts.
BACKOFF_CAP = 3600.0

# Claims on SQLite, one at a time in a process (see WorkQueue._lease_then_read).
_SQLITE_CLAIMS = threading.Lock()


class Verdict(str, enum.Enum):
    """What :meth:`WorkQueue.failed` did with the rows."""

    RETRY = "retry"  # back to pending, due after a backoff
    FAILED = "failed"  # parked: a person must retry or discard them


class WorkQueue(Generic[ItemT]):
    """Claim, retry and park the rows of ``model`` (a concrete :class:`QueueItem` subclass).

    ``max_attempts``: a row whose transient failures reach this count is parked as failed.
    Typical worker loop (the mail queue: each row leased by itself)::

        queue = WorkQueue(QueuedMessage, max_attempts=conf.max_attempts)
        with Lease(QueuedMessage) as lease:
            for row in queue.claim(queue.due(), limit=100, lease=lease):
                try:
                    send(row)
                except TransientError as error:
                    queue.failed([row.pk], str(error), transient=True)
                except Exception as error:
                    queue.failed([row.pk], str(error), transient=False)
                else:
                    queue.done([row.pk])
                finally:
                    lease.release(row.pk)

    The contact outbox instead claims rows without leasing them and leases the *user* they
    belong to (:class:`Lease` on another model), then fails or deletes all the user's rows at
    once: ``failed()`` counts the attempt of a group of rows as one.
    """

    def __init__(
        self,
        model: type[ItemT],
        *,
        max_attempts: int,
        using: str | None = None,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
    ) -> None:
        self.model = model
        self.max_attempts = max(1, max_attempts)
        self.using = using or db_alias(model)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap

    def __repr__(self) -> str:
        return f"<WorkQueue {self.model.__name__} max_attempts={self.max_attempts}>"

    # Reading.

    def rows(self) -> QuerySet[ItemT]:
        return self.model._default_manager.using(self.using).all()

    def pending(self) -> QuerySet[ItemT]:
        """Rows waiting for an attempt, due or not."""
        return self.rows().filter(state=QueueItem.State.PENDING)

    def due(self, *, now: datetime.datetime | None = None) -> QuerySet[ItemT]:
        """Pending rows whose next attempt is due, oldest first."""
        return (
            self.pending()
            .filter(next_attempt_at__lte=now or timezone.now())
            .order_by("next_attempt_at", "pk")
        )

    def high_water_mark(self, queryset: QuerySet[ItemT]) -> Any:
        """The largest pk of ``queryset`` now (None when empty).

        A run that only takes rows up to it cannot be kept going forever by new rows.
        """
        return queryset.aggregate(top=Max("pk"))["top"]

    @property
    def skip_locked(self) -> bool:
        """Whether the database can skip rows other workers have locked (PostgreSQL, MySQL 8...)."""
        return bool(connections[self.using].features.has_select_for_update_skip_locked)

    # Claiming.

    def claim(
        self, queryset: QuerySet[ItemT], *, limit: int, lease: Lease | None = None
    ) -> list[ItemT]:
        """Pick up to ``limit`` rows of ``queryset`` that no other worker is picking now.

        Rows locked by another worker's claim are skipped where the database supports
        ``SKIP LOCKED``; on SQLite, claims are serialised (within a process by a lock, between
        processes by the database's write lock, see :meth:`_lease_then_read`). With
        ``lease`` (the model must also be :class:`~.models.Leasable`), only rows whose lease is
        free are picked, and they are leased to ``lease`` in the same transaction: the caller
        then holds them until it releases them or dies (plus ``lease.seconds``).
        Without ``lease`` the rows are only picked: the caller must hold some other lease
        before it works on them (the contact outbox leases the user).
        """
        candidates = queryset
        if lease is not None:
            now = timezone.now()
            candidates = candidates.filter(
                Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_token=lease.token)
            )
            if connections[self.using].vendor == "sqlite":
                return self._lease_then_read(candidates, limit, lease)
        with transaction.atomic(using=self.using):
            if self.skip_locked:
                candidates = candidates.select_for_update(skip_locked=True)
            rows = list(candidates[:limit])
            if lease is not None and rows:
                keys = [row.pk for row in rows]
                self.rows().filter(pk__in=keys).update(
                    lease_until=timezone.now() + datetime.timedelta(seconds=lease.seconds),
                    lease_token=lease.token,
                )
                lease.adopt(keys)
        return rows

    def _lease_then_read(
        self, candidates: QuerySet[ItemT], limit: int, lease: Lease
    ) -> list[ItemT]:
        """SQLite's claim: lease the rows in the transaction's first statement, then read them.

        A transaction that reads and then writes holds SQLite's shared lock while it asks for
        the write lock; in the deferred transactions of Django's default SQLite settings, two
        such claims at once (the worker's threads) meet a deadlock that SQLite reports at once
        as "database is locked" instead of waiting. A transaction whose first statement is the
        write waits for the lock (the busy timeout) like any write. The claims of one process
        also take turns on a lock of their own, so that its threads do not wait on SQLite.
        """
        until = timezone.now() + datetime.timedelta(seconds=lease.seconds)
        with _SQLITE_CLAIMS, transaction.atomic(using=self.using):
            picked = candidates.values("pk")[:limit]
            self.rows().filter(pk__in=picked).update(lease_until=until, lease_token=lease.token)
            # The rows this statement leased: this token, this very expiry.
            rows = list(candidates.filter(lease_token=lease.token, lease_until=until)[:limit])
        lease.adopt([row.pk for row in rows])
        return rows

    # Recording what an attempt did.

    def done(self, ids: Iterable[Any]) -> int:
        """Mark rows done (kept as a log); return how many."""
        return (
            self.rows()
            .filter(pk__in=list(ids))
            .update(state=QueueItem.State.DONE, last_error="", updated_at=timezone.now())
        )

    def delete(self, ids: Iterable[Any]) -> int:
        """Delete rows that are done and need no log; return how many."""
        deleted, _ = self.rows().filter(pk__in=list(ids)).delete()
        return deleted

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        return backoff_delay(attempts, base=self.backoff_base, cap=self.backoff_cap)

    def failed(self, ids: Iterable[Any], error: str, *, transient: bool) -> Verdict:
        """Record a failed attempt of these rows (one attempt for them all).

        A transient failure puts them back to pending, due after the backoff (grown from the
        group's most tried row), until every row has had ``max_attempts`` attempts; a permanent
        one parks them as failed at once.
        """
        ids = list(ids)
        rows = self.rows().filter(pk__in=ids)
        counts = rows.aggregate(top=Max("attempts"), least=Min("attempts"))
        attempts = (counts["top"] or 0) + 1
        # Parked only once every row has had its max_attempts: a row added to the group
        # (a newer change of the same user) is not parked after fewer attempts of its own.
        park = not transient or (counts["least"] or 0) + 1 >= self.max_attempts
        now = timezone.now()
        rows.update(
            attempts=F("attempts") + 1,
            state=QueueItem.State.FAILED if park else QueueItem.State.PENDING,
            next_attempt_at=now
            if park
            else now + datetime.timedelta(seconds=self.backoff(attempts)),
            last_error=error[:2000],
            updated_at=now,
        )
        return Verdict.FAILED if park else Verdict.RETRY

    def postpone(self, ids: Iterable[Any], seconds: float) -> int:
        """Make pending rows due later without counting an attempt (busy, lease lost)."""
        return (
            self.rows()
            .filter(pk__in=list(ids), state=QueueItem.State.PENDING)
            .update(
                next_attempt_at=timezone.now() + datetime.timedelta(seconds=seconds),
                updated_at=timezone.now(),
            )
        )

    # A person's decisions (admin actions, commands).

    def retry(self, ids: Iterable[Any]) -> int:
        """Put rows back to pending, due now, their attempts reset; return how many."""
        now = timezone.now()
        return (
            self.rows()
            .filter(pk__in=list(ids))
            .update(state=QueueItem.State.PENDING, attempts=0, next_attempt_at=now, updated_at=now)
        )

    def retry_failed(self) -> int:
        """Put every parked row back to pending; return how many."""
        ids = list(self.rows().filter(state=QueueItem.State.FAILED).values_list("pk", flat=True))
        return self.retry(ids)

    def discard(self, ids: Iterable[Any]) -> int:
        """Delete rows without doing them; return how many."""
        return self.delete(ids)
