"""The facts of one user, read once per step: what :func:`~.decide.decide` decides from.

A :class:`Snapshot` holds the user as the adapter sees it (:class:`LocalUser`), what we synced
(:class:`StateFacts`, from the user's :class:`~django_sendflare.models.ContactSyncState`), what
Sendflare is known to hold at the user's addresses (``remote``: a contact, ``None`` for known
absent, nothing for unknown), who else has or records those addresses, and what this run did
already. A :class:`SnapshotReader` reads it, under the user's lease: the state, the user's
outbox rows and the users with any of its addresses in three queries, then only what a step
asks for (a live read, the keepers of an address just before it is deleted).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, Model, Q
from django.db.models.functions import Lower, Trim

from ..models import ContactChange, ContactSyncState
from . import state as state_mod
from .adapter import Contact, ContactAdapter, normalize_email
from .remote import Facts, RemoteContact, RemoteView

#: What a snapshot answers for an address Sendflare is not known to hold or lack.
UNKNOWN: Any = object()


@dataclass(frozen=True)
class StateFacts:
    """What we synced for the user (its ContactSyncState)."""

    synced_email: str = ""
    remote_status: str = ""
    synced_data: dict[str, Any] = field(default_factory=dict)
    synced_at: datetime.datetime | None = None
    stale_emails: tuple[str, ...] = ()
    unsubscribed_at: datetime.datetime | None = None
    do_not_sync: bool = False
    rows_adopted_through: int = 0

    @classmethod
    def of(cls, row: ContactSyncState) -> StateFacts:
        return cls(
            **{name: getattr(row, name) for name in FIELDS if name != "stale_emails"},
            stale_emails=tuple(row.stale_emails),
        )

    def stale_with(self, address: str) -> list[str]:
        """The stale addresses with ``address`` last (moved there if it was in)."""
        key = normalize_email(address)
        return [*(a for a in self.stale_emails if normalize_email(a) != key), address.strip()]

    def with_values(self, values: dict[str, Any]) -> StateFacts:
        """These facts after writing ``values`` (columns no decision reads are left out)."""
        values = {name: value for name, value in values.items() if name in FIELDS}
        if "stale_emails" in values:
            values["stale_emails"] = tuple(values["stale_emails"])
        return dataclasses.replace(self, **values)


FIELDS = tuple(f.name for f in dataclasses.fields(StateFacts))


@dataclass(frozen=True)
class LocalUser:
    """The user as the adapter sees it; ``contact`` is None when the user is not synced.

    ``instance`` is the model instance (None in the full sync's plan, which has only contacts).
    """

    instance: Model | None
    email: str
    contact: Contact | None


@dataclass
class Outbox:
    """The user's outbox rows when its step began."""

    ids: list[Any] = field(default_factory=list)
    #: The last of them (None: there was none).
    top: int | None = None
    #: A row asks for a save whatever the state says (the admin's "Sync to Sendflare").
    forced: bool = False
    #: The addresses the rows name (the address after, and before, each change).
    addresses: list[str] = field(default_factory=list)
    #: The address of the latest row (the user's address when it was recorded).
    latest: str = ""


@dataclass
class Snapshot:
    """One user's facts now, and what this run did (the runner keeps it up to date)."""

    key: str
    user: LocalUser | None
    state: StateFacts
    #: The other synced users that have the contact's address (a conflict when any).
    others: tuple[str, ...] = ()
    #: Normalised address -> what Sendflare holds there (None: known absent).
    remote: Facts = field(default_factory=dict)
    #: Normalised address -> the other users it is kept for (read just before a delete).
    keepers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Normalised address -> the other users that have it but keep nothing (marked
    #: do-not-sync, inactive): an unsubscribe read there is theirs too (read with the keepers).
    sharers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    force: bool = False
    recreate_to_change_status: bool = False
    #: Addresses this run saved or deleted; created (saved as a new address); dealt with.
    touched: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)

    def saved(self, contact: Contact, *, new_address: bool) -> None:
        """This run saved the contact (a create of a new address, or an update)."""
        self.touched.add(contact.key)
        if new_address:
            self.created.add(contact.key)
        self.force = False  # a forced sync asks for one save of the current contact

    def dealt_with(self, address: str) -> None:
        """This run deleted the address, or left it to another user."""
        self.gone.add(normalize_email(address))
        self.touched.add(normalize_email(address))

    def remote_at(self, address: str) -> RemoteContact | None:
        """What Sendflare holds at ``address``: a contact, None (absent) or :data:`UNKNOWN`."""
        return self.remote.get(normalize_email(address), UNKNOWN)

    def addresses(self) -> list[str]:
        """The normalised addresses the decision may ask about."""
        found = [self.state.synced_email, *self.state.stale_emails]
        if self.user is not None:
            found.append(self.user.email)
        return [key for key in dict.fromkeys(map(normalize_email, found)) if key]


class SnapshotReader:
    """Reads the facts of the user ``key`` (under its lease); caches who has which address."""

    def __init__(self, key: str, *, adapter: ContactAdapter, view: RemoteView, using: str) -> None:
        self.key = key
        self.adapter = adapter
        self.view = view
        self.using = using
        #: Normalised address -> the other synced users that have it (read once per run).
        self.others: dict[str, list[str]] = {}
        #: Normalised address -> every other user that has it, synced or not.
        self.having: dict[str, list[str]] = {}

    def state(self) -> StateFacts:
        row, _ = ContactSyncState.objects.using(self.using).get_or_create(user_key=self.key)
        return StateFacts.of(row)

    def outbox(self) -> Outbox:
        rows = ContactChange.objects.using(self.using).filter(user_key=self.key).order_by("id")
        outbox = Outbox()
        for pk, kind, email, previous in rows.values_list("id", "kind", "email", "previous_email"):
            outbox.ids.append(pk)
            outbox.forced = outbox.forced or kind == ContactChange.Kind.SYNC
            outbox.addresses += [a.strip() for a in (previous, email) if normalize_email(a)]
            outbox.latest = email
        outbox.top = outbox.ids[-1] if outbox.ids else None
        return outbox

    def user(self, state: StateFacts, guesses: Iterable[str] = ()) -> LocalUser | None:
        """The user now; with ``guesses``, the users with those addresses in the same query."""
        queryset = self.adapter.get_queryset()
        keys = sorted(set(filter(None, map(normalize_email, guesses))) - set(self.others))
        email_field = queryset.model.get_email_field_name()
        try:
            if keys:
                queryset = queryset.annotate(_sendflare_email=Lower(Trim(F(email_field))))
                found = list(queryset.filter(Q(pk=self.key) | Q(_sendflare_email__in=keys)))
            else:
                found = list(queryset.filter(pk=self.key)[:1])
        except (ValueError, TypeError):
            return None  # a key that is not a valid pk of this model (the model was swapped)
        user = next((u for u in found if state_mod.user_key(u) == self.key), None)
        if keys:
            neighbours = [u for u in found if state_mod.user_key(u) != self.key]
            synced = set(state_mod.synced_keys(self.adapter, neighbours))
            for key in keys:
                having = [state_mod.user_key(u) for u in neighbours if u._sendflare_email == key]
                self.having[key] = having
                self.others[key] = [k for k in having if k in synced]
        if user is None:
            return None
        email = self.adapter.get_email(user)
        contact = None
        if not state.do_not_sync and self.adapter.should_sync(user):
            contact = self.adapter.to_contact(user)  # ValueError: an invalid mapping (parked)
        return LocalUser(user, email, contact)

    def others_with(self, address: str) -> list[str]:
        """The other synced users that have this address (read once per run: a full scan)."""
        key = normalize_email(address)
        if key not in self.others:
            users = state_mod.users_at_address(self.adapter, key, exclude_key=self.key)
            self.having[key] = [state_mod.user_key(u) for u in users]
            self.others[key] = state_mod.synced_keys(self.adapter, users)
        return self.others[key]

    def sharers_of(self, address: str, keepers: tuple[str, ...]) -> tuple[str, ...]:
        """The other users that have this address but are not among its ``keepers``."""
        key = normalize_email(address)
        if key not in self.having:  # the full sync vouched for no *synced* other user only
            users = state_mod.users_at_address(self.adapter, key, exclude_key=self.key)
            self.having[key] = [state_mod.user_key(u) for u in users]
        return tuple(k for k in self.having[key] if k not in keepers)

    def keepers_of(self, address: str) -> tuple[str, ...]:
        """The other users an address is kept for, instead of being deleted.

        Those that are synced and have it now (a conflict, or the next user of an address),
        and those whose records name it (their sync state or their outbox rows): each of them
        deletes it, with a live read first, once it is not their address (I3), and reads its
        status before an email change (I1). Handing the address over, rather than deleting
        it, keeps Sendflare's evidence of an unsubscribe for the person who still has it.
        """
        having = self.others_with(address)
        recording = state_mod.users_recording_address(address, exclude_key=self.key)
        return (*having, *(key for key in recording if key not in having))

    def forget_others(self, address: str) -> None:
        """Users may have moved: read who has ``address`` again next time."""
        self.others.pop(normalize_email(address), None)
        self.having.pop(normalize_email(address), None)

    def remote(self, addresses: Iterable[str]) -> Facts:
        """What the view knows of these addresses without reading anything."""
        return self.view.known(addresses)
