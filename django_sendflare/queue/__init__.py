"""A durable queue in the database: claim, lease, attempts, backoff, parking.

Used by the mail queue (:mod:`django_sendflare.mail`) and the contact outbox
(:mod:`django_sendflare.contacts`), and meant to be reused by any other queue of work that must
survive a crash and be done exactly by one worker at a time. :func:`~.models.db_alias` is the
database a queue's rows are written to (the router's choice), for every queue.

To make a queue:

1. A model inheriting :class:`~.models.QueueItem` (state, attempts, next attempt, last error)
   and, when each row is held by itself, :class:`~.models.Leasable` (lease until, token).
   Add an index on ``("state", "next_attempt_at")``.
2. A :class:`~.work.WorkQueue` on that model: ``due()`` / ``claim()`` pick work (``SKIP
   LOCKED`` where supported), ``done()`` / ``delete()`` / ``failed(transient=...)`` record an
   attempt, ``retry()`` / ``retry_failed()`` / ``discard()`` serve the admin.
3. A :class:`~.leases.Lease` per worker run: held rows are renewed by ``keep_alive()`` between
   steps; a dead worker's leases expire after :data:`~.leases.LEASE_SECONDS` (45 s).

The rules the queue keeps: a row is never parked as failed by a transient error before
``max_attempts`` (the caller says what is transient); a row is delivered by at most one live
worker at a time (the lease); the wait after the n-th failure is
:func:`django_sendflare.retry.backoff_delay` (the one backoff formula).

This package imports only Django and :mod:`django_sendflare.retry`; import it from the models
module that defines the concrete queue model.
"""

from .leases import LEASE_SECONDS, Lease, LeaseLost
from .models import Leasable, QueueItem, db_alias
from .work import Verdict, WorkQueue

__all__ = [
    "LEASE_SECONDS",
    "Leasable",
    "Lease",
    "LeaseLost",
    "QueueItem",
    "Verdict",
    "WorkQueue",
    "db_alias",
]
