"""The contact delivery task, for Django's tasks framework (6.x) or the django-tasks backport (5.2).

With ``SENDFLARE["CONTACTS_ENQUEUE_TASK"] = True``, a transaction that records user changes
enqueues :data:`deliver_contact_changes` when it commits. The task delivers the pending changes
of those users (and is harmless when a worker got there first). The outbox stays the source of
truth: a task that is lost, or a queue that is down, leaves the rows for ``sync_contacts
--pending`` or the ``--watch`` worker.

This module imports without the tasks framework (task runners such as Celery import every app's
``tasks`` module): :data:`deliver_contact_changes` is then None and :data:`UNAVAILABLE` says why.
"""

from __future__ import annotations

from typing import Any

import django


def deliver_contact_changes_now(user_keys: list[str]) -> dict[str, str]:
    """Deliver the pending contact changes of these users; return each user's outcome."""
    from .contacts.outbox import deliver_users

    results = deliver_users(user_keys)
    return {key: result.outcome.value for key, result in results.items()}


#: Why the task is not defined (None when it is).
UNAVAILABLE: str | None = None
#: The task (None without the tasks framework).
deliver_contact_changes: Any = None

try:
    if django.VERSION >= (6, 0):
        from django.tasks import task
    else:  # pragma: no cover - Django 5.2
        from django_tasks import task  # type: ignore[no-redef]
except ImportError as error:
    UNAVAILABLE = (
        "the tasks framework is not available (Django 6.x has it; on Django 5.2 install "
        f"django-tasks and add 'django_tasks' to INSTALLED_APPS): {error}"
    )
else:

    @task
    def deliver_contact_changes(user_keys: list[str]) -> dict[str, str]:
        """Deliver the pending contact changes of these users (the task)."""
        return deliver_contact_changes_now(user_keys)
