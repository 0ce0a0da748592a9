"""The one decision: from a snapshot of one user's facts, the next step for its contact.

:func:`decide` is pure: no database, no API, no clock. It reads a :class:`~.snapshot.Snapshot`
(the user as the adapter sees it, what we synced, what Sendflare is known to hold, what this run
did already) and answers with one step. A step is either an action (a call, or a record to
write) or a request for a fact it lacks (:class:`LiveRead`, :class:`FindKeepers`); the runner
(:mod:`.steps`) carries it out or reads the fact, updates the snapshot and asks again, until
the answer is :class:`Done`. The outbox delivery, the full sync and the admin's actions all
come here; nothing else chooses what happens to a contact.

The rules (docs/explanation/contact-invariants.rst):

* I1: an address of a user is created Unsubscribed when the user is known unsubscribed
  (``unsubscribed_at``), when the adapter says so, or when Sendflare shows any other address of
  the user Unsubscribed; the adapter's status is only that of a new person. Before an address
  of a live user is deleted, its status is read: the evidence of an unsubscribe is kept.
* I2: a user deleted, inactive or marked do-not-sync gets deletes only.
* I3: an address is noted as this user's to delete before the call that may create it, and an
  address another user may keep is handed over, not deleted; an Unsubscribed address deleted
  is first recorded as an unsubscribe of every other user that has it.
* I4: only a complete listing proves an address absent; an unknown fact is asked for, never
  guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .adapter import CONFIRMED, UNSUBSCRIBED, Contact, normalize_email
from .remote import RemoteContact
from .snapshot import UNKNOWN, Snapshot, StateFacts

# Requests for facts.


@dataclass(frozen=True)
class LiveRead:
    """Read what Sendflare holds at these addresses (the listing)."""

    addresses: tuple[str, ...]


@dataclass(frozen=True)
class FindKeepers:
    """Look up the other users an address may be kept for, now (just before deleting it)."""

    address: str


# Actions that call the API.


@dataclass(frozen=True)
class Save:
    """Save the contact: a create of a new address, or an update of the synced one."""

    contact: Contact
    status: str
    new_address: bool  # the address is not the synced one (a create, as far as we know)
    #: Fields to send empty: they have a value in Sendflare and none here.
    clear: tuple[str, ...] = ()
    #: Sendflare holds the address already: the save cannot create it.
    exists: bool = False


@dataclass(frozen=True)
class Delete:
    """Delete an address (nobody else keeps it, and its status is known)."""

    address: str


@dataclass(frozen=True)
class ShareUnsubscribe:
    """Before an Unsubscribed address is deleted: record the unsubscribe for the other users
    that have it and keep nothing (a user marked do-not-sync may be synced again one day)."""

    email: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class HandOver:
    """Leave an address to the users that may keep it: forget it here, no call."""

    address: str
    keepers: tuple[str, ...]


# Actions that only record.


@dataclass(frozen=True)
class LearnUnsubscribed:
    """Sendflare holds an address of the user as Unsubscribed: sticky (I1), and announced."""

    email: str


@dataclass(frozen=True)
class LearnRemoteDelete:
    """A complete listing lacks the contact we synced: it was deleted at Sendflare."""

    email: str


@dataclass(frozen=True)
class Adopt:
    """Sendflare holds the address with the user's data already: it becomes the synced one."""

    contact: Contact
    email: str
    status: str


@dataclass(frozen=True)
class Refresh:
    """Sendflare matches the user but our record of what was sent is old: record it."""

    contact: Contact


@dataclass(frozen=True)
class NoteStale:
    """Record an address that may exist in Sendflare as this user's to delete (last)."""

    address: str


@dataclass(frozen=True)
class ForgetUser:
    """The deleted user's records are empty: drop its state (and the rows read)."""


# Ends.


@dataclass(frozen=True)
class Conflict:
    """Another synced user has the address: neither is synced until only one has it."""

    email: str
    others: tuple[str, ...]


