"""The Django email backend for the Sendflare / SendKit API.

``EMAIL_BACKEND = "django_sendflare.backends.EmailBackend"``, or on Django 6.1 a ``MAILERS``
entry with that ``BACKEND`` and ``OPTIONS`` that override keys of ``settings.SENDFLARE``
(e.g. ``{"api_token": ..., "provider": "sendkit"}``).

Each message is sent as one ``POST /v1/send`` per recipient. The recipients of a whole batch
are sent by a bounded pool of threads, every request waiting for its slot in the account's one
rate limiter, so a slow API does not keep the batch below the rate limit.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.encoding import force_str

from .client import SendflareClient, get_client
from .conf import DEFAULTS, load_settings
from .exceptions import SendflareAPIError, SendflareConfigurationError
from .payload import SendRequest, build_requests
from .results import MessageStatus, RecipientStatus
from .signals import CancelSend, post_send, pre_send

logger = logging.getLogger(__name__)

# Django 6.1's BaseEmailBackend takes the MAILERS alias and reports unknown OPTIONS itself.
_BASE_TAKES_ALIAS = django.VERSION >= (6, 1)


class EmailBackend(BaseEmailBackend):
    """Sends Django email messages through the Sendflare API.

    ``fail_silently`` covers errors of the API (refusals, outages, timeouts) only. Invalid
    settings, invalid addresses and features the API cannot carry always raise, before any
    request of the batch is made.
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        _ignore_unknown_kwargs: set[str] | None = None,
        **options: Any,
    ) -> None:
        ignored = _ignore_unknown_kwargs or set()
        # Django's send_mail() passes its auth_user/auth_password along as these, None or not.
        for smtp_option in ("username", "password"):
            if options.pop(smtp_option, None) is not None and smtp_option not in ignored:
                raise SendflareConfigurationError(
                    f"The Sendflare backend takes no {smtp_option!r} (send_mail's auth_user / "
                    "auth_password): it authenticates with SENDFLARE['API_TOKEN'], or an "
                    "'api_token' option."
                )
        unknown = [key for key in options if key.upper() not in DEFAULTS and key not in ignored]
        if unknown:
            close = difflib.get_close_matches(unknown[0].upper(), DEFAULTS, n=1)
            mailer = f" (mailer {alias!r})" if alias else ""
            suggestion = f" Did you mean {close[0].lower()!r}?" if close else ""
            raise SendflareConfigurationError(
                f"Unknown option(s) {', '.join(map(repr, unknown))} for "
                f"django_sendflare.backends.EmailBackend{mailer}.{suggestion}"
            )
        if _BASE_TAKES_ALIAS:
            super().__init__(alias=alias)
        else:
            super().__init__()
        self.alias = alias
        self.fail_silently = fail_silently
        known = {key: value for key, value in options.items() if key.upper() in DEFAULTS}
        # Errors in the settings raise here, whatever fail_silently says.
        self.conf = load_settings(known)
        self.client: SendflareClient = get_client(self.conf)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send the messages; return how many were sent to every one of their recipients.

        Every message gets ``message.sendflare_status``. When a recipient fails and
        ``fail_silently`` is off, the batch is finished first (nothing already under way is
        dropped), then the first error is raised with ``error.message_statuses`` listing the
        outcome of every message of the batch.
        """
        if not email_messages:
            return 0
        statuses: list[MessageStatus] = []
        jobs: list[tuple[MessageStatus, SendRequest]] = []
        for message in email_messages:
            status = MessageStatus()
            statuses.append(status)
            message.sendflare_status = status  # type: ignore[attr-defined]
            try:
                pre_send.send(sender=type(self), message=message, backend=self)
            except CancelSend:
                for address in message.recipients():
                    status.recipients[force_str(address)] = RecipientStatus(
                        force_str(address), "cancelled"
                    )
                continue
            for request in build_requests(
                message, ignore_unsupported=self.conf.ignore_unsupported_features
            ):
                status.recipients[request.to] = RecipientStatus(request.to, "failed")
                jobs.append((status, request))

        self._send_all(jobs)

        for message, status in zip(email_messages, statuses, strict=True):
            post_send.send(sender=type(self), message=message, status=status, backend=self)
        sent = sum(1 for status in statuses if status.sent)
        errors = [
            r.error
            for status in statuses
            for r in status.recipients.values()
            if r.status == "failed" and r.error is not None
        ]
        if errors and not self.fail_silently:
            first = errors[0]
            first.message_statuses = statuses
            raise first
        return sent

    def _send_all(self, jobs: list[tuple[MessageStatus, SendRequest]]) -> None:
        batch = _Batch()
        if len(jobs) <= 1 or self.conf.max_concurrent_requests == 1:
            for status, request in jobs:
                self._send_one(batch, status, request)
            return
        workers = min(len(jobs), self.conf.max_concurrent_requests)
        with ThreadPoolExecutor(workers, thread_name_prefix="sendflare") as pool:
            # Consume the results so that a bug in _send_one surfaces instead of vanishing.
            for _ in pool.map(lambda job: self._send_one(batch, *job), jobs):
                pass

    def _send_one(self, batch: _Batch, status: MessageStatus, request: SendRequest) -> None:
        recipient = status.recipients[request.to]
        if batch.account_error is not None:
            # An earlier request showed the account cannot send: do not spend requests on it.
            recipient.error = batch.account_error
            return
        try:
            response = self.client.send(
                from_email=request.from_email,
                to=request.to,
                subject=request.subject,
                body=request.body,
            )
        except SendflareAPIError as error:
            recipient.error = error
            if error.account_level:
                batch.account_error = error
            logger.warning(
                "Sendflare: sending %r to %s failed: %s", request.subject, request.to, error
            )
            return
        recipient.status = "sent"
        recipient.request_id = response.request_id


class _Batch:
    """State shared by the workers of one send_messages() call."""

    # The first account-level error (auth, quota, ...): later recipients are not tried.
    account_error: SendflareAPIError | None = None


def __getattr__(name: str) -> Any:
    # QueuedEmailBackend (django_sendflare/mail/backend.py) subclasses EmailBackend: imported
    # on first use, so that neither module imports the other at import time.
    if name == "QueuedEmailBackend":
        from .mail.backend import QueuedEmailBackend

        return QueuedEmailBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
