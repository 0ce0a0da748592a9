"""What the admin (and the command) do to contacts on a person's request.

Each service works through the same :class:`~.steps.UserRun` as delivery, under the user's
lease: an admin action never races a worker, and follows the same decision (:func:`~.decide.decide`)
and rules (I1-I5).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Model

from ..client import SendflareClient
from ..models import ContactChange, ContactSyncState
from . import state as state_mod
from .adapter import get_adapter, normalize_email
from .context import ServiceContext
from .listing import ListingScan
from .outbox import deliver_users, outbox_queue, record_change, user_lease
from .results import Outcome, UserResult
from .steps import UserRun

logger = logging.getLogger(__name__)

#: Users an admin action handles while the admin waits; more are put in the outbox.
MAX_SYNC_USERS = 100


@dataclass
class SyncRequest:
    """What :func:`sync_users` did: results of the users synced now, and how many were queued."""

    results: list[UserResult] = field(default_factory=list)
    #: Users put in the outbox (above :data:`MAX_SYNC_USERS`): the worker pushes them.
    queued: int = 0


def sync_users(
    users: Iterable[Model],
    *,
    client: SendflareClient | None = None,
    max_now: int | None = None,
) -> SyncRequest:
    """Push these users' current contacts ("Sync to Sendflare"), whatever the recorded state says.

    Clears their do-not-sync marks (syncing a user on purpose undoes "Delete Sendflare
    contact"; it never re-subscribes anyone: see I1) and records a forced change for each, in
    one transaction. The first ``max_now`` (:data:`MAX_SYNC_USERS`) users are then delivered at
    once; the others stay in
    the outbox, for the worker (``sync_contacts --pending`` or ``--watch``).
    """
    users = list(users)
    keys = [state_mod.user_key(u) for u in users]
    adapter = get_adapter()
    with transaction.atomic(using=state_mod.db_alias()):
        state_mod.set_do_not_sync(keys, False)
        for user in users:
            record_change(user, str(ContactChange.Kind.SYNC), email=adapter.get_email(user))
    now = keys[: MAX_SYNC_USERS if max_now is None else max_now]
    request = SyncRequest(queued=len(keys) - len(now))
    if now:
        by_key = deliver_users(now, client=client)
        request.results = [by_key.get(key) or UserResult(key, Outcome.BUSY) for key in now]
    return request


def delete_user_contacts(
    users: Iterable[Model], *, client: SendflareClient | None = None
) -> list[UserResult]:
    """Delete the contacts of these users and mark them do-not-sync ("Delete Sendflare contact").

    The mark is set first, so that no sync re-creates the contact meanwhile (a sync running for
    the user re-reads it before its next call). Deleted: the synced address, the addresses still
    to delete, and the user's current address. When the user is busy, or the API fails on a
    transient error, a change stays in the outbox: the worker finishes the deletion.
    """
    context = ServiceContext.build(client=client, purpose="nothing to delete")
    adapter = context.adapter
    lease = user_lease(context.using)
    queue = outbox_queue(using=context.using)
    users = list(users)
    # One read of the listing for the whole action: the live status of the addresses about
    # to be deleted (I1 must hold if the user is synced again).
    view = ListingScan(context.client, app_id=context.app_id, fields=adapter.fields)
    for user in users:
        view.want(contact_addresses(user))
    results = []
    for user in users:
        key = state_mod.user_key(user)
        _mark_for_deletion(key, adapter.get_email(user))
        result = UserRun(key, context=context, lease=lease, view=view).run()
        result.email = result.email or adapter.get_email(user)
        if result.ok and result.outcome is not Outcome.BUSY:
            queue.delete(result.row_ids)  # moot: the user is not synced any more
            if result.outcome is not Outcome.DELETED:
                result.outcome = Outcome.SKIPPED
                result.error = "no contact to delete (none, or its address is shared)"
        else:
            # The worker finishes it: a do-not-sync user gets deletes only.
            record_change(user, str(ContactChange.Kind.SAVE), email=adapter.get_email(user))
        results.append(result)
    return results


def stop_syncing(user: Model) -> None:
    """Mark the user do-not-sync, without any call (e.g. from a ``contact_unsubscribed``
    receiver: a contact deleted at Sendflare is then not re-created). "Sync to Sendflare"
    clears the mark."""
    state_mod.set_do_not_sync([state_mod.user_key(user)], True)


def _mark_for_deletion(key: str, current: str) -> None:
    """Do-not-sync, and the current address noted as to delete (the worker finishes it)."""
    state_mod.set_do_not_sync([key], True)
    with transaction.atomic(using=state_mod.db_alias()):
        state = (
            ContactSyncState.objects.using(state_mod.db_alias())
            .select_for_update()
            .get(user_key=key)
        )
        known = {normalize_email(a) for a in [state.synced_email, *state.stale_emails]}
        if normalize_email(current) and normalize_email(current) not in known:
            state.stale_emails = [*state.stale_emails, current.strip()]
            state.save(update_fields=["stale_emails", "updated_at"])


def contact_addresses(user: Model) -> list[str]:
    """The addresses a deletion of this user's contact would delete (for the confirmation page)."""
    state = (
        ContactSyncState.objects.using(state_mod.db_alias())
        .filter(user_key=state_mod.user_key(user))
        .first()
    )
    candidates: list[Any] = [get_adapter().get_email(user)]
    if state is not None:
        candidates += [state.synced_email, *state.stale_emails]
    seen: dict[str, str] = {}
    for address in candidates:
        if normalize_email(address):
            seen.setdefault(normalize_email(address), address.strip())
    return list(seen.values())


def retry_changes(ids: Iterable[Any]) -> int:
    """Put changes back to pending, due now, with their attempts reset; return how many."""
    return outbox_queue().retry(ids)


def retry_failed() -> int:
    """Put every failed change back to pending (``sync_contacts --retry-failed``)."""
    return outbox_queue().retry_failed()


def discard_changes(ids: Iterable[Any]) -> int:
    """Delete changes without delivering them; return how many."""
    return outbox_queue().discard(ids)
