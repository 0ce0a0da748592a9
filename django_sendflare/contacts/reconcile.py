"""Bring ONE user's contact up to date: the only place a user's contact is changed.

Delivery (the outbox), the full sync and the admin actions all come here. A
:class:`Reconciliation` holds the client, the adapter, a view of the listing and the user's key;
:meth:`Reconciliation.run` takes the user's lease, then repeats: read the user and the sync state
*now*, decide the one next call, make it, record what it did; until nothing is left to do.
Re-reading before each call is what makes deletes win (I2): a user deleted, deactivated or
marked do-not-sync while a call was being made gets no further call but deletes.

The rules (see docs/explanation/contact-invariants.rst):

* I1: an address of a user is created Unsubscribed when the user is known unsubscribed
  (``unsubscribed_at``), when the adapter says so, or when the live listing shows any other
  address of the user Unsubscribed. The adapter's status is only that of a new person.
* I3: an address is added to ``stale_emails`` *before* the call that may create it: a create
  whose answer is lost is still recorded, and deleted once it is not the current address.
* I4: only a complete listing proves an address absent; an unknown answer changes nothing.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import transaction
from django.db.models import Max, Model
from django.utils import timezone

from ..client import SendflareClient
from ..exceptions import SendflareAPIError
from ..models import ContactChange, ContactSyncState
from ..queue import Lease, LeaseLost
from ..redaction import error_text
from ..signals import contact_unsubscribed
from . import state as state_mod
from .adapter import CONFIRMED, UNSUBSCRIBED, Contact, ContactAdapter, normalize_email
from .remote import Facts, LiveReadFailed, RemoteContact

logger = logging.getLogger(__name__)

#: What a view answers for an address it knows nothing of.
UNKNOWN: Any = object()

#: More steps than any user needs (a save, a re-create, a few stale addresses to delete).
MAX_STEPS = 25


class Outcome(str, enum.Enum):
    """What bringing one user up to date did."""

    SAVED = "saved"
    DELETED = "deleted"
    UNCHANGED = "unchanged"  # the contact already matches: no call
    SKIPPED = "skipped"  # not synced (should_sync() is False, or nothing to delete): no call
    RETRY = "retry"  # a transient failure: tried again later
    FAILED = "failed"  # a permanent failure (or too many transient ones): parked
    BUSY = "busy"  # another worker holds this user


@dataclass
class UserResult:
    """The result of bringing (or deleting) the contact of one user."""

    user_key: str
    outcome: Outcome
    email: str = ""
    calls: int = 0
    error: str = ""
    #: The failure is transient (the API or the limiter is down): try again later.
    transient: bool = False
    #: The failure concerns the account (bad token...): every other user would fail too.
    account_level: bool = False
    #: The failure is a conflict: another synced user has the address (reported, not an error
    #: of the full sync).
    conflict: bool = False
    #: The outbox rows read (and resolved, when the outcome is not a failure).
    row_ids: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome not in (Outcome.RETRY, Outcome.FAILED)


class RemoteView(Protocol):
    """What a run knows of Sendflare's contacts (see :mod:`.remote`)."""

    def want(self, addresses: Iterable[str]) -> None: ...

    def known(self, addresses: Iterable[str]) -> Facts: ...

    def lookup(self, addresses: Any) -> Facts: ...


class CallFailed(Exception):
    """A call failed outside the API's own errors (the limiter, a library): transient."""


class _Permanent(Exception):
    """A failure that no retry can fix (an invalid mapping, a conflict)."""


@dataclass(frozen=True)
class _Save:
    contact: Contact
    status: str
    new_address: bool  # the address is not the synced one (a create, as far as we know)
    #: Fields to send empty: they have a value in Sendflare and none here.
    clear: tuple[str, ...] = ()
    #: The listing shows the address there already: the save cannot create it.
    exists: bool = False


@dataclass(frozen=True)
class _Delete:
    address: str


