"""The fields a durable queue needs, as abstract models to inherit from.

:class:`QueueItem` is one unit of work that is retried until it succeeds or is parked:
its ``state``, ``attempts``, ``next_attempt_at`` and ``last_error``.

:class:`Leasable` is whatever a worker must hold alone while it works: the row itself (a
queued message), or another row that stands for a group of work (the contact outbox leases
the user's :class:`~django_sendflare.models.ContactSyncState`, not each change).
A model may inherit both.

These are plain abstract Django models: a concrete model adds its own fields and ``Meta``
(give it an index on ``("state", "next_attempt_at")``: :meth:`WorkQueue.due` filters on both).
A concrete model may redeclare ``state`` with more choices; the queue only uses the three
below.
"""

from __future__ import annotations

from django.db import models, router
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def db_alias(model: type[models.Model]) -> str:
    """The database the rows of ``model`` (a queue's, or what its workers lease) are written to."""
    return router.db_for_write(model)


class QueueItem(models.Model):
    """One unit of work of a durable queue, retried with backoff, parked after too many tries."""

    class State(models.TextChoices):
        #: Waiting for its (next) attempt, due at ``next_attempt_at``.
        PENDING = "pending", _("pending")
        #: Parked: a permanent error, or ``max_attempts`` transient ones. Only a person (the
        #: admin's Retry action, a command) puts it back to pending.
        FAILED = "failed", _("failed")
        #: Done, for queues that keep their rows as a log (the contact outbox deletes them).
        DONE = "done", _("done")

    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.PENDING
    )
    #: Failed attempts so far (transient or not); reset by a manual retry.
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True


class Leasable(models.Model):
    """Something one worker holds alone for a while: see :class:`~.leases.Lease`.

    ``lease_until`` is when the holder's lease ends unless renewed; ``lease_token`` says which
    worker (which :class:`~.leases.Lease` object) holds it. A lease whose ``lease_until`` is past
    is free: its worker died, and any worker may take it.
    """

    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    lease_token = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        abstract = True
