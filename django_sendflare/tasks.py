"""Delivery tasks, for Django's tasks framework (6.x) or the django-tasks backport (5.2).

With ``SENDFLARE["CONTACTS_ENQUEUE_TASK"] = True``, a transaction that records user changes
enqueues :data:`deliver_contact_changes` when it commits. The task delivers the pending changes
of those users (and is harmless when a worker got there first). The outbox stays the source of
truth: a task that is lost, or a queue that is down, leaves the rows for ``sync_contacts
--pending`` or the ``--watch`` worker.

With ``SENDFLARE["MAIL_ENQUEUE_TASK"] = True``, each message the ``QueuedEmailBackend`` stores
enqueues :data:`deliver_queued_mail` when the caller's transaction commits. The mail queue stays
the source of truth: the task claims the message like any worker, so a task that runs twice
finds it delivered (or held by the other run), and a lost task leaves it to
``sendflare_worker``.

This module imports without the tasks framework (task runners such as Celery import every app's
``tasks`` module): :data:`deliver_contact_changes` is then None and :data:`UNAVAILABLE` says why.
``AppConfig.ready()`` imports it and installs the tasks in :mod:`django_sendflare.task_hooks`,
which the backend and the contact receivers call on commit.
"""

from __future__ import annotations

from typing import Any

import django

from .contacts.outbox import deliver_users
from .mail.drain import MailDrain


def deliver_contact_changes_now(user_keys: list[str]) -> dict[str, str]:
    """Deliver the pending contact changes of these users; return each user's outcome."""
    results = deliver_users(user_keys)
    return {key: result.outcome.value for key, result in results.items()}


def deliver_queued_mail_now(message_id: int) -> dict[str, int]:
    """Deliver the due recipients of one queued message; return the counts of what happened."""
    report = MailDrain(threads=1, message_ids=[message_id]).run()
    return {
        "sent": report.sent,
        "retry": report.retry,
        "failed": report.failed,
        "unknown": report.unknown,
    }


#: Why the tasks are not defined (None when they are).
UNAVAILABLE: str | None = None
#: The tasks (None without the tasks framework).
deliver_contact_changes: Any = None
deliver_queued_mail: Any = None

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
    try:

        @task
        def deliver_contact_changes(user_keys: list[str]) -> dict[str, str]:
            """Deliver the pending contact changes of these users (the task)."""
            return deliver_contact_changes_now(user_keys)

        @task
        def deliver_queued_mail(message_id: int) -> dict[str, int]:
            """Deliver one queued message (the task; the mail queue decides what is due)."""
            return deliver_queued_mail_now(message_id)

    except Exception as error:  # e.g. TASKS names a backend that cannot be loaded
        # Reported by the system checks when a task is wanted; never a crash at start-up.
        UNAVAILABLE = f"the tasks could not be defined ({type(error).__name__}: {error})"
        deliver_contact_changes = deliver_queued_mail = None
