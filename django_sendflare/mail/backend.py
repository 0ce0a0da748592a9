"""``QueuedEmailBackend``: validate now, store in the caller's transaction, deliver later.

``EMAIL_BACKEND = "django_sendflare.backends.QueuedEmailBackend"`` queues for the settings of
``settings.SENDFLARE``. On Django 6.1 a ``MAILERS`` entry may use it too; its ``OPTIONS`` are
Sendflare settings (as for ``EmailBackend``) plus an optional ``mailer``, the alias of another
entry whose settings deliver the mail. The queue stores the alias, never a token::

    MAILERS = {
        "default": {
            "BACKEND": "django_sendflare.backends.QueuedEmailBackend",
            "OPTIONS": {"mailer": "sendflare"},
        },
        "sendflare": {
            "BACKEND": "django_sendflare.backends.EmailBackend",
            "OPTIONS": {"api_token": env("SENDFLARE_API_TOKEN")},
        },
    }

``manage.py sendflare_worker`` delivers the mail; with ``SENDFLARE["MAIL_ENQUEUE_TASK"]`` on,
each committed message also enqueues a delivery task on the project's task backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from .. import task_hooks
from ..accept import Acceptance, backend_options, backend_settings, base_arguments
from ..conf import MAILER_OPTION, SendflareSettings, get_settings
from ..exceptions import SendflareConfigurationError
from ..results import RecipientStatus
from .enqueue import store_messages
from .models import MAILER_MAX_LENGTH


class QueuedEmailBackend(BaseEmailBackend):
    """Stores messages in the mail queue; the API can neither slow nor fail the caller.

    Each message is validated exactly as ``EmailBackend`` validates it (invalid addresses,
    header injection and features the API cannot carry raise here, and nothing of the batch
    is stored), then stored with one row per recipient in the caller's database transaction.
    ``message.sendflare_status`` has every recipient ``"queued"``. ``pre_send`` is sent here,
    ``post_send`` by the worker once it has sent the message. ``fail_silently`` has nothing to
    cover: no API call is made; database errors always raise. It holds no HTTP client:
    ``open()`` and ``close()`` are Django's, doing nothing.
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        _ignore_unknown_kwargs: set[str] | None = None,
        **options: Any,
    ) -> None:
        target = options.pop(MAILER_OPTION, None)
        given = [key for key, value in options.items() if value is not None]
        if alias is None and (target or set(given) - {"username", "password"}):
            # Options of get_connection() exist only in this process: the worker, later and
            # elsewhere, could not deliver with them.
            raise SendflareConfigurationError(
                "QueuedEmailBackend takes no options outside a Django 6.1 MAILERS entry "
                f"(got {', '.join(map(repr, sorted(given or [MAILER_OPTION])))}): queued mail "
                "is delivered later, by the worker, with settings.SENDFLARE."
            )
        known = backend_options(
            options, backend="QueuedEmailBackend", alias=alias, ignored=_ignore_unknown_kwargs or ()
        )
        #: The name stored with each message: whose Sendflare settings deliver it.
        self.mailer = str(target or alias or "")
        if len(self.mailer) > MAILER_MAX_LENGTH:
            raise SendflareConfigurationError(
                f"The MAILERS alias {self.mailer[:40]!r}... is {len(self.mailer)} characters "
                f"long: the mail queue stores at most {MAILER_MAX_LENGTH}."
            )
        super().__init__(**base_arguments(alias))
        self.alias = alias
        self.fail_silently = fail_silently
        #: The settings of the entry that delivers the mail, validated now (not in the worker,
        #: after the mail is queued). From that entry alone when the ``mailer`` option names
        #: one, so that ``settings.SENDFLARE`` needs no token of its own.
        self.conf: SendflareSettings
        if target:
            self.conf = get_settings(self.mailer).require_valid()
        else:
            self.conf = backend_settings(known)
        self.acceptance = Acceptance(self, self.conf)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Queue the messages; return how many were queued (a message without recipients is not).

        Validation of the whole batch comes first: when one message is refused, none is stored.
        """
        if not email_messages:
            return 0
        # None of the batch without requests: cancelled by a pre_send receiver, or no recipients.
        batch = [a for a in self.acceptance.accept_all(email_messages) if a.requests]
        # All or nothing, in the caller's transaction: see store_messages().
        ids = store_messages(
            [accepted.requests for accepted in batch],
            mailer=self.mailer,
            on_commit=self._on_commit(),
        )
        for accepted, message_id in zip(batch, ids, strict=True):
            accepted.status.queued_id = message_id
            for request in accepted.requests:
                accepted.status.recipients[request.to] = RecipientStatus(request.to, "queued")
        return len(ids)

    def _on_commit(self) -> Callable[[int], None] | None:
        """What runs when a queued message commits (None: nothing, the worker polls)."""
        if not self.conf.mail_enqueue_task:
            return None
        return functools.partial(task_hooks.enqueue_delivery, task_hooks.MAIL)
