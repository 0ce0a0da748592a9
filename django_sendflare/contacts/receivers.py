"""``pre_save`` / ``post_save`` / ``post_delete`` of the user model -> the outbox.

The receivers are always connected (to ``settings.AUTH_USER_MODEL``) and decide at each save
whether to record it: only when ``SYNC_CONTACTS`` is on and ``APP_ID`` is set, so that
``override_settings`` works and a project without contacts pays one settings lookup per save.
They never call the API and never raise an API error: the API cannot slow down or fail a save.
Raw saves (``loaddata``) are not recorded; run ``manage.py sync_contacts`` after loading users.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_save

from .. import task_hooks
from ..conf import get_settings
from ..models import ContactChange
from .adapter import ContactAdapter, get_adapter, normalize_email
from .outbox import record_change
from .state import user_key

logger = logging.getLogger(__name__)

_DISPATCH = "django_sendflare.contacts"
# The instance attribute that carries the address read by pre_save to post_save.
_PREVIOUS = "_sendflare_previous_email"


def _tracked(adapter: ContactAdapter, update_fields: Any) -> bool:
    """False when the save writes only fields no contact carries (a login's last_login)."""
    if update_fields is None:
        return True
    return not set(update_fields) <= set(adapter.ignore_update_fields)


def user_pre_save(
    sender: type[Model],
    instance: Model,
    raw: bool = False,
    using: str | None = None,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    """Read the address the user has in the database, to detect an email change."""
    if raw or instance._state.adding or instance.pk is None or not get_settings().records_contacts:
        return
    adapter = get_adapter()
    field = sender.get_email_field_name()  # type: ignore[attr-defined]
    if update_fields is not None and field not in update_fields:
        return
    previous = (
        sender._default_manager.using(using)
        .filter(pk=instance.pk)
        .values_list(field, flat=True)
        .first()
    )
    if isinstance(previous, str):
        current = adapter.get_email(instance)
        if normalize_email(previous) != normalize_email(current):
            setattr(instance, _PREVIOUS, previous.strip())


def user_post_save(
    sender: type[Model],
    instance: Model,
    created: bool = False,
    raw: bool = False,
    using: str | None = None,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    """Record the save in the outbox (same transaction)."""
    previous = instance.__dict__.pop(_PREVIOUS, "")
    if raw or not get_settings().records_contacts:
        return
    adapter = get_adapter()
    if not _tracked(adapter, update_fields):
        return
    record_change(
        instance,
        str(ContactChange.Kind.SAVE),
        email=adapter.get_email(instance),
        previous_email=previous,
        using=using,
    )
    _enqueue_on_commit(instance, using)


def user_post_delete(
    sender: type[Model], instance: Model, using: str | None = None, **kwargs: Any
) -> None:
    """Record the deletion with the address the user had (the row is gone, the instance is not)."""
    if not get_settings().records_contacts:
        return
    record_change(
        instance,
        str(ContactChange.Kind.DELETE),
        email=get_adapter().get_email(instance),
        using=using,
    )
    _enqueue_on_commit(instance, using)


def _enqueue_on_commit(instance: Model, using: str | None) -> None:
    if not get_settings().enqueues_contact_task:
        return
    key = user_key(instance)

    # robust: a broken task queue must not fail the code that saved the user.
    transaction.on_commit(
        functools.partial(task_hooks.enqueue_delivery, task_hooks.CONTACTS, [key]),
        using=using,
        robust=True,
    )


def connect_receivers() -> None:
    """Connect the user-model receivers (called by the app's ``ready()``)."""
    user_model = get_user_model()
    pre_save.connect(user_pre_save, sender=user_model, dispatch_uid=f"{_DISPATCH}.pre_save")
    post_save.connect(user_post_save, sender=user_model, dispatch_uid=f"{_DISPATCH}.post_save")
    post_delete.connect(
        user_post_delete, sender=user_model, dispatch_uid=f"{_DISPATCH}.post_delete"
    )
