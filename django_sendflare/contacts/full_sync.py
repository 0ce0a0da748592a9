"""The full sync: listing -> snapshots -> decide -> steps, for every user.

:func:`run_sync` (``manage.py sync_contacts``) reads the whole contact list once
(:func:`~.listing.read_listing`, into a file-backed index), streams the synced users from the
database in chunks, and asks the plan (:func:`~.plan.plan`) what :func:`~.decide.decide` would do
for each, from the listing and its sync state. The dry run prints that. Otherwise each user
with something to do is handed to a :class:`~.steps.UserRun`, which takes the user's lease,
reads its facts again and takes the steps (a user deleted meanwhile is not re-created), with
the listing as its view of Sendflare (a failed page proves nothing absent). Memory grows with
the differences, not with the users or the contacts.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models import Model

from ..client import MAX_PAGE_SIZE, SendflareClient
from ..exceptions import SendflareAPIError
from ..models import ContactSyncState
from ..queue import Lease
from . import state as state_mod
from .adapter import Contact, ContactAdapter
from .context import ServiceContext
from .listing import IndexView, ListingScan, RemoteListing, SyncAborted, read_listing
from .outbox import outbox_queue, user_lease
from .plan import Cleanup, DeleteExtra, SyncPlan, UserItem, plan, prune_refusal
from .results import CallFailed, Outcome, calling
from .snapshot import StateFacts
from .steps import UserRun

__all__ = ["SyncAborted", "SyncReport", "run_sync"]

logger = logging.getLogger(__name__)


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
            with calling(f"deleting {item.email}"):
                self.client.delete_contact(email=item.email, app_id=self.app_id)
        except (SendflareAPIError, CallFailed) as error:
            result.ok, result.error = False, str(error)
            if isinstance(error, SendflareAPIError) and error.account_level:
                self.report.account_error = str(error)
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
        result = run.delete_extra(item) if isinstance(item, DeleteExtra) else run.reconcile(item)
        report.calls += result.calls
        report.results.append(result)
        if not result.ok:
            logger.warning(
                "Sendflare: %s of contact %s failed: %s", item.action, item.email, result.error
            )
        if progress is not None:
            progress(done, len(items))
    return report


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
    client, adapter = context.client, context.adapter
    listing = read_listing(
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
            recreate_to_change_status=context.recreate_to_change_status,
            states=states_of,
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


def states_of(keys: list[str]) -> dict[str, StateFacts]:
    """The sync states of these users (one query), for the plan."""
    rows = ContactSyncState.objects.using(state_mod.db_alias()).filter(user_key__in=keys)
    return {row.user_key: StateFacts.of(row) for row in rows}
