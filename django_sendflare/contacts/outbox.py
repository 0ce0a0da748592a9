"""The outbox: user changes recorded in the user's transaction, delivered later.

:func:`record_change` is called by the receivers inside the transaction that saves or deletes a
user: it writes one row and makes no API call, so the API can neither slow down nor fail a save,
and a rollback leaves nothing behind.

:func:`deliver_pending` delivers the pending rows (``manage.py sync_contacts --pending``, the
``--watch`` worker, the optional task, the admin's sync action): it claims a batch of due rows
from the generic queue (:mod:`django_sendflare.queue`), reads the listing once for all the
email changes of the batch (the live status an email change needs), then hands each user to a
:class:`~.steps.UserRun`, which leases the user, reads its facts, asks :func:`~.decide.decide`
for each step and carries it out.

Failures: a transient error (the API or the rate limiter down, a failed live read) puts the
user's rows back to pending with ``attempts + 1`` and a backoff, until
``CONTACTS_MAX_ATTEMPTS``; a permanent error parks them as failed at once. Failed rows are shown
by the admin, with Retry and Discard actions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model, QuerySet
from django.utils import timezone

from ..client import SendflareClient
from ..conf import get_settings
from ..models import ContactChange, ContactSyncState
from ..queue import Lease, Verdict, WorkQueue
from . import state as state_mod
from .adapter import MAX_ADDRESS_LENGTH, ContactAdapter, normalize_email
from .context import ServiceContext
from .listing import ListingScan
from .results import Outcome, UserResult
from .steps import UserRun

__all__ = [
    "DeliveryReport",
    "Outcome",
    "UserResult",
    "deliver_pending",
    "deliver_users",
    "outbox_queue",
    "record_change",
    "user_lease",
]

logger = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one :func:`deliver_pending` run did."""

    results: list[UserResult] = field(default_factory=list)
    #: Set when an account-level error (bad token, expired subscription...) stopped the run.
    account_error: str = ""
    #: Contacts read from the listing for the live statuses of email changes.
    contacts_read: int = 0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.results)

    @property
    def failures(self) -> int:
        return self.count(Outcome.RETRY) + self.count(Outcome.FAILED)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.account_error

    def summary(self) -> str:
        parts = [f"{self.count(o)} {o.value}" for o in Outcome if self.count(o)]
        text = ", ".join(parts) or "nothing to deliver"
        return f"{text}; {self.calls} API call(s)"


def record_change(
    user: Model,
    kind: str,
    *,
    email: str,
    previous_email: str = "",
    using: str | None = None,
) -> ContactChange:
    """Record a change of ``user`` in the outbox, in the current transaction.

    Called by the receivers. ``kind`` is a :class:`ContactChange.Kind`; ``email`` is the user's
    address after the change (for a deletion, the address the user had); ``previous_email`` the
    address before it, if the change altered it.
    """
    alias = using or state_mod.db_alias()
    change = ContactChange.objects.using(alias).create(
        user_key=state_mod.user_key(user),
        kind=kind,
        email=_recordable(email),
        previous_email=_recordable(previous_email),
    )
    logger.debug("Sendflare: recorded a %s of user %s", kind, change.user_key)
    return change


def _recordable(address: str) -> str:
    """The address as the row can hold it: "" for one longer than any contact's address.

    Never cut: the first 254 characters of a longer address are another valid address, one the
    user never had, and recording it as theirs would make a later change delete its contact.
    """
    return "" if len(address) > MAX_ADDRESS_LENGTH else address


def outbox_queue(max_attempts: int | None = None, using: str | None = None) -> WorkQueue[Any]:
    """The generic queue over the outbox rows."""
    return WorkQueue(
        ContactChange,
        max_attempts=max_attempts or get_settings().contacts_max_attempts,
        using=using or state_mod.db_alias(),
    )


def user_lease(using: str | None = None) -> Lease:
    """A holder of per-user leases (on each user's :class:`ContactSyncState`)."""
    return Lease(ContactSyncState, key_field="user_key", using=using or state_mod.db_alias())