@dataclass(frozen=True)
class Done:
    """Nothing left to do. ``synced``: the user is synced (False: skipped, deletes only)."""

    synced: bool = True


Step = (
    LiveRead
    | FindKeepers
    | Save
    | Delete
    | HandOver
    | ShareUnsubscribe
    | LearnUnsubscribed
    | LearnRemoteDelete
    | Adopt
    | Refresh
    | NoteStale
    | ForgetUser
    | Conflict
    | Done
)


def decide(snapshot: Snapshot) -> Step:
    """The next step for the contact of the user of ``snapshot``."""
    state = snapshot.state
    synced = state.synced_email.strip()
    stale = [a for a in state.stale_emails if normalize_email(a)]
    user = snapshot.user
    if user is None:
        return _delete_first(snapshot, [synced, *stale]) or ForgetUser()
    if state.do_not_sync:
        return _delete_first(snapshot, [synced, *stale]) or Done(synced=False)
    if user.contact is None:
        # Not synced (inactive, no address): the contact is left as it is (--prune removes it)
        # and an email change in progress is finished; but an address this very run created is
        # undone: the deactivation landed while that call was in flight (I2).
        keep = "" if normalize_email(synced) in snapshot.created else normalize_email(synced)
        rest = [a for a in [synced, *stale] if normalize_email(a) != keep]
        return _delete_first(snapshot, rest) or Done(synced=False)
    contact = user.contact
    others = snapshot.others
    if others:
        # The addresses this user had before are not its address any more (I3): deleted first.
        # The shared address is recorded, so that whoever keeps its contact leaves it to us.
        if state.stale_with(contact.email) != list(state.stale_emails):
            return NoteStale(contact.email)
        rest = [a for a in [synced, *stale] if normalize_email(a) != contact.key]
        return _delete_first(snapshot, rest) or Conflict(contact.email, others)
    return _contact_step(snapshot, contact, synced, stale)


def _contact_step(snapshot: Snapshot, contact: Contact, synced: str, stale: list[str]) -> Step:
    state = snapshot.state
    # What Sendflare was known to hold before this run's own calls: those are newer.
    here = UNKNOWN if contact.key in snapshot.touched else snapshot.remote_at(contact.key)
    if (
        isinstance(here, RemoteContact)
        and here.status == UNSUBSCRIBED
        and _learns(state, here.email)
    ):
        return LearnUnsubscribed(here.email)
    if normalize_email(synced) == contact.key:
        if here is None and state.synced_at is not None:
            return LearnRemoteDelete(synced)
        if _status_to_recreate(state, contact, snapshot.recreate_to_change_status):
            return _delete(snapshot, synced)
        if isinstance(here, RemoteContact):
            differs = bool(here.changes(contact))
            if not differs and state.synced_data != contact.filled_data():
                return Refresh(contact)
        else:
            differs = state.synced_data != contact.filled_data()
        if differs or snapshot.force:
            existing = _status_of_existing(state, contact)
            return Save(contact, existing, False, _cleared(contact, state.synced_data, here))
        rest = [a for a in stale if normalize_email(a) != contact.key]
        return _delete_first(snapshot, rest) or Done()
    if isinstance(here, RemoteContact):
        return _adopt(snapshot, here, contact)
    new_status = _status_of_new_address(snapshot, contact, synced, stale)
    if not isinstance(new_status, str):
        return new_status
    status: str = new_status
    if status == UNSUBSCRIBED and here is UNKNOWN and contact.key not in snapshot.touched:
        # An unsubscribed person moving to an address that may exist Confirmed (another user's,
        # an old one): a save would keep that status. Read it, to re-create it.
        return LiveRead((contact.email,))
    return Save(contact, status, True)


def _adopt(snapshot: Snapshot, here: RemoteContact, contact: Contact) -> Step:
    """Sendflare holds the address already: adopt it (an update, if anything differs)."""
    if here.changes(contact) or snapshot.force:
        return Save(contact, here.status, True, _cleared(contact, {}, here), exists=True)
    return Adopt(contact, here.email, here.status)


