"""Draining the mail queue: claim due messages, deliver them, several at a time.

Each of ``threads`` threads claims one due message at a time (``SELECT ... FOR UPDATE SKIP
LOCKED`` where the database has it, and a lease, through :mod:`django_sendflare.queue`),
delivers its due recipients (:class:`~.delivery.MessageDelivery`) and releases it. Every request
goes through the client of the message's mailer, and so through that account's one rate limiter:
the threads only keep ``threads`` requests in flight, so that a slow API does not hold the rate
below the limit. Several workers (processes, hosts) can drain one queue at once.

A drain takes the messages that exist when it starts (a steady stream of new mail cannot keep
it going forever); the worker starts the next one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import connections
from django.db.models import QuerySet

from ..client import SendflareClient, get_client
from ..conf import get_settings
from ..exceptions import SendflareConfigurationError
from ..queue import Lease, LeaseLost, WorkQueue
from .delivery import MessageDelivery, MessageResult
from .models import QueuedMessage

logger = logging.getLogger(__name__)


def mail_queue(using: str | None = None) -> WorkQueue[QueuedMessage]:
    """The generic queue's operations on the mail queue."""
    return WorkQueue(QueuedMessage, max_attempts=get_settings().mail_max_attempts, using=using)


@dataclass
class DrainReport:
    """What one drain did, summed over its messages."""

    messages: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    unknown: int = 0
    #: Mailers whose delivery stopped (see MessageResult.stopped_by), with the error.
    stopped: dict[str, Exception] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, result: MessageResult) -> None:
        with self._lock:
            self.messages += 1
            self.sent += result.sent
            self.retry += result.retry
            self.failed += result.failed
            self.unknown += result.unknown

    @property
    def requests(self) -> int:
        return self.sent + self.retry + self.failed + self.unknown

    @property
    def ok(self) -> bool:
        """Nothing failed for good, nothing became unknown, no account that cannot send.

        An API that is down (a transient error) is not a failure: the mail waits for it.
        """
        permanent = [e for e in self.stopped.values() if not _retryable(e)]
        return not (self.failed or self.unknown or permanent)

    def summary(self) -> str:
        text = (
            f"{self.messages} message(s): {self.sent} sent, {self.retry} to retry, "
            f"{self.failed} failed, {self.unknown} unknown"
        )
        for mailer, error in self.stopped.items():
            text += f"; mailer {mailer or 'default'!r} stopped: {error}"
        return text


def _retryable(error: Exception) -> bool:
    return bool(getattr(error, "retryable", False))


class MailDrain:
    """One pass over the due mail (``run()``), by ``threads`` threads.

    ``message_ids`` restricts it to those messages (the task); ``stop`` (an Event) ends it
    after the requests in flight.
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        stop: threading.Event | None = None,
        message_ids: Iterable[int] | None = None,
        client: SendflareClient | None = None,
    ) -> None:
        self.threads = threads or get_settings().max_concurrent_requests
        self.stop = stop or threading.Event()
        self.message_ids = list(message_ids) if message_ids is not None else None
        self.queue = mail_queue()
        self.report = DrainReport()
        self._client = client
        self._clients: dict[str, SendflareClient] = {}
        self._held: set[str] = set()  # mailers whose account met an error in this drain
        self._lock = threading.Lock()

    def run(self) -> DrainReport:
        due = self.queue.due()
        if self.message_ids is not None:
            due = due.filter(pk__in=self.message_ids)
        top = self.queue.high_water_mark(due)
        if top is None:
            return self.report
        due = due.filter(pk__lte=top)
        if self.threads == 1:
            self._drain(due)
        else:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="sendflare-mail") as pool:
                for future in [pool.submit(self._drain, due) for _ in range(self.threads)]:
                    future.result()  # a bug surfaces instead of vanishing
        return self.report

    def _drain(self, due: QuerySet[QueuedMessage]) -> None:
        try:
            with Lease(QueuedMessage, using=self.queue.using) as lease:
                while not self.stop.is_set():
                    with self._lock:
                        held = list(self._held)
                    claimed = self.queue.claim(due.exclude(mailer__in=held), limit=1, lease=lease)
                    if not claimed:
                        return
                    self._deliver(claimed[0], lease)
        finally:
            if self.threads > 1:
                connections.close_all()  # this pool thread's own connections

    def _deliver(self, message: QueuedMessage, lease: Lease) -> None:
        try:
            client = self._client_for(message.mailer)
        except SendflareConfigurationError as error:
            # The mailer's entry is gone or invalid: keep the mail, say why, try later.
            logger.error("Sendflare: queued message %s cannot be delivered: %s", message.pk, error)
            self.queue.postpone([message.pk], 300)
            lease.release(message.pk)
            with self._lock:
                self._held.add(message.mailer)
                self.report.stopped[message.mailer] = error
            return
        delivery = MessageDelivery(
            message,
            client=client,
            queue=self.queue,
            heartbeat=lease.keep_alive,
            stop=self.stop.is_set,
        )
        try:
            result = delivery.run()
        except LeaseLost:
            # Another worker took the message over (this one stalled past its lease).
            logger.warning("Sendflare: lost the lease of queued message %s", message.pk)
            return
        finally:
            lease.release(message.pk)
        self.report.add(result)
        if result.stopped_by is not None:
            with self._lock:
                self._held.add(message.mailer)
                self.report.stopped[message.mailer] = result.stopped_by

    def _client_for(self, mailer: str) -> SendflareClient:
        if self._client is not None:
            return self._client
        with self._lock:
            client = self._clients.get(mailer)
            if client is None:
                client = self._clients[mailer] = get_client(get_settings(mailer))
            return client
