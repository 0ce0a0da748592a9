"""Carry out the steps :func:`~.decide.decide` chooses for one user, under the user's lease.

:class:`UserRun` is the only code that changes a user's contact. It takes the user's lease,
reads the user's facts (:mod:`.snapshot`), asks :func:`~.decide.decide` for the next step and
carries it out, until the answer is "done". The facts are read once, and again only before a
save that follows a call (a user deleted, deactivated or marked do-not-sync meanwhile gets no
further save, only deletes: I2) or after a ``contact_unsubscribed`` receiver ran.

The state is written once per step, after its call, except for what must be durable *before* a
call: the address a save may create (I3) and any evidence learned (I1). The record of a save
that moves the user to a new address is written together with the delete of the old address
that follows it (one write for the move): if the process dies between them, the state names
both addresses still, and the next run finishes the move.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db.models import Model
from django.utils import timezone

from ..models import ContactChange, ContactSyncState
from ..queue import Lease, WorkQueue
from ..signals import contact_unsubscribed
from . import decide as d
from . import effects
from .adapter import normalize_email
from .context import ServiceContext
from .neighbours import Neighbours
from .record import StateRecord
from .remote import RemoteView
from .results import LiveReadFailed, Outcome, Permanent, UserResult, calling, failure_of
from .snapshot import Snapshot, SnapshotReader

logger = logging.getLogger(__name__)

#: More decisions than any user needs (reads, a save, a re-create, a few addresses to delete).
MAX_DECISIONS = 60


class UserRun:
    """Brings the contact of the user ``key`` up to date, under the user's lease.

    ``view`` answers what Sendflare holds (live reads happen through it); ``force`` saves the
    contact even when the recorded state says it is up to date (an explicit "Sync to
    Sendflare"); ``unique_address`` is an address a full sync has just found no other user to
    have (its check over every user stands in for a scan of the users).
    """

    def __init__(
        self,
        key: str,
        *,
        context: ServiceContext,
        lease: Lease,
        view: RemoteView,
        force: bool = False,
        unique_address: str = "",
    ) -> None:
        self.key = key
        self.context = context
        self.lease = lease
        self.view = view
        self.force = force
        self.reader = SnapshotReader(key, adapter=context.adapter, view=view, using=context.using)
        if normalize_email(unique_address):
            self.reader.others[normalize_email(unique_address)] = []
        self.result = UserResult(key, Outcome.UNCHANGED)
        self.record = StateRecord(key, using=context.using)
        self.neighbours = Neighbours(lease, using=context.using)
        self._calls_since_read = 0
        self._reread = False  # a receiver ran: read the facts again before deciding
        self._saved = self._deleted = False

    def __repr__(self) -> str:
        return f"<UserRun of user {self.key}>"

    # The run.

    def run(self) -> UserResult:
        """Take the lease, bring the contact up to date, release; never raises an API error."""
        if not self._take():
            self.result.outcome = Outcome.BUSY
            return self.result
        try:
            self._run_leased()
        except Exception as error:
            failure = failure_of(error, user_key=self.key)
            self.result.outcome, self.result.error = failure.outcome, failure.error
            self.result.transient = failure.transient
            self.result.account_level = failure.account_level
            self.record.write()  # what the calls made did happen
        finally:
            self.lease.release(self.key)
        return self.result

    def _take(self) -> bool:
        if self.lease.take(self.key):
            return True
        # A lease needs the row: a user never delivered yet has none.
        _, created = ContactSyncState.objects.using(self.context.using).get_or_create(
            user_key=self.key
        )
        return created and self.lease.take(self.key)

    def _run_leased(self) -> None:
        reader = self.reader
        state = reader.state()
        outbox = reader.outbox()
        self.result.row_ids = outbox.ids
        guesses = [outbox.latest, *outbox.addresses, state.synced_email, *state.stale_emails]
        snapshot = Snapshot(
            self.key,
            reader.user(state, guesses),
            state,
            force=self.force or outbox.forced,
            recreate_to_change_status=self.context.recreate_to_change_status,
        )
        self.snapshot = snapshot
        # The addresses the rows name may exist (I3): the state speaks for the rows from now on.
        self._stage(effects.adopted(state, snapshot.user, outbox))
        self._fill()
        for _ in range(MAX_DECISIONS):
            self.lease.keep_alive()
            if self._reread:
                self._refresh(state=True)
            step = d.decide(self.snapshot)
            self._note_email()
            if self._calls_since_read and (
                isinstance(step, d.Save) or (isinstance(step, d.Done) and self.snapshot.created)
            ):
                # I2: a save is made from facts read after the last call; and what this run
                # created is undone if the user was deactivated while it was being created.
                self._refresh(state=isinstance(step, d.Save))
                continue
            if isinstance(step, d.Done):
                self.record.write()
                self._finish(synced=step.synced)
                return
            if isinstance(step, d.Conflict):
                self.result.conflict = True
                raise Permanent(
                    f"Conflict: {step.email} is also the address of user(s) "
                    f"{', '.join(step.others)}; neither is synced until only one has it."
                )
            if isinstance(step, d.ForgetUser):
                self.record.forget_user(outbox.top)
                self._wake_users_left_with(outbox.addresses)
                self._finish(synced=False)
                return
            self._carry_out(step)
        raise Permanent("the contact did not settle (too many steps)")

    def _wake_users_left_with(self, addresses: list[str]) -> None:
        """The deleted user's addresses may have been in conflict: the users left with one of
        them are delivered again, for their changes were parked as conflicts, which only this
        departure ends (and no change of theirs would be recorded to say so)."""
        keys = {k for a in addresses if normalize_email(a) for k in self.reader.others_with(a)}
        if not keys:
            return
        rows = ContactChange.objects.using(self.context.using).filter(
            user_key__in=keys, state=ContactChange.State.FAILED
        )
        queue = WorkQueue(
            ContactChange,
            max_attempts=self.context.settings.contacts_max_attempts,
            using=self.context.using,
        )
        queue.retry(rows.values_list("pk", flat=True))

    def _finish(self, *, synced: bool) -> None:
        if self._saved:
            self.result.outcome = Outcome.SAVED
        elif self._deleted:
            self.result.outcome = Outcome.DELETED
        elif not synced:
            self.result.outcome = Outcome.SKIPPED

    def _note_email(self) -> None:
        user = self.snapshot.user
        if user is not None:
            self.result.email = user.contact.email if user.contact is not None else user.email

    # Reading.

    def _fill(self) -> None:
        """The facts a decision needs besides the state and the user: who else, what is there."""
        snapshot = self.snapshot
        contact = snapshot.user.contact if snapshot.user is not None else None
        snapshot.others = tuple(self.reader.others_with(contact.key)) if contact else ()
        known = self.reader.remote(snapshot.addresses())
        snapshot.remote.update({k: v for k, v in known.items() if k not in snapshot.remote})

    def _refresh(self, *, state: bool) -> None:
        """Read the user again, and with ``state`` its sync state (the admin's marks)."""
        self.record.write()
        if state:
            self.snapshot.state = self.reader.state()
        self.snapshot.user = self.reader.user(self.snapshot.state)
        self._fill()
        self._calls_since_read = 0
        self._reread = False

    # Carrying out a step.

    def _carry_out(self, step: d.Step) -> None:
        snapshot = self.snapshot
        handlers: dict[type, Callable[[Any], None]] = {
            d.LiveRead: self._live_read,
            d.FindKeepers: self._find_keepers,
            d.Save: self._save,
            d.Delete: self._delete,
            d.HandOver: self._hand_over,
            d.ShareUnsubscribe: self._share_unsubscribe,
            d.LearnUnsubscribed: self._learn_unsubscribed,
            d.LearnRemoteDelete: self._learn_remote_delete,
            d.Adopt: lambda s: self._stage(
                effects.synced(snapshot.state, s.contact, s.email, s.status, timezone.now()),
                durable=True,
            ),
            d.Refresh: lambda s: self._stage(effects.sent(s.contact, timezone.now())),
            d.NoteStale: lambda s: self._stage(
                {"stale_emails": snapshot.state.stale_with(s.address)}, durable=True
            ),
        }
        handlers[type(step)](step)

    def _live_read(self, step: d.LiveRead) -> None:
        keys = {normalize_email(a) for a in step.addresses}
        facts = self.view.lookup(keys)
        if keys - set(facts):
            raise LiveReadFailed("the contact list could not be read for a live status")
        self.snapshot.remote.update(facts)

    def _find_keepers(self, step: d.FindKeepers) -> None:
        self._found_keepers(step.address, self.reader.keepers_of(step.address))

    def _found_keepers(self, address: str, keepers: tuple[str, ...]) -> None:
        key = normalize_email(address)
        self.snapshot.keepers[key] = keepers
        self.snapshot.sharers[key] = self.reader.sharers_of(address, keepers)

    def _call(self, method: Any, **kwargs: Any) -> None:
        if self.record.due:
            self.record.write()
        self.lease.keep_alive()
        self.result.calls += 1
        self._calls_since_read += 1
        with calling():
            method(app_id=self.context.app_id, **kwargs)

    def _save(self, step: d.Save) -> None:
        snapshot, contact = self.snapshot, step.contact
        if step.new_address and not step.exists:
            # I3: recorded before the call, so that a lost answer leaves no orphan behind.
            self._stage({"stale_emails": snapshot.state.stale_with(contact.email)})
        self.record.write()
        data = {**contact.filled_data(), **dict.fromkeys(step.clear, "")}
        client = self.context.client
        self._call(client.save_contact, email=contact.email, status=step.status, data=data)
        self._saved = True
        snapshot.saved(contact, new_address=step.new_address)
        now = timezone.now()
        if step.new_address:
            self._stage(effects.synced(snapshot.state, contact, contact.email, step.status, now))
        else:
            self._stage(effects.sent(contact, now))

    def _delete(self, step: d.Delete) -> None:
        self._call(self.context.client.delete_contact, email=step.address)
        self._deleted = True
        self._forget_address(step.address)
        self._dealt_with(step.address)

    def _hand_over(self, step: d.HandOver) -> None:
        """Forget the address, left to its keepers, holding their leases.

        Two workers could otherwise hand one address to each other at the same instant, each
        relying on the other's record, and both forget it: an orphan (I3). So the keepers'
        leases are taken first and the keepers looked up again; when nobody keeps it any more,
        the next decision deletes it.
        """
        address = step.address
        with self.neighbours.holding(step.keepers, f"who may keep the contact {address}"):
            self.reader.forget_others(address)
            keepers = self.reader.keepers_of(address)
            if keepers:
                self._forget_address(address)
                self.record.write()  # while the keepers' leases are held
        self._found_keepers(address, keepers)
        if keepers:
            logger.info(
                "Sendflare: kept the contact %s of user %s for user(s) %s",
                address,
                self.key,
                ", ".join(keepers),
            )
            self._dealt_with(address)

    def _share_unsubscribe(self, step: d.ShareUnsubscribe) -> None:
        """Record the unsubscribe for the other users that have the address, then go on."""
        with self.neighbours.holding(step.users, f"who has the address {step.email}"):
            first = self.neighbours.unsubscribe(step.users, timezone.now())
        for key in first:
            logger.info("Sendflare: the address %s of user %s is Unsubscribed", step.email, key)
            user = self.context.adapter.get_queryset().filter(pk=key).first()
            if user is not None:
                _announce(user, step.email, deleted=False)
        self.snapshot.sharers[normalize_email(step.email)] = ()

    def _dealt_with(self, address: str) -> None:
        self.snapshot.dealt_with(address)
        self.result.email = self.result.email or address

    # Recording.

    def _stage(self, values: dict[str, Any], *, durable: bool = False) -> None:
        """The step's effect: in the snapshot now, in the database at the next write."""
        self.snapshot.state = self.snapshot.state.with_values(values)
        self.record.stage(values, durable=durable)

    def _forget_address(self, address: str) -> None:
        self._stage(effects.forgotten(self.snapshot.state, address))

    def _learn_unsubscribed(self, step: d.LearnUnsubscribed) -> None:
        """Sendflare holds an address of this user as Unsubscribed: sticky (I1), and reported."""
        first = self.snapshot.state.unsubscribed_at is None
        self._stage(
            effects.unsubscribed(self.snapshot.state, step.email, timezone.now()), durable=True
        )
        if first and self.snapshot.user is not None:
            logger.info(
                "Sendflare: the contact %s of user %s is Unsubscribed", step.email, self.key
            )
            self._announce(step.email, deleted=False)

    def _learn_remote_delete(self, step: d.LearnRemoteDelete) -> None:
        """The synced contact is gone from a complete listing: deleted at Sendflare."""
        self._stage(effects.deleted_remotely(timezone.now()), durable=True)
        logger.info(
            "Sendflare: the contact %s of user %s was deleted at Sendflare", step.email, self.key
        )
        self._announce(step.email, deleted=True)

    def _announce(self, email: str, *, deleted: bool) -> None:
        user = self.snapshot.user.instance if self.snapshot.user is not None else None
        if user is None:
            return  # a deleted user: nobody to tell
        self.record.write()  # the receivers see what was learned
        _announce(user, email, deleted=deleted)
        self._reread = True  # a receiver may have marked the user do-not-sync


def _announce(user: Model, email: str, *, deleted: bool) -> None:
    """Send ``contact_unsubscribed`` for ``user``; a failing receiver is logged, not raised."""
    for receiver, response in contact_unsubscribed.send_robust(
        sender=type(user), user=user, email=email, deleted=deleted
    ):
        if isinstance(response, Exception):
            logger.error(
                "Sendflare: the contact_unsubscribed receiver %r failed: %r", receiver, response
            )
