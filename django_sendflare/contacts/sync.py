"""The full sync: read every remote contact, diff them with the users, call only for differences.

Three steps, so that the diff can be tested without a server:

* :func:`fetch_remote` reads the contact list (the client's ``iter_contacts``; I/O);
* :func:`plan` compares the users' contacts with the remote ones. It is pure: creates, updates,
  re-creates, remote contacts without a user (``extras``), conflicts and status differences;
* :func:`apply` carries out each item: an item of a user hands that user to a
  :class:`~.reconcile.Reconciliation`, which takes the user's lease and re-reads the user and
  its state before each call (a user deleted meanwhile is not re-created), with the listing as
  its view of Sendflare (a failed page proves nothing absent).

:func:`run_sync` strings them together for ``manage.py sync_contacts``. Users are streamed from
the database in chunks and compared against the remote list kept in a temporary file
(:class:`RemoteIndex`): memory grows with the differences, not with the users or the contacts.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from django.db.models import Model

from ..client import MAX_PAGE_SIZE, SendflareClient
from ..exceptions import SendflareAPIError
from ..models import ContactSyncState
from ..queue import Lease
from ..redaction import error_text
from . import state as state_mod
from .adapter import UNSUBSCRIBED, Contact, ContactAdapter
from .context import ServiceContext
from .outbox import outbox_queue, user_lease
from .remote import IndexView, ListingScan, RemoteContact, comparable
from .remote_index import RemoteIndex
from .results import Outcome
from .steps import UserRun

__all__ = ["RemoteContact", "SyncPlan", "comparable", "plan", "prune_refusal", "run_sync"]

logger = logging.getLogger(__name__)

#: ``--prune`` refuses to delete more than this share of the remote list without ``--force``.
PRUNE_MAX_FRACTION = 0.10


@dataclass
class ItemResult:
    """The result of one item of a plan."""

    action: str  # create, update, recreate, status, cleanup, delete
    email: str
    user_key: str = ""
    ok: bool = True
    error: str = ""
    skipped: bool = False  # not attempted (an account-level error stopped the run)
    busy: bool = False  # another worker held the user: it brings the contact up to date
    calls: int = 0


class UserItem:
    """An item of the plan that concerns one user: the user is reconciled."""

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

    def apply(self, run: SyncRun) -> ItemResult:
        return run.reconcile(self)


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

    When Sendflare says Unsubscribed, the user is reconciled (no call: the unsubscribe is
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

    def apply(self, run: SyncRun) -> ItemResult:
        return run.delete_extra(self)


@dataclass
class SyncPlan:
    """What a full sync would do. Built by :func:`plan`; carried out by :func:`apply`."""

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
        """The items that reconcile a user: what differs, and unsubscribes to record."""
        learn = [d for d in self.status_differences if d.remote_status == UNSUBSCRIBED]
        conflicted = [
            Conflicted(key, address) for address, keys in self.conflicts.items() for key in keys
        ]
        items: dict[str, UserItem] = {}
        for item in [*self.creates, *self.updates, *self.recreates, *learn, *conflicted]:
            items.setdefault(item.user_key, item)  # one reconciliation per user
        return list(items.values())


#: Users compared per round trip to the remote index.
PLAN_CHUNK = 1000


def plan(
    local: Iterable[tuple[str, Contact]],
    remote: Iterable[RemoteContact] | RemoteIndex,
    *,
    recreate_to_change_status: bool = False,
) -> SyncPlan:
    """Compare the users' contacts (``(user_key, contact)`` pairs) with the remote contacts.

    Pure: no database, no API (only a scratch file of its own). Addresses are compared trimmed
    and case-insensitively. Only the data fields present in each local contact (the adapter's
    fields) are compared. Two users with one address are a conflict: neither gets a call.

    ``remote`` is a :class:`RemoteIndex` (as :func:`fetch_remote` builds it) or any iterable of
    remote contacts. The users are compared a chunk at a time against the index, which lives in
    a temporary file: memory grows with the differences found, not with the users or contacts.
    """
    if isinstance(remote, RemoteIndex):
        return _plan(local, remote, recreate_to_change_status)
    with RemoteIndex() as index:
        index.add(remote)
        return _plan(local, index, recreate_to_change_status)


def _plan(
    local: Iterable[tuple[str, Contact]], index: RemoteIndex, recreate_to_change_status: bool
) -> SyncPlan:
    result = SyncPlan(remote_count=index.count)
    creates: dict[str, Create] = {}
    updates: dict[str, Update] = {}
    recreates: dict[str, Recreate] = {}
    differences: dict[str, StatusDifference] = {}
    users = iter(local)
    while chunk := list(itertools.islice(users, PLAN_CHUNK)):
        keys = {contact.key for _, contact in chunk}
        remote_index = index.remote_for(keys)
        # key -> (user_key, kind): kind says where the first user of an address was put.
        seen = index.seen_for(keys)
        new_seen: dict[str, tuple[str, str]] = {}
        for user_key, contact in chunk:
            result.local_count += 1
            key = contact.key
            if key in result.conflicts:
                result.conflicts[key].append(user_key)
                continue
            if key in seen or key in new_seen:
                first_user, kind = seen[key] if key in seen else new_seen[key]
                result.conflicts[key] = [first_user, user_key]
                creates.pop(key, None)
                updates.pop(key, None)
                recreates.pop(key, None)
                differences.pop(key, None)
                if kind == "unchanged":
                    result.unchanged -= 1
                continue
            existing = remote_index.get(key)
            if existing is None:
                creates[key] = Create(user_key, contact)
                new_seen[key] = (user_key, "create")
                continue
            status_differs = bool(existing.status) and existing.status != contact.status
            if status_differs and recreate_to_change_status and contact.status == UNSUBSCRIBED:
                recreates[key] = Recreate(user_key, contact, existing)
                new_seen[key] = (user_key, "recreate")
                continue
            if status_differs:
                differences[key] = StatusDifference(
                    user_key, existing.email, existing.status, contact.status
                )
            changes = existing.changes(contact)
            if changes:
                updates[key] = Update(user_key, contact, existing, changes)
                new_seen[key] = (user_key, "update")
            else:
                result.unchanged += 1
                new_seen[key] = (user_key, "unchanged")
        index.mark_seen((key, user_key, kind) for key, (user_key, kind) in new_seen.items())

    result.creates = list(creates.values())
    result.updates = list(updates.values())
    result.recreates = list(recreates.values())
    result.status_differences = list(differences.values())
    # Conflicting addresses were seen too, so they are not extras.
    result.extras = list(index.unseen_remote())
    return result


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


# Reading both sides.


class SyncAborted(Exception):
    """The full sync cannot go on (the contact list cannot be read at all)."""


@dataclass
class RemoteListing:
    """The contacts read from the API (in a :class:`RemoteIndex`), and whether all were read."""

    index: RemoteIndex = field(default_factory=RemoteIndex)
    page_size: int = MAX_PAGE_SIZE
    #: Set when a page failed: the contacts after it are unknown (not absent).
    error: str = ""

    @property
    def complete(self) -> bool:
        return not self.error

    @property
    def pages_read(self) -> int:
        return max(1, math.ceil(self.index.count / self.page_size)) if self.index.count else 0

    @property
    def errors(self) -> list[str]:
        return [self.error] if self.error else []


def fetch_remote(
    client: SendflareClient,
    *,
    app_id: str,
    fields: Iterable[str],
    page_size: int = MAX_PAGE_SIZE,
    on_page: Callable[[int, int | None], None] | None = None,
) -> RemoteListing:
    """Read the contact list (the client retries each page on transient errors).

    A page that still fails ends the read: what was read is kept, and the listing is marked
    incomplete, so that nothing missing from it is pruned or taken as absent (I4). Raises
    :class:`SyncAborted` when nothing could be read, or on an account-level error.
    """
    listing = RemoteListing(page_size=page_size)
    fields = tuple(fields)
    try:
        batch: list[RemoteContact] = []
        for entry in client.iter_contacts(app_id=app_id, page_size=page_size):
            batch.append(RemoteContact.from_api(entry, fields))
            if len(batch) == page_size:
                listing.index.add(batch)
                batch = []
                if on_page is not None:
                    on_page(listing.index.count, None)
        listing.index.add(batch)
    except SendflareAPIError as error:
        listing.index.add(batch)
        _listing_failed(listing, str(error), error.account_level)
    except Exception as error:
        # The limiter's store or a library failed: reported, never raised raw.
        listing.index.add(batch)
        logger.warning("Sendflare: reading the contact list failed: %r", error)
        _listing_failed(listing, f"the list could not be read ({type(error).__name__})", False)
    return listing


def _listing_failed(listing: RemoteListing, error: str, account_level: bool) -> None:
    logger.warning("Sendflare: the contact list could not be read to the end: %s", error)
    if account_level or listing.index.count == 0:
        listing.index.close()
        raise SyncAborted(f"The contact list cannot be read: {error}")
    listing.error = f"after {listing.index.count} contact(s): {error}"


@dataclass
class LocalProblems:
    """Users the adapter could not map (they are skipped and reported)."""

    invalid: list[tuple[str, str]] = field(default_factory=list)


def iter_local(
    adapter: ContactAdapter,
    *,
    since: datetime.datetime | None = None,
    chunk_size: int = 2000,
    problems: LocalProblems | None = None,
    exclude: set[str] | None = None,
) -> Iterator[tuple[str, Contact]]:
    """Stream ``(user_key, contact)`` for every synced user, ``chunk_size`` rows at a time.

    Skips users for whom ``should_sync()`` is False and users marked do-not-sync.
    """
    queryset = adapter.get_queryset()
    if since is not None:
        queryset = adapter.changed_since(queryset, since)
    marked = state_mod.do_not_sync_keys() if exclude is None else exclude
    user: Model
    for user in queryset.order_by("pk").iterator(chunk_size=chunk_size):
        key = state_mod.user_key(user)
        if key in marked or not adapter.should_sync(user):
            continue
        try:
            contact = adapter.to_contact(user)
        except ValueError as error:
            if problems is not None:
                problems.invalid.append((key, str(error)))
            logger.warning("Sendflare: user %s cannot be mapped to a contact: %s", key, error)
            continue
        yield key, contact


def cleanup_items(chunk_size: int = 2000) -> Iterator[Cleanup]:
    """Users whose state holds addresses still to delete (I3: deleted without ``--prune``)."""
    states = ContactSyncState.objects.using(state_mod.db_alias()).values_list(
        "user_key", "stale_emails"
    )
    for key, stale in states.iterator(chunk_size=chunk_size):
        if stale:
            yield Cleanup(key, stale[0])


# Carrying it out.


@dataclass
class ApplyReport:
    """What :func:`apply` did, item by item."""

    results: list[ItemResult] = field(default_factory=list)
    calls: int = 0
    account_error: str = ""

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.results if not r.ok]

    def count(self, action: str, *, ok: bool = True) -> int:
        return sum(
            1
            for r in self.results
            if r.action == action and r.ok is ok and not r.skipped and not r.busy
        )


class SyncRun:
    """What the items of one full sync share: the service context, the lease, the view."""

    def __init__(self, context: ServiceContext, *, view: IndexView, lease: Lease) -> None:
        self.context = context
        self.client = context.client
        self.adapter = context.adapter
        self.app_id = context.app_id
        self.view = view
        self.lease = lease
        self.queue = outbox_queue(using=context.using)
        self.report = ApplyReport()

    def reconcile(self, item: UserItem) -> ItemResult:
        """Bring the item's user up to date, from the user's state now (not the plan's)."""
        result = UserRun(
            item.user_key,
            context=self.context,
            lease=self.lease,
            view=self.view,
            unique_address=item.unique_address,
        ).run()
        item_result = ItemResult(
            item.action, result.email or item.email, item.user_key, calls=result.calls
        )
        if result.outcome is Outcome.BUSY:
            item_result.busy = True
        elif result.ok or result.conflict:
            # Up to date from the user's current state: the outbox rows read are resolved.
            self.queue.delete(result.row_ids)
        else:
            item_result.ok, item_result.error = False, result.error
            if result.account_level:
                self.report.account_error = result.error
        return item_result

    def delete_extra(self, item: DeleteExtra) -> ItemResult:
        """Delete a contact no synced user has, unless a user has taken the address since."""
        result = ItemResult(item.action, item.email)
        if state_mod.users_with_address(self.adapter, item.remote.key):
            result.skipped = True
            return result
        result.calls = 1
        try:
            self.client.delete_contact(email=item.email, app_id=self.app_id)
        except SendflareAPIError as error:
            result.ok, result.error = False, str(error)
            if error.account_level:
                self.report.account_error = str(error)
        except Exception as error:
            logger.warning(
                "Sendflare: deleting %s failed: %s: %s",
                item.email,
                type(error).__name__,
                error_text(error),
            )
            result.ok, result.error = False, f"the call failed ({type(error).__name__})"
        return result


def apply(
    items: Iterable[UserItem | DeleteExtra],
    run: SyncRun,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ApplyReport:
    """Carry out ``items`` (each knows how); return a result per item.

    A failure is reported and the run goes on, except after an account-level error (bad token,
    expired subscription), which stops it: every later call would fail the same way.
    """
    items = list(items)
    report = run.report
    for done, item in enumerate(items, start=1):
        if report.account_error:
            report.results.append(
                ItemResult(
                    item.action,
                    item.email,
                    getattr(item, "user_key", ""),
                    ok=False,
                    skipped=True,
                    error=report.account_error,
                )
            )
            continue
        result = item.apply(run)
        report.calls += result.calls
        report.results.append(result)
        if not result.ok:
            logger.warning(
                "Sendflare: %s of contact %s failed: %s", item.action, item.email, result.error
            )
        if progress is not None:
            progress(done, len(items))
    return report


# The whole run.


@dataclass
class SyncReport:
    """What :func:`run_sync` found and did."""

    plan: SyncPlan
    listing: RemoteListing
    applied: ApplyReport | None = None
    prune_requested: bool = False
    prune_refused: str | None = None
    invalid: list[tuple[str, str]] = field(default_factory=list)
    dry_run: bool = False
    #: Contacts read again for statuses a failed page hid (email changes only).
    contacts_reread: int = 0

    @property
    def ok(self) -> bool:
        """False when anything failed or was refused (the command exits non-zero)."""
        if not self.listing.complete or self.invalid or self.prune_refused:
            return False
        return self.applied is None or not (self.applied.failed or self.applied.account_error)


def run_sync(
    *,
    client: SendflareClient | None = None,
    adapter: ContactAdapter | None = None,
    dry_run: bool = False,
    prune: bool = False,
    force: bool = False,
    since: datetime.datetime | None = None,
    page_size: int = MAX_PAGE_SIZE,
    chunk_size: int = 2000,
    on_remote_page: Callable[[int, int | None], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """Read, diff and (unless ``dry_run``) apply. Raises :class:`SyncAborted` when the list
    cannot be read, ``ValueError`` for ``prune`` with ``since`` (a partial user list would make
    every other contact look like an extra)."""
    if prune and since is not None:
        raise ValueError("--prune cannot be combined with --since: only some users are compared")
    context = ServiceContext.build(client=client, adapter=adapter, purpose="nothing to sync")
    conf, client, adapter = context.settings, context.client, context.adapter
    listing = fetch_remote(
        client,
        app_id=context.app_id,
        fields=adapter.fields,
        page_size=page_size,
        on_page=on_remote_page,
    )
    with listing.index:
        problems = LocalProblems()
        sync_plan = plan(
            iter_local(adapter, since=since, chunk_size=chunk_size, problems=problems),
            listing.index,
            recreate_to_change_status=conf.contacts_recreate_to_change_status,
        )
        report = SyncReport(
            plan=sync_plan,
            listing=listing,
            prune_requested=prune,
            invalid=problems.invalid,
            dry_run=dry_run,
        )
        if prune:
            report.prune_refused = prune_refusal(sync_plan, complete=listing.complete, force=force)

        if dry_run:
            return report
        scan = ListingScan(
            client, app_id=context.app_id, fields=adapter.fields, page_size=page_size
        )
        run = SyncRun(
            context,
            view=IndexView(listing.index, complete=listing.complete, fallback=scan),
            lease=user_lease(context.using),
        )
        user_items = sync_plan.user_items()
        planned = {item.user_key for item in user_items}
        items: list[UserItem | DeleteExtra] = [*user_items]
        items += [c for c in cleanup_items(chunk_size) if c.user_key not in planned]
        if prune and report.prune_refused is None:
            items += [DeleteExtra(extra) for extra in sync_plan.extras]
        with run.lease:
            report.applied = apply(items, run, progress=progress)
        report.contacts_reread = scan.contacts_read
    return report
