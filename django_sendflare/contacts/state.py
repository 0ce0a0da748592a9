"""The per-user sync state: what is known of each contact, and do-not-sync marks."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable

from django.db.models import BigIntegerField, F, Model, Q, TextField, Value
from django.db.models.functions import Cast, Lower, Trim
from django.utils import timezone

from ..models import ContactChange, ContactSyncState
from ..queue import db_alias as queue_db_alias
from .adapter import ContactAdapter, normalize_email


def user_key(user: Model) -> str:
    """How the outbox and the sync state refer to a user: its primary key as a string."""
    return str(user.pk)


#: The database the outbox and the sync state are written to.
db_alias = functools.partial(queue_db_alias, ContactSyncState)


def do_not_sync_keys() -> set[str]:
    """The users marked do-not-sync (few: only the admin's delete action sets the mark)."""
    return set(
        ContactSyncState.objects.using(db_alias())
        .filter(do_not_sync=True)
        .values_list("user_key", flat=True)
    )


def set_do_not_sync(keys: Iterable[str], value: bool) -> int:
    """Set or clear the do-not-sync mark of users; returns how many marks changed."""
    changed = 0
    using = db_alias()
    for key in keys:
        state, created = ContactSyncState.objects.using(using).get_or_create(
            user_key=key, defaults={"do_not_sync": value}
        )
        if created:
            changed += 1
        elif state.do_not_sync != value:
            ContactSyncState.objects.using(using).filter(pk=state.pk).update(
                do_not_sync=value, updated_at=timezone.now()
            )
            changed += 1
    return changed


def users_with_address(
    adapter: ContactAdapter, email_key: str, *, exclude_key: str | None = None
) -> list[str]:
    """The keys of other users that are synced and have the (normalised) address ``email_key``.

    Two users with one address are a conflict: neither is synced, and deleting one of them
    does not delete the contact the other one still has.
    """
    return synced_keys(adapter, users_at_address(adapter, email_key, exclude_key=exclude_key))


def users_at_address(
    adapter: ContactAdapter, email_key: str, *, exclude_key: str | None = None
) -> list[Model]:
    """The other users whose address is (normalised) ``email_key``, synced or not."""
    email_key = normalize_email(email_key)
    if not email_key:
        return []
    queryset = adapter.get_queryset()
    field = queryset.model.get_email_field_name()
    candidates = queryset.annotate(_sendflare_email=Lower(Trim(F(field)))).filter(
        _sendflare_email=email_key
    )
    if exclude_key is not None:
        candidates = candidates.exclude(pk=exclude_key)
    return list(candidates)


def synced_keys(adapter: ContactAdapter, users: list[Model]) -> list[str]:
    """The keys of these users that are synced: should_sync(), and not marked do-not-sync."""
    keys = [user_key(user) for user in users if adapter.should_sync(user)]
    if not keys:
        return []
    marked = set(
        ContactSyncState.objects.using(db_alias())
        .filter(user_key__in=keys, do_not_sync=True)
        .values_list("user_key", flat=True)
    )
    return [key for key in keys if key not in marked]


def users_recording_address(email_key: str, *, exclude_key: str | None = None) -> list[str]:
    """The keys of other users whose records name the (normalised) address ``email_key``.

    Their sync state (the synced address, the addresses still to delete) or their pending
    outbox rows: each of those users' next reconciliation deals with the address (keeps it as
    its contact, or reads it and deletes it), and one is sure to come (``--pending`` for the
    rows, the full sync for the addresses still to delete). Failed rows do not count: only a
    person retries them; nor do rows a delivery has already taken into the user's state
    (``rows_adopted_through``). Any user: deleted, inactive or not; but the address of a user marked
    do-not-sync counts only when it is one that user has still to delete.
    """
    email_key = normalize_email(email_key)
    if not email_key:
        return []
    using = db_alias()
    # A substring filter in the database (JSON lists cannot be searched portably), then the
    # exact comparison here.
    states = ContactSyncState.objects.using(using).filter(
        Q(synced_email__icontains=email_key) | Q(stale_emails__icontains=email_key)
    )
    rows = (
        ContactChange.objects.using(using)
        .filter(Q(email__icontains=email_key) | Q(previous_email__icontains=email_key))
        .filter(state=ContactChange.State.PENDING)
    )
    if exclude_key is not None:
        states = states.exclude(user_key=exclude_key)
        rows = rows.exclude(user_key=exclude_key)
    keys: dict[str, None] = {}  # users that will delete the address
    current: dict[str, None] = {}  # users that have it as their address
    # One query for both (a state is marked by row id 0; its stale list comes as JSON text).
    named = (
        states.annotate(
            stale_text=Cast("stale_emails", TextField()),
            row_id=Value(0, output_field=BigIntegerField()),
        )
        .order_by()
        .values_list("user_key", "synced_email", "stale_text", "row_id")
        .union(rows.order_by().values_list("user_key", "email", "previous_email", "id"), all=True)
    )
    found: list[tuple[str, int, str, str]] = []
    for key, email, other, row_id in named:
        if row_id:
            found.append((key, row_id, email, other))
        elif email_key in {normalize_email(a) for a in json.loads(other or "[]")}:
            keys[key] = None
        elif normalize_email(email) == email_key:
            current[key] = None
    # A row a delivery has taken into its user's state no longer speaks for the user: the state
    # does (a delivery that hands the address over forgets it there, while the row waits to be
    # resolved a little longer).
    adopted = (
        dict(
            ContactSyncState.objects.using(using)
            .filter(user_key__in={key for key, *_ in found})
            .values_list("user_key", "rows_adopted_through")
        )
        if found
        else {}
    )
    for key, row_id, email, previous in found:
        if row_id <= adopted.get(key, 0):
            continue
        if normalize_email(previous) == email_key:
            keys[key] = None
        elif normalize_email(email) == email_key:
            current[key] = None
    # A user marked do-not-sync keeps no contact: its own address is no claim on the contact
    # (nothing of it would ever delete it), only the addresses it has still to delete are.
    claims = [key for key in current if key not in keys]
    marked = (
        set(
            ContactSyncState.objects.using(using)
            .filter(user_key__in=claims, do_not_sync=True)
            .values_list("user_key", flat=True)
        )
        if claims
        else set()
    )
    keys.update((key, None) for key in claims if key not in marked)
    return list(keys)
