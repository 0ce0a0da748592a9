"""What each step records in the user's sync state: pure functions of the facts and the step.

The steps (:mod:`.steps`) write these values; the full sync's plan (:mod:`.plan`) applies them
to a snapshot in memory to foresee a user's steps without making them. One definition of what a
step means for the state, so that what the plan shows is what the steps do.
"""

from __future__ import annotations

import datetime
from typing import Any

from .adapter import UNSUBSCRIBED, Contact, normalize_email
from .snapshot import StateFacts


def stale_with(state: StateFacts, address: str) -> list[str]:
    """The stale addresses of ``state`` with ``address`` last (moved there if it was in)."""
    key = normalize_email(address)
    return [*(a for a in state.stale_emails if normalize_email(a) != key), address.strip()]


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