def _delete_first(snapshot: Snapshot, addresses: Iterable[str]) -> Step | None:
    """The step towards deleting the first of ``addresses`` this run has not dealt with."""
    for address in addresses:
        if normalize_email(address) not in snapshot.gone | {""}:
            return _delete(snapshot, address.strip())
    return None


def _delete(snapshot: Snapshot, address: str) -> Step:
    """Towards deleting ``address``: its status first (I1), then who may keep it (I3)."""
    key = normalize_email(address)
    state = snapshot.state
    if snapshot.user is not None and state.unsubscribed_at is None and key not in snapshot.touched:
        # Deleting a live user's address deletes the evidence of an unsubscribe: read it first,
        # so that I1 holds when the user gets an address again.
        found = snapshot.remote_at(key)
        if found is UNKNOWN:
            return LiveRead((address,))
        if isinstance(found, RemoteContact) and found.status == UNSUBSCRIBED:
            return LearnUnsubscribed(found.email)
    keepers = snapshot.keepers.get(key)
    if keepers is None:
        return FindKeepers(address)
    if keepers:
        return HandOver(address, keepers)
    sharers = snapshot.sharers.get(key, ())
    if sharers:
        # The delete takes Sendflare's evidence of an unsubscribe away from them too (I1).
        found = snapshot.remote_at(key)
        if found is UNKNOWN:
            return LiveRead((address,))
        if isinstance(found, RemoteContact) and found.status == UNSUBSCRIBED:
            return ShareUnsubscribe(found.email, sharers)
    return Delete(address)


# Statuses (I1).


def _status_of_new_address(
    snapshot: Snapshot, contact: Contact, synced: str, stale: list[str]
) -> str | Step:
    """The status of an address created now: the adapter's only for a new person."""
    state = snapshot.state
    if state.unsubscribed_at is not None or contact.status == UNSUBSCRIBED:
        return UNSUBSCRIBED
    others = sorted({normalize_email(a) for a in [synced, *stale]} - {contact.key, ""})
    if not others:
        return contact.status  # a new person: nothing of theirs is in Sendflare
    # An email change: the live status of the user's other addresses decides; an unknown one
    # is read (a failed read makes the change wait: it is never taken as Confirmed).
    missing = tuple(a for a in others if snapshot.remote_at(a) is UNKNOWN)
    if missing:
        return LiveRead(missing)
    for address in others:
        found = snapshot.remote_at(address)
        if isinstance(found, RemoteContact) and found.status == UNSUBSCRIBED:
            return LearnUnsubscribed(found.email)
    return contact.status


def _status_of_existing(state: StateFacts, contact: Contact) -> str:
    """The status sent with an update (the API keeps the contact's own; used if it is gone)."""
    if state.unsubscribed_at is not None or contact.status == UNSUBSCRIBED:
        return UNSUBSCRIBED
    return state.remote_status or contact.status


def _status_to_recreate(state: StateFacts, contact: Contact, recreate: bool) -> bool:
    """Whether to delete a Confirmed contact and create it Unsubscribed: always when Sendflare
    told us the person unsubscribed (I1), and with CONTACTS_RECREATE_TO_CHANGE_STATUS when the
    adapter says so. Never the other way."""
    if state.remote_status != CONFIRMED:
        return False
    if state.unsubscribed_at is not None:
        return True
    return recreate and contact.status == UNSUBSCRIBED


def _learns(state: StateFacts, email: str) -> bool:
    """Whether an Unsubscribed address of the user tells us anything we have not recorded."""
    if state.unsubscribed_at is None:
        return True
    synced = normalize_email(state.synced_email) == normalize_email(email)
    return synced and state.remote_status != UNSUBSCRIBED


def _cleared(contact: Contact, synced_data: dict[str, Any], here: Any) -> tuple[str, ...]:
    """The fields empty here that have a value in Sendflare (as last sent, or as listed)."""
    return tuple(
        name
        for name, value in contact.data.items()
        if value == ""
        and (synced_data.get(name) or (isinstance(here, RemoteContact) and here.value(name)))
    )