class Delivery:
    """One run of the outbox: the context, queue and lease it shares between users."""

    def __init__(
        self,
        *,
        client: SendflareClient | None = None,
        adapter: ContactAdapter | None = None,
        max_attempts: int | None = None,
        force: bool = False,
    ) -> None:
        self.context = ServiceContext.build(
            client=client, adapter=adapter, purpose="contacts cannot be delivered"
        )
        self.using = self.context.using
        self.queue = outbox_queue(max_attempts, self.using)
        self.lease = user_lease(self.using)
        self.force = force
        self.report = DeliveryReport()

    def run(
        self,
        base: QuerySet[Any],
        *,
        batch_size: int,
        limit: int | None,
        include_not_due: bool,
        stop: threading.Event | None,
    ) -> DeliveryReport:
        ceiling: Any = None
        cursor = 0
        delivered = 0
        done: set[str] = set()
        with self.lease:
            while not self._stopping(stop):
                candidates = base.filter(id__gt=cursor).order_by("id")
                if ceiling is not None:
                    candidates = candidates.filter(id__lte=ceiling)
                if not include_not_due:
                    candidates = candidates.filter(next_attempt_at__lte=timezone.now())
                rows = self.queue.claim(
                    candidates.only("id", "user_key", "previous_email"), limit=batch_size
                )
                if not rows:
                    break
                full = len(rows) == batch_size
                if full and ceiling is None:
                    # Only the rows that exist now are taken: a stream of saves cannot keep one
                    # run going forever. (A first batch that is not full holds them all.)
                    ceiling = self.queue.high_water_mark(base)
                cursor = rows[-1].pk
                keys = [k for k in dict.fromkeys(r.user_key for r in rows) if k not in done]
                view = self._scan_for_email_changes(keys, rows)
                for key in keys:
                    if self._stopping(stop):
                        break
                    done.add(key)
                    self._deliver(key, view)
                    delivered += 1
                    if limit is not None and delivered >= limit:
                        return self.report
                self.report.contacts_read += view.contacts_read
                if not full:
                    break
        return self.report

    def _stopping(self, stop: threading.Event | None) -> bool:
        return bool(self.report.account_error) or (stop is not None and stop.is_set())

    def _scan_for_email_changes(self, keys: list[str], rows: list[Any]) -> ListingScan:
        """A listing scan primed with the old addresses of the batch's email changes.

        The live status is read only for those and for addresses to delete of users that still
        exist (once for the whole batch, when the first of them needs it); a plain data change
        or a new user needs no read. A user's own addresses are added by its run when it reads
        them: the states of the batch are read here only when the batch has several users.
        """
        context = self.context
        view = ListingScan(context.client, app_id=context.app_id, fields=context.adapter.fields)
        view.want(row.previous_email for row in rows if row.previous_email)
        if len(keys) < 2:
            return view
        changes = ContactChange.objects.using(self.using).filter(user_key__in=keys)
        latest: dict[str, str] = {}
        for key, email, before in changes.order_by("id").values_list(
            "user_key", "email", "previous_email"
        ):
            latest[key] = email
            if before:
                view.want([before])
        states = ContactSyncState.objects.using(self.using).filter(user_key__in=keys)
        for state in states:
            if state.unsubscribed_at is not None:
                continue  # already Unsubscribed: nothing to read
            old = {state.synced_email, *state.stale_emails} - {""}
            current = normalize_email(latest.get(state.user_key, ""))
            if state.do_not_sync or {normalize_email(a) for a in old} - {current}:
                # An email change, or deletes of a user's addresses: both need the live status
                # (deleting an address deletes the evidence of an unsubscribe).
                view.want(old)
        return view

    def _deliver(self, key: str, view: ListingScan) -> None:
        result = UserRun(
            key, context=self.context, lease=self.lease, view=view, force=self.force
        ).run()
        self.report.results.append(result)
        if result.outcome is Outcome.BUSY:
            logger.debug("Sendflare: user %s is being delivered by another worker", key)
            return
        if result.ok:
            self.queue.delete(result.row_ids)
            return
        if result.account_level:
            self.report.account_error = result.error
        pending = self.queue.pending().filter(id__in=result.row_ids)
        attempts = max(pending.values_list("attempts", flat=True), default=0) + 1
        verdict = self.queue.failed(
            pending.values_list("id", flat=True), result.error, transient=result.transient
        )
        park = verdict is Verdict.FAILED
        result.outcome = Outcome.FAILED if park else Outcome.RETRY
        (logger.error if park else logger.warning)(
            "Sendflare: the contact of user %s was not delivered (attempt %d, %s): %s",
            key,
            attempts,
            "parked as failed" if park else "will retry",
            result.error,
        )


def deliver_pending(
    *,
    client: SendflareClient | None = None,
    adapter: ContactAdapter | None = None,
    user_keys: Iterable[str] | None = None,
    batch_size: int = 100,
    limit: int | None = None,
    include_not_due: bool = False,
    stop: threading.Event | None = None,
    max_attempts: int | None = None,
    force: bool = False,
) -> DeliveryReport:
    """Deliver the pending changes that are due, user by user; return what was done.

    ``user_keys`` restricts delivery to those users (the admin's sync action, the task);
    ``include_not_due`` also takes rows still waiting for their backoff. Only the rows that
    existed when the run started are taken, so that a steady stream of saves cannot keep one
    run going forever; ``limit`` caps the users delivered. ``stop`` (a threading.Event) ends
    the run after the current user. ``force`` saves each user's contact even when the
    recorded state says it is up to date.

    Each user is leased just before it is delivered and released right after, and the lease
    is renewed before each call: a worker that dies frees its user within 45 s.
    """
    delivery = Delivery(client=client, adapter=adapter, max_attempts=max_attempts, force=force)
    base = delivery.queue.pending()
    if user_keys is not None:
        base = base.filter(user_key__in=sorted(set(user_keys)))
    return delivery.run(
        base, batch_size=batch_size, limit=limit, include_not_due=include_not_due, stop=stop
    )


def deliver_users(
    keys: Iterable[str], *, client: SendflareClient | None = None, force: bool = False
) -> dict[str, UserResult]:
    """Deliver the pending changes of these users now, whether due or not (admin, task)."""
    report = deliver_pending(client=client, user_keys=keys, include_not_due=True, force=force)
    return {r.user_key: r for r in report.results}