class Reconciliation:
    """Brings the contact of the user ``key`` up to date, under the user's lease.

    ``view`` answers what Sendflare holds (live reads happen through it); ``force`` saves the
    contact even when the recorded state says it is up to date (an explicit "Sync to
    Sendflare"); ``unique_address`` is an address a full sync's plan has just found no other
    user to have (its conflict check, over every user, stands in for a scan of the users).
    """

    def __init__(
        self,
        key: str,
        *,
        client: SendflareClient,
        adapter: ContactAdapter,
        app_id: str,
        lease: Lease,
        view: RemoteView,
        recreate_to_change_status: bool = False,
        force: bool = False,
        unique_address: str = "",
    ) -> None:
        self.key = key
        self.client = client
        self.adapter = adapter
        self.app_id = app_id
        self.lease = lease
        self.view = view
        self.recreate_to_change_status = recreate_to_change_status
        self.force = force
        self.using = lease.using
        self.result = UserResult(key, Outcome.UNCHANGED)
        self._saved = False
        self._deleted = False
        self._synced = True
        #: Addresses deleted by this run.
        self._gone: set[str] = set()
        #: Addresses this run saved or deleted; created (saved as a new address).
        self._touched: set[str] = set()
        self._created: set[str] = set()
        self._others: dict[str, list[str]] = {}
        #: The last outbox row of this user when the run started (None: there was none).
        self._top: int | None = None
        if normalize_email(unique_address):
            self._others[normalize_email(unique_address)] = []

    def __repr__(self) -> str:
        return f"<Reconciliation of user {self.key}>"

    # The run.

    def run(self) -> UserResult:
        """Take the lease, bring the contact up to date, release; never raises an API error."""
        ContactSyncState.objects.using(self.using).get_or_create(user_key=self.key)
        if not self.lease.take(self.key):
            self.result.outcome = Outcome.BUSY
            return self.result
        try:
            self._run_leased()
        except LeaseLost as error:
            self.result.outcome, self.result.error = Outcome.BUSY, str(error)
        except (LiveReadFailed, CallFailed) as error:
            self._fail(str(error), transient=True)
        except SendflareAPIError as error:
            self._fail(str(error), transient=error.retryable or error.account_level)
            self.result.account_level = error.account_level
        except (_Permanent, ValueError) as error:
            self._fail(str(error), transient=False)
        except Exception as error:
            # An adapter bug must not stop the worker: park the change and say why.
            logger.exception(
                "Sendflare: bringing the contact of user %s up to date failed", self.key
            )
            self._fail(f"{type(error).__name__}: {error}", transient=False)
        finally:
            self.lease.release(self.key)
        return self.result

    def _fail(self, error: str, *, transient: bool) -> None:
        self.result.outcome = Outcome.RETRY if transient else Outcome.FAILED
        self.result.error = error
        self.result.transient = transient

    def _run_leased(self) -> None:
        rows = ContactChange.objects.using(self.using).filter(user_key=self.key)
        self._top = top = rows.aggregate(top=Max("id"))["top"]
        self.result.row_ids = list(rows.values_list("id", flat=True))
        self.force = self.force or rows.filter(kind=ContactChange.Kind.SYNC).exists()
        self._adopt_row_addresses(rows)
        for _ in range(MAX_STEPS):
            self.lease.keep_alive()
            step = self._next_step()
            if step is None:
                break
            self.lease.keep_alive()
            if isinstance(step, _Save):
                self._save(step)
            else:
                self._delete(step.address)
        else:
            raise _Permanent("the contact did not settle (too many steps)")
        if self._saved:
            self.result.outcome = Outcome.SAVED
        elif self._deleted:
            self.result.outcome = Outcome.DELETED
        elif not self._synced:
            self.result.outcome = Outcome.SKIPPED
        # Delivered: the rows read are resolved; rows recorded since then wait for their turn.
        self.result.row_ids = [pk for pk in self.result.row_ids if top is None or pk <= top]

    # Reading the state now.

    def _state(self) -> ContactSyncState:
        state, _ = ContactSyncState.objects.using(self.using).get_or_create(user_key=self.key)
        return state

    def _user(self) -> Model | None:
        try:
            return self.adapter.get_queryset().filter(pk=self.key).first()
        except (ValueError, TypeError):
            return None  # a key that is not a valid pk of this model (the model was swapped)

    def _others_with(self, address: str) -> list[str]:
        """The other synced users that have this address (read once per run: a full scan)."""
        key = normalize_email(address)
        if key not in self._others:
            self._others[key] = state_mod.users_with_address(
                self.adapter, key, exclude_key=self.key
            )
        return self._others[key]

    def _adopt_row_addresses(self, rows: Any) -> None:
        """The addresses the rows name, other than the current one, may exist: note them as stale.

        An address the user had only between two deliveries was never created by us, but
        another user may have kept its contact for this one (see :meth:`_delete`), which the
        rows are the only record of (I3). From now on the state speaks for the rows
        (``rows_adopted_through``): what this run forgets, a row waiting to be resolved must
        not claim for this user.
        """
        state = self._state()
        user = self._user()
        current = normalize_email(self.adapter.get_email(user)) if user is not None else ""
        addresses = list(state.stale_emails)
        known = {current, normalize_email(state.synced_email), ""}
        for email, previous in rows.values_list("email", "previous_email"):
            for address in (previous, email):
                key = normalize_email(address)
                if key not in known and key not in map(normalize_email, addresses):
                    addresses.append(address.strip())
        values: dict[str, Any] = {}
        if addresses != list(state.stale_emails):
            values["stale_emails"] = addresses
        if self._top is not None and self._top > state.rows_adopted_through:
            values["rows_adopted_through"] = self._top
        if values:
            self._update(**values)

    # Deciding the next call.

    def _next_step(self) -> _Save | _Delete | None:
        state = self._state()
        user = self._user()
        stale = [a for a in state.stale_emails if normalize_email(a)]
        synced = state.synced_email.strip()
        if user is None:
            self._synced = False
            step = self._delete_step([synced, *stale])
            if step is None:
                self._forget_user()
            return step
        self.result.email = self.adapter.get_email(user)
        if state.do_not_sync:
            self._synced = False
            return self._delete_step([synced, *stale])
        if not self.adapter.should_sync(user):
            # Not synced (inactive, no address): the contact is left as it is (--prune removes
            # it) and an email change in progress is finished; but an address this very run
            # created is undone: the deactivation landed while that call was in flight, and
            # work planned before it must not leave a contact behind (I2).
            self._synced = False
            keep = "" if normalize_email(synced) in self._created else normalize_email(synced)
            return self._delete_step([a for a in [synced, *stale] if normalize_email(a) != keep])
        contact = self.adapter.to_contact(user)
        self.result.email = contact.email
        others = self._others_with(contact.key)
        if others:
            # Not synced while another user has the address; the addresses this user had
            # before are not its address any more (I3): they are deleted first. The shared
            # address is not this user's contact either, but may be one day: it is recorded,
            # so that whoever keeps its contact for this user leaves it to this user (I3).
            self._synced = False
            self._note_stale(contact.email)
            step = self._delete_step(
                a for a in [synced, *stale] if normalize_email(a) != contact.key
            )
            if step is not None:
                return step
            self.result.conflict = True
            raise _Permanent(
                f"Conflict: {contact.email} is also the address of user(s) {', '.join(others)}; "
                "neither is synced until only one has it."
            )
        return self._contact_step(state, user, contact, synced, stale)

    def _contact_step(
        self, state: ContactSyncState, user: Model, contact: Contact, synced: str, stale: list[str]
    ) -> _Save | _Delete | None:
        # The view was read before this run's own calls: what they did is newer.
        here = (
            UNKNOWN
            if contact.key in self._touched
            else self.view.known([contact.key]).get(contact.key, UNKNOWN)
        )
        if isinstance(here, RemoteContact) and here.status == UNSUBSCRIBED:
            self._learn_unsubscribed(state, user, here.email)
            state = self._state()
        if normalize_email(synced) == contact.key:
            if here is None and state.synced_at is not None:
                # A complete listing lacks the contact we synced: it was deleted at Sendflare.
                self._learn_remote_delete(state, user, synced)
                # Re-read everything: a receiver may have marked the user do-not-sync.
                return self._next_step()
            if self._status_to_recreate(state, contact):
                return _Delete(synced)
            if isinstance(here, RemoteContact):
                differs = bool(here.changes(contact))
                if not differs and state.synced_data != contact.filled_data():
                    self._update(synced_data=contact.filled_data(), synced_at=timezone.now())
            else:
                differs = state.synced_data != contact.filled_data()
            if differs or self.force:
                status = self._status_of_existing(state, contact)
                return _Save(contact, status, False, _cleared(contact, state.synced_data, here))
            return self._delete_step([a for a in stale if normalize_email(a) != contact.key])
        if isinstance(here, RemoteContact):
            return self._adopt(here, contact, synced)
        status = self._status_of_new_address(state, contact, synced, stale)
        if status == UNSUBSCRIBED and here is UNKNOWN and contact.key not in self._touched:
            # An unsubscribed person moving to an address that may exist Confirmed (another
            # user's, an old one): a save would keep that status. Read it, to re-create it.
            found = self.view.lookup([contact.key]).get(contact.key)
            if found is not None:
                return self._adopt(found, contact, synced)
        return _Save(contact, status, True)

    def _adopt(self, here: RemoteContact, contact: Contact, synced: str) -> _Save | _Delete | None:
        """The listing shows the address there already: adopt it (an update, if anything)."""
        if here.changes(contact) or self.force:
            return _Save(contact, here.status, True, _cleared(contact, {}, here), exists=True)
        self._record_synced(contact, here.email, here.status, previous=synced)
        return self._next_step()

    def _delete_step(self, addresses: Iterable[str]) -> _Delete | None:
        for address in addresses:
            if normalize_email(address) not in self._gone | {""}:
                return _Delete(address.strip())
        return None

    # Statuses (I1).

    def _status_of_new_address(
        self, state: ContactSyncState, contact: Contact, synced: str, stale: list[str]
    ) -> str:
        """The status of an address created now: the adapter's only for a new person."""
        if state.unsubscribed_at is not None or contact.status == UNSUBSCRIBED:
            return UNSUBSCRIBED
        others = {normalize_email(a) for a in [synced, *stale]} - {contact.key, ""}
        if not others:
            return contact.status  # a new person: nothing of theirs is in Sendflare
        # An email change: the live status of the user's other addresses decides. A failed
        # read raises LiveReadFailed: the change waits; it is never taken as Confirmed.
        facts = self.view.lookup(others)
        for found in facts.values():
            if found is not None and found.status == UNSUBSCRIBED:
                self._learn_unsubscribed(self._state(), self._user(), found.email)
                return UNSUBSCRIBED
        return contact.status

    def _status_of_existing(self, state: ContactSyncState, contact: Contact) -> str:
        """The status sent with an update (the API keeps the contact's own; used if it is gone)."""
        if state.unsubscribed_at is not None or contact.status == UNSUBSCRIBED:
            return UNSUBSCRIBED
        return state.remote_status or contact.status

    def _status_to_recreate(self, state: ContactSyncState, contact: Contact) -> bool:
        """Whether to delete a Confirmed contact and create it Unsubscribed: always when Sendflare
        told us the person unsubscribed (I1), and with CONTACTS_RECREATE_TO_CHANGE_STATUS when the
        adapter says so. Never the other way."""
        if state.remote_status != CONFIRMED:
            return False
        if state.unsubscribed_at is not None:
            return True
        return self.recreate_to_change_status and contact.status == UNSUBSCRIBED

    # Calls, and what they prove.

    def _call(self, method: Any, **kwargs: Any) -> None:
        self.result.calls += 1
        try:
            method(app_id=self.app_id, **kwargs)
        except (SendflareAPIError, ValueError):
            raise
        except Exception as error:
            # The limiter's store or a library failed: the call may be retried; never raw.
            logger.warning(
                "Sendflare: a contact call failed: %s: %s", type(error).__name__, error_text(error)
            )
            raise CallFailed(
                f"the call could not be made ({type(error).__name__}; the rate limiter's store "
                "or the connection failed)"
            ) from None

    def _save(self, step: _Save) -> None:
        contact = step.contact
        state = self._state()
        if step.new_address and not step.exists:
            # I3: recorded before the call, so that a lost answer leaves no orphan behind.
            self._note_stale(contact.email)
        data = {**contact.filled_data(), **dict.fromkeys(step.clear, "")}
        self._call(self.client.save_contact, email=contact.email, status=step.status, data=data)
        self._saved = True
        self._touched.add(contact.key)
        self.force = False  # a forced sync asks for one save of the current contact
        if step.new_address:
            self._created.add(contact.key)
            self._record_synced(contact, contact.email, step.status, previous=state.synced_email)
        else:
            self._update(synced_data=contact.filled_data(), synced_at=timezone.now())

    def _delete(self, address: str) -> None:
        # Kept for another user or deleted, the address leaves this user's records: whatever
        # Sendflare knows of this person's consent there must be learned first (I1).
        self._learn_before_delete(address)
        keepers = self._keepers_of(address)
        if keepers:
            keepers = self._hand_over(address, keepers)
        if keepers:
            logger.info(
                "Sendflare: kept the contact %s of user %s for user(s) %s",
                address,
                self.key,
                ", ".join(keepers),
            )
        else:
            self._call(self.client.delete_contact, email=address)
            self._deleted = True
            self._forget_address(address)
        self._gone.add(normalize_email(address))
        self._touched.add(normalize_email(address))
        self.result.email = self.result.email or address

    def _keepers_of(self, address: str) -> list[str]:
        """The other users an address is kept for, instead of being deleted.

        Those that are synced and have it now (a conflict, or the next user of an address),
        and those whose records name it (their sync state or their outbox rows): each of them
        deletes it, with a live read first, once it is not their address (I3), and reads its
        status before an email change (I1). Handing the address over, rather than deleting
        it, keeps Sendflare's evidence of an unsubscribe for the person who still has it.
        """
        keepers = self._others_with(address)
        recording = state_mod.users_recording_address(address, exclude_key=self.key)
        return [*keepers, *(key for key in recording if key not in keepers)]

    def _hand_over(self, address: str, keepers: list[str]) -> list[str]:
        """Forget the address, left to ``keepers``, holding their leases; return who keeps it.

        Two workers could otherwise hand one address to each other at the same instant, each
        relying on the other's record, and both forget it: an orphan (I3). A user's records
        change only under its lease, so the keepers' leases are taken first and the keepers
        looked up again; a keeper that another worker is bringing up to date makes this a
        transient failure, retried later. An empty answer: nobody keeps it, delete it.
        """
        taken: list[str] = []
        try:
            for key in sorted(keepers):
                if key in self.lease.held:
                    continue  # this holder has that user already (one lease serves a batch)
                # A lease needs the row: a keeper never delivered yet has none.
                ContactSyncState.objects.using(self.using).get_or_create(user_key=key)
                if not self.lease.take(key):
                    raise CallFailed(
                        f"user {key}, who may keep the contact {address}, is being brought up "
                        "to date by another worker"
                    )
                taken.append(key)
            self._others.pop(normalize_email(address), None)  # users may have moved: read again
            keepers = self._keepers_of(address)
            if keepers:
                self._forget_address(address)
            return keepers
        finally:
            for key in taken:
                self.lease.release(key)

    def _learn_before_delete(self, address: str) -> None:
        """Deleting a live user's address deletes the evidence of an unsubscribe: read it first.

        I1 must hold when the user gets an address again (the admin's Sync after its Delete, an
        email change after a conflict). Free when the user is known unsubscribed, or when the
        view has read the address already; a failed read is transient (the delete waits).
        """
        state = self._state()
        if state.unsubscribed_at is not None or normalize_email(address) in self._touched:
            return
        user = self._user()
        if user is None:
            return  # a deleted user never gets an address again
        found = self.view.lookup([address]).get(normalize_email(address))
        if found is not None and found.status == UNSUBSCRIBED:
            self._learn_unsubscribed(state, user, found.email)

    # Recording.

    def _update(self, **values: Any) -> None:
        ContactSyncState.objects.using(self.using).filter(user_key=self.key).update(
            **values, updated_at=timezone.now()
        )

    def _record_synced(self, contact: Contact, email: str, status: str, *, previous: str) -> None:
        """``email`` is now the user's contact; the previous synced address is to delete."""
        state = self._state()
        key = normalize_email(email)
        stale = [a for a in state.stale_emails if normalize_email(a) not in (key, "")]
        if normalize_email(previous) not in ("", key) and normalize_email(previous) not in map(
            normalize_email, stale
        ):
            stale.append(previous.strip())
        self._update(
            synced_email=email,
            synced_data=contact.filled_data(),
            synced_at=timezone.now(),
            remote_status=status,
            stale_emails=stale,
            unsubscribed_at=(
                state.unsubscribed_at or (timezone.now() if status == UNSUBSCRIBED else None)
            ),
        )

    def _note_stale(self, address: str) -> None:
        """Record an address that may exist in Sendflare as this user's to delete (last)."""
        state = self._state()
        stale = [a for a in state.stale_emails if normalize_email(a) != normalize_email(address)]
        if [*stale, address.strip()] != list(state.stale_emails):
            self._update(stale_emails=[*stale, address.strip()])

    def _forget_user(self) -> None:
        """The deleted user's records are empty: drop its state, and the rows this run read.

        Together: a row left without its state would claim the user's old addresses again
        (``rows_adopted_through`` went with the state) until the outbox resolved it.
        """
        with transaction.atomic(using=self.using):
            ContactSyncState.objects.using(self.using).filter(user_key=self.key).delete()
            if self._top is not None:
                ContactChange.objects.using(self.using).filter(
                    user_key=self.key, id__lte=self._top
                ).delete()

    def _forget_address(self, address: str) -> None:
        state = self._state()
        key = normalize_email(address)
        values: dict[str, Any] = {
            "stale_emails": [a for a in state.stale_emails if normalize_email(a) != key]
        }
        if normalize_email(state.synced_email) == key:
            values.update(synced_email="", synced_data={}, remote_status="")
        self._update(**values)

    def _learn_unsubscribed(self, state: ContactSyncState, user: Model | None, email: str) -> None:
        """Sendflare holds an address of this user as Unsubscribed: sticky (I1), and reported."""
        first = state.unsubscribed_at is None
        values: dict[str, Any] = {}
        if first:
            values["unsubscribed_at"] = timezone.now()
        if normalize_email(state.synced_email) == normalize_email(email):
            values["remote_status"] = UNSUBSCRIBED
        if values:
            self._update(**values)
        if first and user is not None:
            logger.info("Sendflare: the contact %s of user %s is Unsubscribed", email, self.key)
            _announce(user, email, deleted=False)

    def _learn_remote_delete(self, state: ContactSyncState, user: Model, email: str) -> None:
        """The synced contact is gone from a complete listing: deleted at Sendflare."""
        self._update(
            synced_email="", synced_data={}, remote_status="", remote_deleted_at=timezone.now()
        )
        logger.info(
            "Sendflare: the contact %s of user %s was deleted at Sendflare", email, self.key
        )
        _announce(user, email, deleted=True)


def _cleared(contact: Contact, synced_data: dict[str, Any], here: Any) -> tuple[str, ...]:
    """The fields empty here that have a value in Sendflare (as last sent, or as listed)."""
    return tuple(
        name
        for name, value in contact.data.items()
        if value == ""
        and (synced_data.get(name) or (isinstance(here, RemoteContact) and here.value(name)))
    )


def _announce(user: Model, email: str, *, deleted: bool) -> None:
    for receiver, response in contact_unsubscribed.send_robust(
        sender=type(user), user=user, email=email, deleted=deleted
    ):
        if isinstance(response, Exception):
            logger.error(
                "Sendflare: the contact_unsubscribed receiver %r failed: %r", receiver, response
            )
