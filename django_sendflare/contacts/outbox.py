"""The outbox: user changes recorded in the user's transaction, delivered later.

:func:`record_change` is called by the receivers inside the transaction that saves or deletes a
user: it writes one row and makes no API call, so the API can neither slow down nor fail a save,
and a rollback leaves nothing behind.

:func:`deliver_pending` delivers the pending rows (``manage.py sync_contacts --pending``, the
``--watch`` worker, the optional task, the admin's sync action). For each user it takes a lease,
reads all the user's rows and the user's *current* state, and makes the one call that brings the
contact up to date (two for an email change: create the new address, then delete the old one).
Several workers may run at once: rows are picked with ``SELECT ... FOR UPDATE SKIP LOCKED`` where
the database supports it, and the per-user lease makes sure no two workers deliver one user.

Failures: a transient error (the API down, hanging, rate limited; the client has already retried
it) puts the rows back to pending with ``attempts + 1`` and an exponential backoff; a permanent
error, or ``CONTACTS_MAX_ATTEMPTS`` reached, parks them as failed. Failed rows are shown by the
admin, with Retry and Discard actions.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from ..client import SendflareClient, get_client
from ..conf import get_settings
from ..exceptions import SendflareAPIError, SendflareConfigurationError
from ..models import SAVE, ContactChange, ContactSyncState
from ..queue import Lease, LeaseLost, Verdict, WorkQueue
from . import state as state_mod
from .adapter import UNSUBSCRIBED, Contact, ContactAdapter, get_adapter, normalize_email

logger = logging.getLogger(__name__)


class Outcome(str, enum.Enum):
    """What delivering one user did."""

    SAVED = "saved"
    DELETED = "deleted"
    UNCHANGED = "unchanged"  # the contact already matches: no call
    SKIPPED = "skipped"  # not synced (should_sync() is False, or nothing to delete): no call
    RETRY = "retry"  # a transient failure: the rows wait for their next attempt
    FAILED = "failed"  # a permanent failure: the rows are parked as failed
    BUSY = "busy"  # another worker holds this user


@dataclass
class UserResult:
    """The result of delivering (or deleting) the contact of one user."""

    user_key: str
    outcome: Outcome
    email: str = ""
    calls: int = 0
    error: str = ""
    changes: int = 0  # outbox rows resolved or updated
    #: Renews the user's lease; called before each API call (raises LeaseLost).
    keep_alive: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.outcome not in (Outcome.RETRY, Outcome.FAILED)


@dataclass
class DeliveryReport:
    """What one :func:`deliver_pending` run did."""

    results: list[UserResult] = field(default_factory=list)
    #: Set when an account-level error (bad token, expired subscription...) stopped the run.
    account_error: str = ""

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.results)

    @property
    def failures(self) -> int:
        return self.count(Outcome.RETRY) + self.count(Outcome.FAILED)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.account_error

    def summary(self) -> str:
        parts = [f"{self.count(o)} {o.value}" for o in Outcome if self.count(o)]
        text = ", ".join(parts) or "nothing to deliver"
        return f"{text}; {self.calls} API call(s)"


def record_change(
    user: Model,
    kind: str,
    *,
    email: str,
    previous_email: str = "",
    using: str | None = None,
) -> ContactChange:
    """Record a change of ``user`` in the outbox, in the current transaction.

    Called by the receivers. ``email`` is the user's address after the change (for a deletion,
    the address the user had); ``previous_email`` the address before it, if the change altered it.
    """
    alias = using or state_mod.db_alias()
    change = ContactChange.objects.using(alias).create(
        user_key=state_mod.user_key(user),
        kind=kind,
        email=email[:254],
        previous_email=previous_email[:254],
    )
    if kind == SAVE:
        logger.debug("Sendflare: recorded a change of user %s", change.user_key)
    else:
        logger.debug("Sendflare: recorded the deletion of user %s", change.user_key)
    return change


def outbox_queue(max_attempts: int | None = None, using: str | None = None) -> WorkQueue[Any]:
    """The generic queue over the outbox rows."""
    return WorkQueue(
        ContactChange,
        max_attempts=max_attempts or get_settings().contacts_max_attempts,
        using=using or state_mod.db_alias(),
    )


def user_lease(using: str | None = None) -> Lease:
    """A per-user delivery lease holder (on the user's sync state row)."""
    return Lease(ContactSyncState, key_field="user_key", using=using or state_mod.db_alias())


def take_user_lease(lease: Lease, key: str) -> bool:
    """Take the lease of one user, creating its sync state row if needed."""
    ContactSyncState.objects.using(lease.using).get_or_create(user_key=key)
    return lease.take(key)


def deliver_pending(
    *,
    client: SendflareClient | None = None,
    adapter: ContactAdapter | None = None,
    user_keys: Iterable[str] | None = None,
    batch_size: int = 100,
    limit: int | None = None,
    include_not_due: bool = False,
    stop: threading.Event | None = None,
    max_attempts: int | None = None,
    lease_seconds: float | None = None,
) -> DeliveryReport:
    """Deliver the pending changes that are due, user by user; return what was done.

    ``user_keys`` restricts delivery to those users (the admin's sync action, the task);
    ``include_not_due`` also takes rows still waiting for their backoff. Only the rows that
    existed when the run started are taken, so that a steady stream of saves cannot keep one
    run going forever; ``limit`` caps the users delivered. ``stop`` (a threading.Event) ends
    the run after the current user.

    Each user is leased just before it is delivered and released right after: a worker holds
    one user at a time, and renews that lease before each API call, so a worker that dies
    frees its user within the lease time (45 s).
    """
    conf = get_settings()
    if not conf.app_id:
        raise SendflareConfigurationError(
            "SENDFLARE['APP_ID'] is not set: contacts cannot be delivered."
        )
    client = client or get_client(conf)
    adapter = adapter or get_adapter()
    using = state_mod.db_alias()
    queue = outbox_queue(max_attempts, using)
    report = DeliveryReport()
    keys_filter = sorted(set(user_keys)) if user_keys is not None else None

    base = queue.pending()
    if keys_filter is not None:
        base = base.filter(user_key__in=keys_filter)
    ceiling = queue.high_water_mark(base)
    if ceiling is None:
        return report
    cursor = 0
    delivered = 0
    busy: set[str] = set()
    lease = user_lease(using)
    if lease_seconds is not None:
        lease.seconds = lease_seconds
    with lease:
        while not (stop is not None and stop.is_set()) and not report.account_error:
            candidates = base.filter(id__gt=cursor, id__lte=ceiling).order_by("id")
            if not include_not_due:
                candidates = candidates.filter(next_attempt_at__lte=timezone.now())
            rows = queue.claim(candidates.only("id", "user_key"), limit=batch_size)
            if not rows:
                break
            cursor = rows[-1].pk
            for key in dict.fromkeys(row.user_key for row in rows):
                if (stop is not None and stop.is_set()) or report.account_error:
                    break
                if key in busy:
                    continue
                if not take_user_lease(lease, key):
                    busy.add(key)
                    report.results.append(UserResult(key, Outcome.BUSY))
                    continue
                try:
                    result = _deliver_leased(
                        key,
                        client=client,
                        adapter=adapter,
                        queue=queue,
                        lease=lease,
                        using=using,
                        report=report,
                    )
                finally:
                    lease.release(key)
                report.results.append(result)
                delivered += 1
                if limit is not None and delivered >= limit:
                    return report
    return report


def deliver_users(
    keys: Sequence[str], *, client: SendflareClient | None = None
) -> dict[str, UserResult]:
    """Deliver the pending changes of these users now, whether due or not (admin, task)."""
    report = deliver_pending(client=client, user_keys=keys, include_not_due=True)
    return {r.user_key: r for r in report.results}


# Delivering one user.


class _Permanent(Exception):
    """A failure that no retry can fix (an invalid mapping, a conflict)."""


def _deliver_leased(
    key: str,
    *,
    client: SendflareClient,
    adapter: ContactAdapter,
    queue: WorkQueue[Any],
    lease: Lease,
    using: str,
    report: DeliveryReport,
) -> UserResult:
    rows = list(ContactChange.objects.using(using).filter(user_key=key).order_by("id"))
    pending = [r for r in rows if r.state == ContactChange.State.PENDING]
    if not pending:
        # Delivered by another worker between our pick and our lease.
        return UserResult(key, Outcome.SKIPPED)
    result = UserResult(key, Outcome.SKIPPED, changes=len(rows), keep_alive=lease.keep_alive)
    try:
        result.outcome = _bring_up_to_date(key, rows, client, adapter, result, using)
    except LeaseLost as error:
        # We stalled past the lease and another worker took the user over: it delivers them.
        result.outcome, result.error = Outcome.BUSY, str(error)
        return result
    except SendflareAPIError as error:
        if error.account_level:
            report.account_error = str(error)
        transient = error.retryable or error.account_level
        _failed(queue, pending, str(error), transient, result)
        return result
    except (_Permanent, ValueError) as error:
        _failed(queue, pending, str(error), False, result)
        return result
    except Exception as error:
        # An adapter bug must not stop the worker: park the change and say why.
        logger.exception("Sendflare: delivering the contact of user %s failed", key)
        _failed(queue, pending, f"{type(error).__name__}: {error}", False, result)
        return result
    # Delivered: every row of the user up to now is resolved, failed ones included.
    queue.delete(r.id for r in rows)
    return result


def _failed(
    queue: WorkQueue[Any],
    rows: list[ContactChange],
    error: str,
    transient: bool,
    result: UserResult,
) -> None:
    verdict = queue.failed([r.id for r in rows], error, transient=transient)
    park = verdict is Verdict.FAILED
    result.outcome = Outcome.FAILED if park else Outcome.RETRY
    result.error = error
    log = logger.error if park else logger.warning
    log(
        "Sendflare: the contact of user %s was not delivered (attempt %d, %s): %s",
        result.user_key,
        max(r.attempts for r in rows) + 1,
        "parked as failed" if park else "will retry",
        error,
    )


def _load_user(adapter: ContactAdapter, key: str) -> Model | None:
    queryset = adapter.get_queryset()
    try:
        return queryset.filter(pk=key).first()
    except (ValueError, TypeError):
        return None  # a key that is not a valid pk of this model (the model was swapped)


def _earliest_known_address(rows: list[ContactChange]) -> str:
    """The address the contact had before these changes, when no sync state says it."""
    first = rows[0]
    return first.previous_email or first.email


def _bring_up_to_date(
    key: str,
    rows: list[ContactChange],
    client: SendflareClient,
    adapter: ContactAdapter,
    result: UserResult,
    using: str,
) -> Outcome:
    conf = get_settings()
    state = ContactSyncState.objects.using(using).get(user_key=key)
    known = state.synced_at is not None
    user = _load_user(adapter, key)

    if user is None:
        # Deleted: delete the contact at the address it has in Sendflare.
        if known:
            targets = [state.synced_email, state.orphan_email]
        else:
            targets = [_earliest_known_address(rows), state.orphan_email]
        try:
            deleted = _delete_addresses(key, targets, client, adapter, result, using, conf.app_id)
        except SendflareAPIError as error:
            if known or error.retryable or error.account_level:
                raise
            # Nothing says this user ever had a contact (it may have been created and deleted
            # before any delivery): a refusal most likely means there is none to delete.
            logger.warning(
                "Sendflare: deleting the contact of deleted user %s was refused (%s); "
                "assuming there was none",
                key,
                error,
            )
            deleted = False
        state_mod.forget(key, using=using)
        return Outcome.DELETED if deleted else Outcome.SKIPPED

    result.email = adapter.get_email(user)
    if state.do_not_sync:
        # The admin deleted the contact; a delete that failed then is finished here.
        deleted = _delete_addresses(
            key,
            [state.synced_email, state.orphan_email],
            client,
            adapter,
            result,
            using,
            conf.app_id,
        )
        return Outcome.DELETED if deleted else Outcome.SKIPPED

    if not adapter.should_sync(user):
        # Not synced (inactive, no address): the contact is left as it is; a full sync with
        # --prune removes it. An email change still in progress is finished.
        deleted = _delete_addresses(
            key, [state.orphan_email], client, adapter, result, using, conf.app_id
        )
        return Outcome.DELETED if deleted else Outcome.SKIPPED

    contact = adapter.to_contact(user)
    result.email = contact.email
    others = state_mod.users_with_address(adapter, contact.key, exclude_key=key)
    if others:
        raise _Permanent(
            f"Conflict: {contact.email} is also the address of user(s) {', '.join(others)}; "
            "neither is synced until only one has it."
        )

    remote = state.synced_email if known else _earliest_known_address(rows)
    old = remote if remote and normalize_email(remote) != contact.key else ""
    orphan = state.orphan_email if normalize_email(state.orphan_email) != contact.key else ""
    if (
        known
        and not old
        and normalize_email(state.synced_email) == contact.key
        and state.synced_data == contact.filled_data()
        and not _status_to_recreate(state, contact, conf.contacts_recreate_to_change_status)
    ):
        if orphan:
            # The new address exists already: only the old one is left to delete.
            _delete_addresses(key, [orphan], client, adapter, result, using, conf.app_id)
            return Outcome.SAVED
        return Outcome.UNCHANGED

    if old:
        # Email change: create the new address first, with the status the contact had, so that
        # a failure between the two calls leaves a contact (never none, never an orphan forever:
        # the old address is kept in orphan_email until its deletion succeeds).
        status = _status_for_move(state.remote_status if known else "", contact.status)
        _save(client, contact.email, status, contact.filled_data(), conf.app_id, result)
        state_mod.record_synced(
            key,
            email=contact.email,
            status=status,
            data=contact.filled_data(),
            orphan_email=old,
            using=using,
        )
        _delete_addresses(key, [old], client, adapter, result, using, conf.app_id)
        return Outcome.SAVED

    exists = known and normalize_email(state.synced_email) == contact.key
    if exists and _status_to_recreate(state, contact, conf.contacts_recreate_to_change_status):
        # Status can only be set on create: delete and re-create, as the setting asks.
        _delete(client, state.synced_email, conf.app_id, result)
        _save(client, contact.email, contact.status, contact.filled_data(), conf.app_id, result)
        state_mod.record_synced(
            key,
            email=contact.email,
            status=contact.status,
            data=contact.filled_data(),
            using=using,
        )
        return Outcome.SAVED

    data = contact.filled_data()
    if exists:
        # Clear the fields that had a value and have none now.
        for name, value in contact.data.items():
            if value == "" and state.synced_data.get(name):
                data[name] = ""
        if state.remote_status and state.remote_status != contact.status:
            logger.info(
                "Sendflare: the contact of user %s is %s in Sendflare but %s here; the API "
                "sets the status on create only (see CONTACTS_RECREATE_TO_CHANGE_STATUS)",
                key,
                state.remote_status,
                contact.status,
            )
    # On an update the API keeps the contact's status; send the one it has when it is known.
    status = state.remote_status if exists and state.remote_status else contact.status
    _save(client, contact.email, status, data, conf.app_id, result)
    state_mod.record_synced(
        key,
        email=contact.email,
        status=status,
        data=contact.filled_data(),
        orphan_email=orphan,
        using=using,
    )
    if orphan:
        _delete_addresses(key, [orphan], client, adapter, result, using, conf.app_id)
    return Outcome.SAVED


def _status_to_recreate(state: ContactSyncState, contact: Contact, enabled: bool) -> bool:
    return bool(enabled and state.remote_status and state.remote_status != contact.status)


def _status_for_move(remote_status: str, local_status: str) -> str:
    """The status of the new address of an email change.

    The contact's own status wins when it is known (an unsubscribe made in Sendflare is kept);
    Unsubscribed wins over Confirmed either way: a change of address never re-subscribes anyone.
    """
    if UNSUBSCRIBED in (remote_status, local_status):
        return UNSUBSCRIBED
    return remote_status or local_status


def _save(
    client: SendflareClient,
    email: str,
    status: str,
    data: dict[str, str],
    app_id: str | None,
    result: UserResult,
) -> None:
    result.keep_alive()
    result.calls += 1
    client.save_contact(email=email, status=status, data=data, app_id=app_id)


def _delete(client: SendflareClient, email: str, app_id: str | None, result: UserResult) -> None:
    result.keep_alive()
    result.calls += 1
    client.delete_contact(email=email, app_id=app_id)


def _delete_addresses(
    key: str,
    addresses: Iterable[str],
    client: SendflareClient,
    adapter: ContactAdapter,
    result: UserResult,
    using: str,
    app_id: str | None,
) -> bool:
    """Delete the contacts at these addresses, except those another synced user also has."""
    deleted = False
    done: set[str] = set()
    for address in addresses:
        email_key = normalize_email(address)
        if not email_key or email_key in done:
            continue
        done.add(email_key)
        others = state_mod.users_with_address(adapter, email_key, exclude_key=key)
        if others:
            logger.info(
                "Sendflare: kept the contact %s of user %s: user(s) %s also have it",
                address,
                key,
                ", ".join(others),
            )
        else:
            _delete(client, address.strip(), app_id, result)
            deleted = True
        state_mod.clear_synced_email(key, email_key, using=using)
        result.email = result.email or address.strip()
    return deleted


# The admin's actions on failed rows.


def retry_changes(ids: Iterable[Any]) -> int:
    """Put changes back to pending, due now, with their attempts reset; return how many."""
    return outbox_queue(1).retry(ids)


def retry_failed() -> int:
    """Put every failed change back to pending (``sync_contacts --retry-failed``)."""
    return outbox_queue(1).retry_failed()


def discard_changes(ids: Iterable[Any]) -> int:
    """Delete changes without delivering them; return how many."""
    return outbox_queue(1).discard(ids)


# The admin's actions on users.


def sync_users(
    users: Iterable[Model], *, client: SendflareClient | None = None
) -> list[UserResult]:
    """Sync these users now ("Sync to Sendflare"); return a result per user.

    Clears their do-not-sync marks (syncing a user on purpose undoes "Delete Sendflare
    contact"), records a change for each and delivers them through the outbox, so that the
    same rules apply as for any change and a worker delivering at the same time is not raced.
    """
    users = list(users)
    keys = [state_mod.user_key(u) for u in users]
    adapter = get_adapter()
    with transaction.atomic(using=state_mod.db_alias()):
        state_mod.set_do_not_sync(keys, False)
        for user in users:
            record_change(user, SAVE, email=adapter.get_email(user))
    by_key = deliver_users(keys, client=client)
    return [by_key.get(key) or UserResult(key, Outcome.BUSY) for key in keys]


def delete_user_contacts(
    users: Iterable[Model], *, client: SendflareClient | None = None
) -> list[UserResult]:
    """Delete the contacts of these users and mark them do-not-sync ("Delete Sendflare contact").

    The mark is set first, so that no sync re-creates the contact meanwhile. A deletion that
    fails on a transient error is left in the outbox, where the worker finishes it.
    """
    conf = get_settings()
    client = client or get_client(conf)
    adapter = get_adapter()
    using = state_mod.db_alias()
    lease = user_lease(using)
    results = []
    for user in users:
        key = state_mod.user_key(user)
        result = UserResult(key, Outcome.DELETED, email=adapter.get_email(user))
        results.append(result)
        state_mod.set_do_not_sync([key], True)
        if not take_user_lease(lease, key):
            result.outcome, result.error = Outcome.BUSY, "being delivered; try again shortly"
            continue
        try:
            state = ContactSyncState.objects.using(using).get(user_key=key)
            targets = [state.orphan_email, adapter.get_email(user)]
            if state.synced_at is not None:
                targets.insert(0, state.synced_email)
            targets = list(dict.fromkeys(t.strip() for t in targets if t and t.strip()))
            if not targets:
                result.outcome, result.error = Outcome.SKIPPED, "no address: nothing to delete"
            deleted = False
            for target in targets:
                try:
                    deleted |= _delete_addresses(
                        key, [target], client, adapter, result, using, conf.app_id
                    )
                except SendflareAPIError as error:
                    result.outcome, result.error = Outcome.FAILED, str(error)
                    if error.retryable or error.account_level:
                        # Leave the address in the state and a change in the outbox: the
                        # worker finishes the deletion (do-not-sync users get deletes only).
                        state_mod.record_synced(
                            key, email=target, status=None, data={}, using=using
                        )
                        record_change(user, SAVE, email=result.email)
                        result.outcome = Outcome.RETRY
                    break
            if result.outcome in (Outcome.FAILED, Outcome.RETRY):
                continue
            if targets and not deleted:
                result.outcome = Outcome.SKIPPED
                result.error = "the address is shared with another user: contact kept"
            # The pending changes are moot: the user is not synced any more.
            ContactChange.objects.using(using).filter(user_key=key).delete()
        finally:
            lease.release(key)
    return results


def contact_addresses(user: Model) -> list[str]:
    """The addresses a deletion of this user's contact would delete (for the confirmation page)."""
    adapter = get_adapter()
    state = (
        ContactSyncState.objects.using(state_mod.db_alias())
        .filter(user_key=state_mod.user_key(user))
        .first()
    )
    candidates = [adapter.get_email(user)]
    if state is not None:
        candidates += [state.synced_email, state.orphan_email]
    seen: dict[str, str] = {}
    for address in candidates:
        if address and address.strip():
            seen.setdefault(normalize_email(address), address.strip())
    return list(seen.values())
