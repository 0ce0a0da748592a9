"""The full sync's plan: what :func:`~.decide.decide` would do for each user, given the listing.

:func:`plan` is pure (no database, no API; only a scratch file of its own). For each user it
builds a snapshot from the listing (and, in a real run, the user's sync state) and lists the
steps ``decide()`` would take (:func:`~.effects.foresee`): a first save of an address Sendflare
lacks is a create, another save an update, a delete of the contact's own address then a save a
re-create; two users of the list with one address are a conflict. The plan is what the dry run
prints and what picks the users whose steps are taken; each step then decides again, from the
user's facts read at that moment under its lease.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from . import decide as d
from .adapter import UNSUBSCRIBED, Contact
from .effects import foresee
from .remote import RemoteContact
from .remote_index import RemoteIndex
from .snapshot import LocalUser, Snapshot, StateFacts

#: ``--prune`` refuses to delete more than this share of the remote list without ``--force``.
PRUNE_MAX_FRACTION = 0.10

#: Users compared per round trip to the remote index (and to the sync states).
PLAN_CHUNK = 900

#: Reads the sync states of some users (a real run); the pure plan has none (never synced).
StatesOf = Callable[[list[str]], dict[str, StateFacts]]


class UserItem:
    """An item of the plan that concerns one user: the user's steps are taken."""

    action: ClassVar[str]
    user_key: str

    @property
    def email(self) -> str:
        raise NotImplementedError

    @property
    def unique_address(self) -> str:
        """The address the plan found to be this user's alone ("" when it did not)."""
        return ""

    def describe(self) -> str:
        return f"{self.action:8} {self.email} (user {self.user_key})"


@dataclass(frozen=True)
class _ContactItem(UserItem):
    """An item about the contact the user should have: its address is the user's alone."""

    user_key: str
    contact: Contact

    @property
    def unique_address(self) -> str:
        return self.contact.key

    @property
    def email(self) -> str:
        return self.contact.email


@dataclass(frozen=True)
class Create(_ContactItem):
    """A user without a contact: create it."""

    action: ClassVar[str] = "create"


@dataclass(frozen=True)
class _ListedContactItem(_ContactItem):
    """An item about a contact the listing holds for the user, as listed (``remote``)."""

    remote: RemoteContact

    @property
    def email(self) -> str:
        return self.remote.email


@dataclass(frozen=True)
class Update(_ListedContactItem):
    """A contact whose data differs: save the user's data (the status cannot change)."""

    action: ClassVar[str] = "update"
    #: (field, remote value, local value) of each field that differs.
    changes: tuple[tuple[str, str, str], ...]

    def describe(self) -> str:
        changes = ", ".join(f"{name} {old!r} -> {new!r}" for name, old, new in self.changes)
        return f"{super().describe()}: {changes}"


@dataclass(frozen=True)
class Recreate(_ListedContactItem):
    """A Confirmed contact of a user the adapter says is Unsubscribed, with
    CONTACTS_RECREATE_TO_CHANGE_STATUS: delete it, create it Unsubscribed. Never the other way
    (I1: nothing of ours re-subscribes anyone)."""

    action: ClassVar[str] = "recreate"

    def describe(self) -> str:
        return f"{super().describe()}: status {self.remote.status} -> {self.contact.status}"


@dataclass(frozen=True)
class StatusDifference(UserItem):
    """A contact whose status in Sendflare is not the one the adapter gives the user.

    When Sendflare says Unsubscribed, the user's steps are taken (no call: the unsubscribe is
    recorded, and reported once by ``contact_unsubscribed``).
    """

    action: ClassVar[str] = "status"
    user_key: str
    remote_email: str
    remote_status: str
    local_status: str

    @property
    def email(self) -> str:
        return self.remote_email

    def describe(self) -> str:
        return (
            f"{super().describe()}: {self.remote_status} in Sendflare, {self.local_status} "
            "here (the API sets it on create only)"
        )


@dataclass(frozen=True)
class _AddressItem(UserItem):
    """An item about one address of the user, which is all the plan needs to say."""

    user_key: str
    address: str

    @property
    def email(self) -> str:
        return self.address


@dataclass(frozen=True)
class Cleanup(_AddressItem):
    """A user with addresses still to delete (an email change or a lost answer left them)."""

    action: ClassVar[str] = "cleanup"


@dataclass(frozen=True)
class Conflicted(_AddressItem):
    """A user whose address another synced user has: not synced, its old addresses deleted."""

    action: ClassVar[str] = "conflict"


@dataclass(frozen=True)
class DeleteExtra:
    """A remote contact that no synced user has (``--prune``)."""

    action: ClassVar[str] = "delete"
    remote: RemoteContact

    @property
    def email(self) -> str:
        return self.remote.email

    def describe(self) -> str:
        return f"delete   {self.email} (no user)"


@dataclass
class SyncPlan:
    """What a full sync would do. Built by :func:`plan`; carried out by
    :func:`~.full_sync.apply`."""

    creates: list[Create] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    recreates: list[Recreate] = field(default_factory=list)
    #: Remote contacts that no synced user has (deleted only with --prune).
    extras: list[RemoteContact] = field(default_factory=list)
    #: Normalised address -> the users that share it; none of them is synced.
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    status_differences: list[StatusDifference] = field(default_factory=list)
    unchanged: int = 0
    local_count: int = 0
    remote_count: int = 0

    @property
    def calls(self) -> int:
        """API calls needed (without pruning)."""
        return len(self.creates) + len(self.updates) + 2 * len(self.recreates)

    def user_items(self) -> list[UserItem]:
        """The items that take a user's steps: what differs, and unsubscribes to record."""
        learn = [x for x in self.status_differences if x.remote_status == UNSUBSCRIBED]
        conflicted = [
            Conflicted(key, address) for address, keys in self.conflicts.items() for key in keys
        ]
        items: dict[str, UserItem] = {}
        for item in [*self.creates, *self.updates, *self.recreates, *learn, *conflicted]:
            items.setdefault(item.user_key, item)  # one run of steps per user
        return list(items.values())


