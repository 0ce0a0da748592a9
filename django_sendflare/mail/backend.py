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

from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage

from ..backends import EmailBackend
from ..conf import MAILER_OPTION, SendflareSettings, get_settings
from ..exceptions import SendflareConfigurationError
from ..payload import SendRequest
from ..results import MessageStatus, RecipientStatus
from .enqueue import store_messages
from .models import MAILER_MAX_LENGTH
from .tasking import on_commit_hook


class QueuedEmailBackend(EmailBackend):
    """Stores messages in the mail queue; the API can neither slow nor fail the caller.

    Each message is validated exactly as ``EmailBackend`` validates it (invalid addresses,
    header injection and features the API cannot carry raise here, and nothing of the batch
    is stored), then stored with one row per recipient in the caller's database transaction.
    ``message.sendflare_status`` has every recipient ``"queued"``. ``pre_send`` is sent here,
    ``post_send`` by the worker once it has sent the message. ``fail_silently`` has nothing to
    cover: no API call is made; database errors always raise.
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
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
        #: The name stored with each message: whose Sendflare settings deliver it.
        self.mailer = str(target or alias or "")
        self._delivered_by_another_entry = bool(target)
        if len(self.mailer) > MAILER_MAX_LENGTH:
            raise SendflareConfigurationError(
                f"The MAILERS alias {self.mailer[:40]!r}... is {len(self.mailer)} characters "
                f"long: the mail queue stores at most {MAILER_MAX_LENGTH}."
            )
        super().__init__(fail_silently, alias=alias, **options)

    def load_conf(self, options: dict[str, Any]) -> SendflareSettings:
        """The settings of the entry that delivers the mail, validated now.

        Not in the worker, after the mail is queued; and from that entry alone when the
        ``mailer`` option names one, so that ``settings.SENDFLARE`` needs no token of its own.
        """
        if self._delivered_by_another_entry:
            return get_settings(self.mailer).require_valid()
        return super().load_conf(options)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Queue the messages; return how many were queued (a message without recipients is not).

        Validation of the whole batch comes first: when one message is refused, none is stored.
        """
        if not email_messages:
            return 0
        batch: list[tuple[MessageStatus, list[SendRequest]]] = []
        for message in email_messages:
            status, requests = self._accept(message)
            if requests:  # none: cancelled by a pre_send receiver, or no recipients
                batch.append((status, requests))

        # All or nothing, in the caller's transaction: see store_messages().
        ids = store_messages(
            [requests for _, requests in batch],
            mailer=self.mailer,
            on_commit=on_commit_hook(self.conf),
        )
        for (status, requests), message_id in zip(batch, ids, strict=True):
            status.queued_id = message_id
            for request in requests:
                status.recipients[request.to] = RecipientStatus(request.to, "queued")
        return len(ids)
