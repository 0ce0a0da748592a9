"""Enqueueing a delivery task when a transaction that queued work commits.

With ``SENDFLARE["MAIL_ENQUEUE_TASK"]`` on, each message the ``QueuedEmailBackend`` stores
enqueues :data:`django_sendflare.tasks.deliver_queued_mail` once the caller's transaction
commits; with ``SENDFLARE["CONTACTS_ENQUEUE_TASK"]`` on, a transaction that records user changes
enqueues :data:`django_sendflare.tasks.deliver_contact_changes`. The backend and the receivers
call :func:`enqueue_delivery` here, which knows the tasks only once ``AppConfig.ready()`` has
installed them (:func:`install`): this module imports nothing of the app, so the tasks module
may import the deliveries, which import the backend, without a cycle.

The queues stay the source of truth: a task that cannot be enqueued (no task framework, a task
backend that is down) is logged and the work stays queued for the worker; a task that runs twice
finds the work claimed or done.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

#: The task that delivers one queued message (its argument: the message's id).
MAIL = "deliver_queued_mail"
#: The task that delivers the pending contact changes of some users (a list of user keys).
CONTACTS = "deliver_contact_changes"

#: What stays undelivered, by task, when enqueueing fails (for the log line).
_LEFT_FOR = {
    MAIL: "the message stays queued for sendflare_worker",
    CONTACTS: "the changes stay in the outbox for sync_contacts --pending or --watch",
}

_tasks: dict[str, Any] = {}
_unavailable: str | None = "the tasks are not installed (AppConfig.ready() installs them)"


def install(tasks: Mapping[str, Any], unavailable: str | None) -> None:
    """Install the tasks by name (``AppConfig.ready()`` does), or why there are none."""
    global _unavailable
    _tasks.clear()
    _tasks.update({name: task for name, task in tasks.items() if task is not None})
    _unavailable = unavailable


def tasks_available() -> str | None:
    """None when the delivery tasks can be enqueued, else why not (for the system checks)."""
    return _unavailable


def enqueue_delivery(name: str, argument: object) -> None:
    """Enqueue the task ``name`` with its one argument; log, never raise (the work stays queued)."""
    try:
        task = _tasks.get(name)
        if task is None:
            raise RuntimeError(_unavailable or f"no task {name!r}")
        task.enqueue(argument)
    except Exception:
        logger.exception(
            "Sendflare: could not enqueue the task %s(%r); %s",
            name,
            argument,
            _LEFT_FOR.get(name, "the work stays queued"),
        )