def plan(
    local: Iterable[tuple[str, Contact]],
    remote: Iterable[RemoteContact] | RemoteIndex,
    *,
    recreate_to_change_status: bool = False,
    states: StatesOf | None = None,
) -> SyncPlan:
    """Compare the users' contacts (``(user_key, contact)`` pairs) with the remote contacts.

    Addresses are compared trimmed and case-insensitively. Only the data fields present in each
    local contact (the adapter's fields) are compared. Two users with one address are a
    conflict: neither gets a call. ``remote`` is a :class:`RemoteIndex` (as
    :func:`~.listing.read_listing` builds it) or any iterable of remote contacts. An address the
    listing lacks is foreseen absent (a create; the step itself asks again when a page of the
    list failed). The users are compared a
    chunk at a time against the index, which lives in a temporary file: memory grows with the
    differences found, not with the users or contacts.
    """
    planner = _Planner(recreate_to_change_status, states)
    if isinstance(remote, RemoteIndex):
        return planner.run(local, remote)
    with RemoteIndex() as index:
        index.add(remote)
        return planner.run(local, index)


class _Planner:
    def __init__(self, recreate: bool, states: StatesOf | None) -> None:
        self.recreate = recreate
        self.states = states
        self.creates: dict[str, Create] = {}
        self.updates: dict[str, Update] = {}
        self.recreates: dict[str, Recreate] = {}
        self.differences: dict[str, StatusDifference] = {}

    def run(self, local: Iterable[tuple[str, Contact]], index: RemoteIndex) -> SyncPlan:
        result = self.result = SyncPlan(remote_count=index.count)
        users = iter(local)
        while chunk := list(itertools.islice(users, PLAN_CHUNK)):
            states = self.states([key for key, _ in chunk]) if self.states else {}
            addresses = {c.key for _, c in chunk}
            for state in states.values():
                addresses.update(filter(None, [state.synced_email, *state.stale_emails]))
            facts = index.remote_for(addresses)
            # key -> (user_key, kind): kind says where the first user of an address was put.
            seen = index.seen_for({c.key for _, c in chunk})
            new_seen: dict[str, tuple[str, str]] = {}
            for user_key, contact in chunk:
                result.local_count += 1
                key = contact.key
                if key in result.conflicts:
                    result.conflicts[key].append(user_key)
                    continue
                first = seen.get(key) or new_seen.get(key)
                snapshot = Snapshot(
                    user_key,
                    LocalUser(None, contact.email, contact),
                    states.get(user_key, StateFacts()),
                    others=(first[0],) if first else (),
                    recreate_to_change_status=self.recreate,
                )
                for address in [key, *snapshot.addresses()]:
                    snapshot.remote[address] = facts.get(address)
                steps = foresee(snapshot)
                if first is not None and isinstance(steps[-1], d.Conflict):
                    self._conflict(key, first, user_key)
                    continue
                kind = self._classify(user_key, contact, facts.get(key), steps)
                new_seen[key] = (user_key, kind)
            index.mark_seen((key, user_key, kind) for key, (user_key, kind) in new_seen.items())
        result.creates = list(self.creates.values())
        result.updates = list(self.updates.values())
        result.recreates = list(self.recreates.values())
        result.status_differences = list(self.differences.values())
        # Conflicting addresses were seen too, so they are not extras.
        result.extras = list(index.unseen_remote())
        return result

    def _conflict(self, key: str, first: tuple[str, str], user_key: str) -> None:
        """A second user of the address: the first one is in conflict too, from its side."""
        self.result.conflicts[key] = [first[0], user_key]
        for items in (self.creates, self.updates, self.recreates, self.differences):
            items.pop(key, None)
        if first[1] == "unchanged":
            self.result.unchanged -= 1

    def _classify(
        self, user_key: str, contact: Contact, listed: RemoteContact | None, steps: list[d.Step]
    ) -> str:
        key = contact.key
        saves = [i for i, step in enumerate(steps) if isinstance(step, d.Save)]
        deletes_own = [
            i
            for i, step in enumerate(steps)
            if isinstance(step, d.Delete) and step.address.strip().lower() == key
        ]
        if saves and deletes_own and saves[-1] > deletes_own[0] and listed is not None:
            self.recreates[key] = Recreate(user_key, contact, listed)
            return "recreate"
        if listed is not None and listed.status and listed.status != contact.status:
            self.differences[key] = StatusDifference(
                user_key, listed.email, listed.status, contact.status
            )
        if not saves:
            self.result.unchanged += 1
            return "unchanged"
        if listed is None:
            self.creates[key] = Create(user_key, contact)
            return "create"
        self.updates[key] = Update(user_key, contact, listed, listed.changes(contact))
        return "update"


def prune_refusal(
    sync_plan: SyncPlan, *, complete: bool, force: bool, max_fraction: float = PRUNE_MAX_FRACTION
) -> str | None:
    """Why the extras must not be deleted, or None when pruning may go ahead."""
    if not complete:
        # The pages not read may hold extras too: pruning part of them would mislead.
        return "some pages of the contact list could not be read, so nothing is pruned"
    if not sync_plan.extras:
        return None
    share = len(sync_plan.extras) / max(sync_plan.remote_count, 1)
    if share > max_fraction and not force:
        return (
            f"pruning would delete {len(sync_plan.extras)} of {sync_plan.remote_count} contacts "
            f"({share:.0%}, more than {max_fraction:.0%}); add --force if that is intended"
        )
    return None
