"""The Django email backend for the Sendflare / SendKit API.

``EMAIL_BACKEND = "django_sendflare.backends.EmailBackend"``, or on Django 6.1 a ``MAILERS``
entry with that ``BACKEND`` and ``OPTIONS`` that override keys of ``settings.SENDFLARE``
(e.g. ``{"api_token": ..., "provider": "sendkit"}``).

Each message is sent as one ``POST /v1/send`` per recipient. The recipients of a whole batch
are sent by a bounded pool of threads, every request waiting for its slot in the account's one
rate limiter, so a slow API does not keep the batch below the rate limit.

A failed request fails what its error's ``scope`` says (see ``exceptions``): the whole rest of
the batch ("account"), the batch's other messages from the same sender, or from any address of
the same domain for 100030 ("sender"), or that message only ("message", and "rate" once its
retries are spent).
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.encoding import force_str

from .client import SendflareClient
from .conf import DEFAULTS, SendflareSettings, get_settings, load_settings
from .exceptions import (
    SendflareAPIError,
    SendflareConfigurationError,
    SendflareInvalidSendingDomain,
    SendflareUnexpectedError,
)
from .payload import SendRequest, build_requests
from .redaction import error_text
from .results import MessageStatus, RecipientStatus
from .signals import CancelSend, post_send, pre_send

logger = logging.getLogger(__name__)

# Django 6.1's BaseEmailBackend takes the MAILERS alias and reports unknown OPTIONS itself.
_BASE_TAKES_ALIAS = django.VERSION >= (6, 1)


class EmailBackend(BaseEmailBackend):
    """Sends Django email messages through the Sendflare API.

    ``fail_silently`` covers every error of sending (refusals, outages, timeouts, a failing
    limiter): they are all :class:`~django_sendflare.exceptions.SendflareAPIError`. Invalid
    settings (:class:`~django_sendflare.exceptions.SendflareConfigurationError`) and input the
    API cannot take (:class:`~django_sendflare.exceptions.SendflareInvalidInput`: header
    injection, invalid addresses, unencodable text, unsupported features) always raise, before
    any request of the batch is made.

    The backend owns its client (a pooled HTTP session) through Django's ``open()`` /
    ``close()`` contract: ``send_messages`` opens and closes it unless it is already open, so
    ``with get_connection() as connection:`` reuses one session for several calls.
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
        self.conf = self.load_conf(known)
        #: The open client, or None while the backend is closed.
        self.client: SendflareClient | None = None
        self._lock = threading.RLock()

    def load_conf(self, options: dict[str, Any]) -> SendflareSettings:
        """The settings this backend works with: ``settings.SENDFLARE`` under ``options``."""
        # Without options the cached settings serve: send_mail() builds a backend per call, and
        # validating the whole table each time was a sixth of the cost of queueing a message.
        return load_settings(options) if options else get_settings().require_valid()

    def open(self) -> bool:
        """Create the client (its pooled session) unless one is open. True when it created one."""
        with self._lock:
            if self.client is not None:
                return False
            self.client = SendflareClient.from_settings(self.conf)
            return True

    def close(self) -> None:
        """Release the client's connections; a later send opens a new one."""
        with self._lock:
            client, self.client = self.client, None
        if client is not None:
            client.close()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send the messages; return how many were sent to every one of their recipients.

        Every message gets ``message.sendflare_status``. The whole batch is validated before
        the first request. When a recipient fails and ``fail_silently`` is off, the batch is
        finished first (nothing already under way is dropped), then the first error is raised
        with ``error.message_statuses`` listing the outcome of every message of the batch.
        """
        if not email_messages:
            return 0
        statuses, jobs = self._prepare(email_messages)
        if jobs:
            self._send_jobs(jobs)
        for message, status in zip(email_messages, statuses, strict=True):
            post_send.send(sender=type(self), message=message, status=status, backend=self)
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
        return sum(1 for status in statuses if status.sent)

    def _prepare(
        self, email_messages: Sequence[EmailMessage]
    ) -> tuple[list[MessageStatus], list[_Job]]:
        """pre_send, then one job per recipient; raises on invalid input before any I/O."""
        statuses: list[MessageStatus] = []
        jobs: list[_Job] = []
        for message in email_messages:
            status, requests = self._accept(message)
            statuses.append(status)
            for request in requests:
                status.recipients[request.to] = RecipientStatus(request.to, "failed")
                jobs.append((status, request))
        return statuses, jobs

    def _accept(self, message: EmailMessage) -> tuple[MessageStatus, list[SendRequest]]:
        """Give the message its status, send ``pre_send``, and validate it.

        Returns its requests, one per recipient (none when a receiver cancelled it); raises
        on input the API cannot take. ``QueuedEmailBackend`` accepts messages the same way.
        """
        status = MessageStatus()
        message.sendflare_status = status  # type: ignore[attr-defined]
        try:
            pre_send.send(sender=type(self), message=message, backend=self)
        except CancelSend:
            for address in message.recipients():
                status.recipients[force_str(address)] = RecipientStatus(
                    force_str(address), "cancelled"
                )
            return status, []
        requests = build_requests(message, ignore_unsupported=self.conf.ignore_unsupported_features)
        return status, requests

    def _send_jobs(self, jobs: list[_Job]) -> None:
        batch = _Batch()
        try:
            created = self.open()
        except SendflareConfigurationError:
            raise
        except Exception as error:  # e.g. the limiter's store, at start
            batch.account_error = self._unexpected(error, "opening the client")
            logger.error("Sendflare: %s", batch.account_error)
            created = False
        client = self.client
        if client is not None and batch.account_error is None:
            try:
                self._run(batch, jobs, client)
            finally:
                if created:
                    self.close()
        for status, request in jobs:
            recipient = status.recipients[request.to]
            if recipient.status == "failed" and recipient.error is None:
                recipient.error = batch.account_error

    def _run(self, batch: _Batch, jobs: list[_Job], client: SendflareClient) -> None:
        if len(jobs) <= 1 or self.conf.max_concurrent_requests == 1:
            for status, request in jobs:
                self._send_one(batch, client, status, request)
            return
        workers = min(len(jobs), self.conf.max_concurrent_requests)
        with ThreadPoolExecutor(workers, thread_name_prefix="sendflare") as pool:
            # Consume the results so that a bug in _send_one surfaces instead of vanishing.
            for _ in pool.map(lambda job: self._send_one(batch, client, *job), jobs):
                pass

    def _send_one(
        self, batch: _Batch, client: SendflareClient, status: MessageStatus, request: SendRequest
    ) -> None:
        recipient = status.recipients[request.to]
        earlier = batch.error_for(request.from_email)
        if earlier is not None:
            # An earlier request showed that this request would fail the same way.
            recipient.error = earlier
            return
        error: SendflareAPIError
        try:
            response = client.send(
                from_email=request.from_email,
                to=request.to,
                subject=request.subject,
                body=request.body,
            )
        except SendflareAPIError as api_error:
            error = api_error
        except Exception as unexpected:  # no raw third-party error may reach the caller
            error = self._unexpected(unexpected, "sending")
        else:
            recipient.status = "sent"
            recipient.request_id = response.request_id
            return
        recipient.error = error
        batch.record(error, request.from_email)
        log = logger.error if isinstance(error, SendflareUnexpectedError) else logger.warning
        log("Sendflare: sending %r to %s failed: %s", request.subject, request.to, error)

    def _unexpected(self, error: Exception, doing: str) -> SendflareUnexpectedError:
        """A SendflareError for an exception nobody expected, with no secret in its text.

        Built from the exception's type and scrubbed text only: the exception itself (and its
        traceback, whose frames may hold credentials) is neither chained nor logged.
        """
        text = error_text(error, self.conf.api_token)
        return SendflareUnexpectedError(f"Unexpected {type(error).__name__} while {doing}: {text}")


#: One recipient's request and the status it reports to.
_Job = tuple[MessageStatus, SendRequest]


class _Batch:
    """What the requests of one send_messages() call learned, shared by its workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: The first error of scope "account": later requests are not made.
        self.account_error: SendflareAPIError | None = None
        #: Errors of scope "sender", by sender address or by "@domain" (lower-cased).
        self.sender_errors: dict[str, SendflareAPIError] = {}

    def record(self, error: SendflareAPIError, sender: str) -> None:
        """Remember an error that condemns more than its own request."""
        address, domain = _sender_keys(sender)
        with self._lock:
            if error.scope == "account" and self.account_error is None:
                self.account_error = error
            elif error.scope == "sender":
                # A refused sending domain refuses every address of that domain.
                key = domain if isinstance(error, SendflareInvalidSendingDomain) else address
                self.sender_errors.setdefault(key, error)

    def error_for(self, sender: str) -> SendflareAPIError | None:
        """The earlier error that already condemns a request from ``sender``, if any."""
        address, domain = _sender_keys(sender)
        with self._lock:
            return (
                self.account_error
                or self.sender_errors.get(address)
                or self.sender_errors.get(domain)
            )


def _sender_keys(sender: str) -> tuple[str, str]:
    sender = sender.lower()
    return sender, "@" + sender.rpartition("@")[2]


def __getattr__(name: str) -> Any:
    # QueuedEmailBackend (django_sendflare/mail/backend.py) subclasses EmailBackend: imported
    # on first use, so that neither module imports the other at import time.
    if name == "QueuedEmailBackend":
        from .mail.backend import QueuedEmailBackend

        return QueuedEmailBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
