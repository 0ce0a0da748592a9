"""What each step records in the user's sync state: pure functions of the facts and the step.

The steps (:mod:`.steps`) write these values; :func:`foresee` applies them to a snapshot in
memory to list a user's steps without taking them (the full sync's plan and its dry run). One
definition of what a step means for the state, so that what the plan shows is what steps do.
"""

from __future__ import annotations

import datetime
from typing import Any

from . import decide as d
from .adapter import UNSUBSCRIBED, Contact, normalize_email
from .snapshot import LocalUser, Outbox, Snapshot, StateFacts


def adopted(state: StateFacts, user: LocalUser | None, outbox: Outbox) -> dict[str, Any]:
    """The addresses the outbox rows name, other than the current one, noted as stale.

    An address the user had only between two deliveries was never created by us, but another
    user may have kept its contact for this one (a hand-over), which the rows are the only
    record of (I3). From then on the state speaks for the rows (``rows_adopted_through``): what
    the run forgets, a row waiting to be resolved must not claim for this user.
    """
    current = normalize_email(user.email) if user is not None else ""
    addresses = list(state.stale_emails)
    known = {current, normalize_email(state.synced_email), ""}
    for address in outbox.addresses:
        key = normalize_email(address)
        if key not in known and key not in map(normalize_email, addresses):
            addresses.append(address.strip())
    values: dict[str, Any] = {}
    if addresses != list(state.stale_emails):
        values["stale_emails"] = addresses
    if outbox.top is not None and outbox.top > state.rows_adopted_through:
        values["rows_adopted_through"] = outbox.top
    return values


def synced(
    state: StateFacts, contact: Contact, email: str, status: str, now: datetime.datetime
) -> dict[str, Any]:
    """``email`` is now the user's contact; the address synced before is to delete."""
    key, previous = normalize_email(email), state.synced_email
    stale = [a for a in state.stale_emails if normalize_email(a) not in (key, "")]
    if normalize_email(previous) not in ("", key) and normalize_email(previous) not in map(
        normalize_email, stale
    ):
        stale.append(previous.strip())
    return {
        "synced_email": email,
        "synced_data": contact.filled_data(),
        "synced_at": now,
        "remote_status": status,
        "stale_emails": stale,
        "unsubscribed_at": state.unsubscribed_at or (now if status == UNSUBSCRIBED else None),
    }


def sent(contact: Contact, now: datetime.datetime) -> dict[str, Any]:
    """The synced contact was updated with these data (or Sendflare holds them already)."""
    return {"synced_data": contact.filled_data(), "synced_at": now}


def forgotten(state: StateFacts, address: str) -> dict[str, Any]:
    """The address is deleted, or left to another user: not this user's any more."""
    key = normalize_email(address)
    values: dict[str, Any] = {
        "stale_emails": [a for a in state.stale_emails if normalize_email(a) != key]
    }
    if normalize_email(state.synced_email) == key:
        values.update(synced_email="", synced_data={}, remote_status="")
    return values


def unsubscribed(state: StateFacts, email: str, now: datetime.datetime) -> dict[str, Any]:
    """Sendflare holds ``email`` of this user as Unsubscribed: sticky (I1)."""
    values: dict[str, Any] = {}
    if state.unsubscribed_at is None:
        values["unsubscribed_at"] = now
    if normalize_email(state.synced_email) == normalize_email(email):
        values["remote_status"] = UNSUBSCRIBED
    return values


def deleted_remotely(now: datetime.datetime) -> dict[str, Any]:
    """A complete listing lacks the synced contact: it was deleted at Sendflare."""
    return {"synced_email": "", "synced_data": {}, "remote_status": "", "remote_deleted_at": now}


#: The time a foreseen step is recorded at (the plan reads no clock; only "set or not" matters).
_FORESEEN = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

#: More decisions than any user needs.
MAX_FORESEEN = 60


def foresee(snapshot: Snapshot) -> list[d.Step]:
    """The steps :func:`~.decide.decide` would take from ``snapshot``, without taking them.

    Each step's effect is applied to the snapshot in memory (which is consumed). The plan looks
    no further than a fact it lacks: a live read ends the list (the step will read), and an
    address about to be deleted is taken to be nobody else's (the step will look). The list
    ends with :class:`~.decide.Done`, :class:`~.decide.Conflict`, :class:`~.decide.ForgetUser`
    or :class:`~.decide.LiveRead`.
    """
    steps: list[d.Step] = []
    for _ in range(MAX_FORESEEN):
        step = d.decide(snapshot)
        if isinstance(step, d.FindKeepers):
            snapshot.keepers[normalize_email(step.address)] = ()
            snapshot.sharers[normalize_email(step.address)] = ()
            continue
        steps.append(step)
        if isinstance(step, (d.Done, d.Conflict, d.ForgetUser, d.LiveRead)):
            return steps
        values = _effect(snapshot, step)
        if isinstance(step, d.Save):
            snapshot.saved(step.contact, new_address=step.new_address)
        elif isinstance(step, (d.Delete, d.HandOver)):
            snapshot.dealt_with(step.address)
        snapshot.state = snapshot.state.with_values(values)
    return steps


def _effect(snapshot: Snapshot, step: d.Step) -> dict[str, Any]:
    state = snapshot.state
    if isinstance(step, d.Save):
        if step.new_address:
            return synced(state, step.contact, step.contact.email, step.status, _FORESEEN)
        return sent(step.contact, _FORESEEN)
    if isinstance(step, (d.Delete, d.HandOver)):
        return forgotten(state, step.address)
    if isinstance(step, d.Adopt):
        return synced(state, step.contact, step.email, step.status, _FORESEEN)
    if isinstance(step, d.Refresh):
        return sent(step.contact, _FORESEEN)
    if isinstance(step, d.NoteStale):
        return {"stale_emails": state.stale_with(step.address)}
    if isinstance(step, d.LearnUnsubscribed):
        return unsubscribed(state, step.email, _FORESEEN)
    if isinstance(step, d.LearnRemoteDelete):
        return deleted_remotely(_FORESEEN)
    return {}
