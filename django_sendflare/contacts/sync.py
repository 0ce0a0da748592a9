"""The full sync: read every remote contact, diff them with the users, call only for differences.

Three steps, so that the diff can be tested without a server:

* :func:`fetch_remote` reads the contact list page by page (I/O);
* :func:`plan` compares the users' contacts with the remote ones. It is pure: creates, updates,
  re-creates, remote contacts without a user (``extras``), conflicts and status differences;
* :func:`apply` makes the calls, one per item, and returns a result per item.

:func:`run_sync` strings them together for ``manage.py sync_contacts``. Users are streamed from
the database in chunks and compared against the remote list kept in a temporary file
(:class:`RemoteIndex`): memory grows with the differences, not with the users or the contacts.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Model

from ..client import MAX_PAGE_SIZE, SendflareClient, get_client
from ..conf import get_settings
from ..exceptions import SendflareAPIError, SendflareConfigurationError
from . import state as state_mod
from .adapter import Contact, ContactAdapter, format_value, get_adapter, normalize_email
from .remote_index import RemoteIndex

logger = logging.getLogger(__name__)

#: ``--prune`` refuses to delete more than this share of the remote list without ``--force``.
PRUNE_MAX_FRACTION = 0.10
#: Stop reading the list after this many pages in a row failed (the API is down).
MAX_CONSECUTIVE_PAGE_FAILURES = 3

_ISO_DATE = re.compile(r"^\d{4}-(\d{2})-(\d{2})")


def comparable(name: str, value: Any) -> str:
    """A remote or local data value in the form both sides are compared in.

    The API documents ``birthday`` as DD/MM yet its example returns 1990-01-01: both mean the
    same day of the year. Numbers come back as numbers (``vipLevel``): compared as text.
    """
    text = format_value(name, value)
    if name == "birthday":
        match = _ISO_DATE.match(text)
        if match:
            return f"{match.group(2)}/{match.group(1)}"
    return text


@dataclass(frozen=True, slots=True)
class RemoteContact:
    """The parts of a remote contact a sync compares: address, status, the managed data fields."""

    email: str
    status: str
    data: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_api(cls, entry: Mapping[str, Any], fields: Iterable[str]) -> RemoteContact:
        """Keep only what is compared (a list of 100,000 contacts stays small)."""
        data = tuple((name, comparable(name, entry.get(name))) for name in fields)
        status = entry.get("status")
        return cls(
            email=str(entry.get("emailAddress", "")).strip(),
            status=status if isinstance(status, str) else "",
            data=data,
        )

    @property
    def key(self) -> str:
        return normalize_email(self.email)

    def value(self, name: str) -> str:
        for field_name, value in self.data:
            if field_name == name:
                return value
        return ""


@dataclass(frozen=True)
class Create:
    """A user without a contact: create it (with the user's status)."""

    user_key: str
    contact: Contact

    def payload(self) -> dict[str, str]:
        return self.contact.filled_data()


@dataclass(frozen=True)
class Update:
    """A contact whose data differs: save the user's data (the status cannot change)."""

    user_key: str
    contact: Contact
    remote: RemoteContact
    #: (field, remote value, local value) of each field that differs.
    changes: tuple[tuple[str, str, str], ...]

    def payload(self) -> dict[str, str]:
        data = self.contact.filled_data()
        for name, _old, new in self.changes:
            if new == "":
                data[name] = ""  # clear a value the user no longer has
        return data


@dataclass(frozen=True)
class Recreate:
    """A contact whose status differs, with CONTACTS_RECREATE_TO_CHANGE_STATUS: delete, create."""

    user_key: str
    contact: Contact
    remote: RemoteContact


@dataclass(frozen=True)
class StatusDifference:
    """A contact whose status in Sendflare is not the one the adapter gives the user."""

    user_key: str
    email: str
    remote_status: str
    local_status: str


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
            if status_differs and recreate_to_change_status:
                recreates[key] = Recreate(user_key, contact, existing)
                new_seen[key] = (user_key, "recreate")
                continue
            if status_differs:
                differences[key] = StatusDifference(
                    user_key, existing.email, existing.status, contact.status
                )
            changes = _changes(contact, existing)
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


def _changes(contact: Contact, existing: RemoteContact) -> tuple[tuple[str, str, str], ...]:
    """(field, remote value, local value) of each data field that differs."""
    return tuple(
        (name, existing.value(name), value)
        for name, value in contact.data.items()
        if comparable(name, value) != existing.value(name)
    )


def prune_refusal(
    sync_plan: SyncPlan, *, complete: bool, force: bool, max_fraction: float = PRUNE_MAX_FRACTION
) -> str | None:
    """Why the extras must not be deleted, or None when pruning may go ahead."""
    if not sync_plan.extras:
        return None
    if not complete:
        return "some pages of the contact list could not be read, so nothing is pruned"
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
    pages_read: int = 0
    failed_pages: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed_pages


def fetch_remote(
    client: SendflareClient,
    *,
    app_id: str,
    fields: Iterable[str],
    page_size: int = MAX_PAGE_SIZE,
    on_page: Callable[[int, int | None], None] | None = None,
) -> RemoteListing:
    """Read every page of the contact list (the client retries each page on transient errors).

    A page that still fails is skipped and noted: what is missing then is neither pruned nor
    trusted (its users are saved, which is harmless: a save of an existing contact updates it).
    Raises :class:`SyncAborted` when the first page, or several pages in a row, fail, or on an
    account-level error: then nothing can be compared.
    """
    listing = RemoteListing()
    try:
        _read_pages(client, listing, app_id, tuple(fields), page_size, on_page)
    except BaseException:
        listing.index.close()
        raise
    return listing


def _read_pages(
    client: SendflareClient,
    listing: RemoteListing,
    app_id: str,
    fields: tuple[str, ...],
    page_size: int,
    on_page: Callable[[int, int | None], None] | None,
) -> None:
    page = 1
    total: int | None = None
    consecutive = 0
    while True:
        try:
            result = client.list_contacts(app_id=app_id, page=page, page_size=page_size)
        except SendflareAPIError as error:
            listing.failed_pages.append(page)
            listing.errors.append(f"page {page}: {error}")
            consecutive += 1
            logger.warning("Sendflare: page %d of the contact list failed: %s", page, error)
            if error.account_level or (page == 1 and total is None):
                raise SyncAborted(f"The contact list cannot be read: {error}") from error
            if consecutive >= MAX_CONSECUTIVE_PAGE_FAILURES:
                raise SyncAborted(
                    f"{consecutive} pages of the contact list failed in a row: {error}"
                ) from error
            if total is not None and page >= -(-total // page_size):
                return
            page += 1
            continue
        consecutive = 0
        listing.pages_read += 1
        if result.total is not None:
            total = result.total
        listing.index.add(RemoteContact.from_api(entry, fields) for entry in result.contacts)
        if on_page is not None:
            on_page(listing.index.count, total)
        if not result.contacts or len(result.contacts) < page_size:
            return
        if total is not None and page * page_size >= total:
            return
        page += 1


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


# Carrying it out.


@dataclass
class ItemResult:
    """The result of one action of a plan."""

    action: str  # create, update, recreate, delete
    email: str
    user_key: str = ""
    ok: bool = True
    error: str = ""
    skipped: bool = False  # not attempted (an account-level error stopped the run)


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
        return sum(1 for r in self.results if r.action == action and r.ok is ok and not r.skipped)


def apply(
    sync_plan: SyncPlan,
    client: SendflareClient,
    *,
    app_id: str,
    prune: bool = False,
    record_state: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> ApplyReport:
    """Make the calls of ``sync_plan``: creates, updates, re-creates and (with ``prune``) deletes.

    Each item is tried once more by the client on a transient error; a failure is reported and
    the run goes on, except after an account-level error (bad token, expired subscription),
    which stops it: every later call would fail the same way.
    """
    report = ApplyReport()
    items: list[tuple[str, Any]] = [("create", c) for c in sync_plan.creates]
    items += [("update", u) for u in sync_plan.updates]
    items += [("recreate", r) for r in sync_plan.recreates]
    if prune:
        items += [("delete", e) for e in sync_plan.extras]
    total = len(items)
    for done, (action, item) in enumerate(items, start=1):
        email = item.email if action == "delete" else item.contact.email
        result = ItemResult(action, email, "" if action == "delete" else item.user_key)
        report.results.append(result)
        if report.account_error:
            result.ok, result.skipped, result.error = False, True, report.account_error
            continue
        try:
            _apply_one(client, action, item, app_id, report)
        except SendflareAPIError as error:
            result.ok, result.error = False, str(error)
            if error.account_level:
                report.account_error = str(error)
            logger.warning("Sendflare: %s of contact %s failed: %s", action, email, error)
        except ValueError as error:
            result.ok, result.error = False, str(error)
        else:
            if record_state and action != "delete":
                _record(action, item)
        if progress is not None:
            progress(done, total)
    return report


def _apply_one(
    client: SendflareClient, action: str, item: Any, app_id: str, report: ApplyReport
) -> None:
    if action == "create":
        report.calls += 1
        client.save_contact(
            email=item.contact.email,
            status=item.contact.status,
            data=item.payload(),
            app_id=app_id,
        )
    elif action == "update":
        report.calls += 1
        # The status applies on create only; send the contact's own, so nothing can flip it.
        client.save_contact(
            email=item.remote.email,
            status=item.remote.status or item.contact.status,
            data=item.payload(),
            app_id=app_id,
        )
    elif action == "recreate":
        report.calls += 1
        client.delete_contact(email=item.remote.email, app_id=app_id)
        report.calls += 1
        client.save_contact(
            email=item.contact.email,
            status=item.contact.status,
            data=item.contact.filled_data(),
            app_id=app_id,
        )
    else:
        report.calls += 1
        client.delete_contact(email=item.email, app_id=app_id)


def _record(action: str, item: Any) -> None:
    if action == "update":
        email, status = item.remote.email, item.remote.status
    else:
        email, status = item.contact.email, item.contact.status
    state_mod.record_synced(
        item.user_key, email=email, status=status, data=item.contact.filled_data()
    )


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
    conf = get_settings()
    if not conf.app_id:
        raise SendflareConfigurationError("SENDFLARE['APP_ID'] is not set: nothing to sync.")
    client = client or get_client(conf)
    adapter = adapter or get_adapter()
    listing = fetch_remote(
        client,
        app_id=conf.app_id,
        fields=adapter.fields,
        page_size=page_size,
        on_page=on_remote_page,
    )
    problems = LocalProblems()
    try:
        sync_plan = plan(
            iter_local(adapter, since=since, chunk_size=chunk_size, problems=problems),
            listing.index,
            recreate_to_change_status=conf.contacts_recreate_to_change_status,
        )
    finally:
        # The remote list is no longer needed: the plan keeps what it acts on.
        listing.index.close()
    report = SyncReport(
        plan=sync_plan,
        listing=listing,
        prune_requested=prune,
        invalid=problems.invalid,
        dry_run=dry_run,
    )
    if prune:
        report.prune_refused = prune_refusal(sync_plan, complete=listing.complete, force=force)
    if not dry_run:
        state_mod.record_remote_status(
            (d.user_key, d.remote_status) for d in sync_plan.status_differences
        )
        report.applied = apply(
            sync_plan,
            client,
            app_id=conf.app_id,
            prune=prune and report.prune_refused is None,
            progress=progress,
        )
    return report
