"""The Django email backends for the Sendflare / SendKit API.

``EMAIL_BACKEND = "django_sendflare.backends.EmailBackend"`` sends now;
``"django_sendflare.backends.QueuedEmailBackend"`` stores the mail for the worker (it lives in
:mod:`django_sendflare.mail.backend`, beside the queue, and is importable from here). The two are
siblings on Django's ``BaseEmailBackend`` and accept a message the same way
(:mod:`django_sendflare.accept`).

``EmailBackend`` may also be a Django 6.1 ``MAILERS`` entry's ``BACKEND``, with ``OPTIONS``
that override keys of ``settings.SENDFLARE`` (e.g. ``{"api_token": ..., "provider":
"sendkit"}``). Each message is sent as one ``POST /v1/send`` per recipient. The recipients of a
whole batch are sent by a bounded pool of threads, every request waiting for its slot in the
account's one rate limiter, so a slow API does not keep the batch below the rate limit.

A failed request fails what its error's ``scope`` says (see ``exceptions``): the whole rest of
the batch ("account"), the batch's other messages from the same sender, or from any address of
the same domain for 100030 ("sender"), or that message only ("message", and "rate" once its
retries are spent).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from .accept import Acceptance, backend_options, backend_settings, base_arguments
from .client import SendflareClient
from .exceptions import (
    SendflareAPIError,
    SendflareConfigurationError,
    SendflareInvalidSendingDomain,
    SendflareUnexpectedError,
)
from .mail.backend import QueuedEmailBackend
from .outcomes import attempt, unexpected
from .payload import SendRequest
from .results import MessageStatus, RecipientStatus
from .signals import post_send

__all__ = ["EmailBackend", "QueuedEmailBackend"]

logger = logging.getLogger(__name__)


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
        known = backend_options(
            options, backend="EmailBackend", alias=alias, ignored=_ignore_unknown_kwargs or ()
        )
        super().__init__(**base_arguments(alias))
        self.alias = alias
        self.fail_silently = fail_silently
        # Errors in the settings raise here, whatever fail_silently says.
        self.conf = backend_settings(known)
        self.acceptance = Acceptance(self, self.conf)
        #: The open client, or None while the backend is closed.
        self.client: SendflareClient | None = None
        self._lock = threading.RLock()

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
        for accepted in self.acceptance.accept_all(email_messages):
            statuses.append(accepted.status)
            for request in accepted.requests:
                accepted.status.recipients[request.to] = RecipientStatus(request.to, "failed")
                jobs.append((accepted.status, request))
        return statuses, jobs

    def _send_jobs(self, jobs: list[_Job]) -> None:
        batch = _Batch()
        try:
            created = self.open()
        except SendflareConfigurationError:
            raise
        except Exception as error:  # e.g. the limiter's store, at start
            batch.account_error = unexpected(error, "opening the client", self.conf.api_token)
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
        result = attempt(
            lambda: client.send(
                from_email=request.from_email,
                to=request.to,
                subject=request.subject,
                body=request.body,
            ),
            doing="sending",
            secrets=(self.conf.api_token,),
        )
        error = result.error
        if error is None:
            recipient.status = "sent"
            recipient.request_id = result.answer.request_id if result.answer else None
            return
        recipient.error = error
        batch.record(error, request.from_email)
        log = logger.error if isinstance(error, SendflareUnexpectedError) else logger.warning
        log("Sendflare: sending %r to %s failed: %s", request.subject, request.to, error)


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
