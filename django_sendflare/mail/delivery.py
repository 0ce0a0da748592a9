"""Delivering the due recipients of one queued message, through the client and its one limiter.

The caller (the worker, or the task) has claimed the message: no other worker delivers it
meanwhile. Each recipient is one ``POST /v1/send``, and ends this run in one state, by the
outcome of its request (:mod:`django_sendflare.outcomes`, the one mapping the immediate backend
uses too):

* accepted: ``sent``, with its requestId;
* a transient failure (the API down, a 429, a timeout before the request went out), which the
  client has already retried within its budget: back to ``queued`` (an unreachable API also
  stops the run: the other recipients are not spent on it); the generic queue
  (:class:`~django_sendflare.queue.WorkQueue`) makes the message due again after the one
  backoff (:func:`~django_sendflare.retry.backoff_delay`), and parks it after
  ``MAIL_MAX_ATTEMPTS`` such runs, its still-queued recipients then ``failed``;
* a refusal of this message or sender (scopes ``"message"`` and ``"sender"``: unknown sender,
  bad parameters, too large...): ``failed``, with the code, the message and the requestId;
* an ambiguous failure (no answer after the request went out: read timeout, dropped connection,
  a 5xx): ``unknown``. The API may have sent it: it is never re-sent automatically;
* an account error (scope ``"account"``: bad token, expired subscription, daily quota): the
  mail is not at fault, so the recipient stays ``queued`` and delivery of this account stops
  for the run (``MessageResult.stopped_by``); the worker waits before it tries again;
* an unexpected error (not the API's answer: a bug, the shared limiter's store down): the
  request may have gone out, so ``unknown``, and the run stops as for an account error.

Each request is marked ``sending`` before it goes out, so that a worker killed mid-request
leaves a trace: the next worker to claim the message turns those into ``unknown`` instead of
sending them a second time.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.mail import EmailMessage
from django.db.models import F
from django.utils import timezone

from .. import observe
from ..client import SendflareClient
from ..exceptions import SendflareAPIError
from ..outcomes import ACCOUNT_ERROR_WAIT, Outcome, attempt, outcome_of, stops_account
from ..queue import Verdict, WorkQueue
from ..records import hold_account, release_account
from ..results import MessageStatus, RecipientState, RecipientStatus
from ..signals import post_send
from .backend import QueuedEmailBackend
from .models import QueuedMessage, QueuedRecipient

logger = logging.getLogger(__name__)

State = QueuedRecipient.State

_LOST_IN_FLIGHT = (
    "The worker stopped while this request was in flight (killed, or its lease ran out): "
    "the API may have sent it. Not re-sent automatically; use Resend to send it again."
)


def settle_lost_requests(message_id: int, *, using: str) -> int:
    """Turn requests left ``sending`` by a worker that died into ``unknown``; return how many.

    Call it only while holding the message's lease: then no live worker has a request in
    flight for it, and ``sending`` means the worker that made the request is gone.
    """
    lost = (
        QueuedRecipient.objects.using(using)
        .filter(message_id=message_id, state=State.SENDING)
        .update(state=State.UNKNOWN, error=_LOST_IN_FLIGHT, updated_at=timezone.now())
    )
    if lost:
        logger.error(
            "Sendflare: queued message %s had %d request(s) in flight when its worker "
            "stopped; marked unknown, not re-sent",
            message_id,
            lost,
        )
    return lost


@dataclass
class MessageResult:
    """What one delivery run of one message did."""

    message_id: int
    sent: int = 0
    retry: int = 0
    failed: int = 0
    unknown: int = 0
    #: The error that stopped the run because every later request of the account would meet
    #: it too (scope "account": the token refused, the quota used up...; or the API
    #: unreachable); the recipients not tried stay queued.
    stopped_by: SendflareAPIError | None = None
    status: MessageStatus = field(default_factory=MessageStatus)

    @property
    def requests(self) -> int:
        return self.sent + self.retry + self.failed + self.unknown


class MessageDelivery:
    """Delivers the due recipients of one claimed message; ``run()`` returns what it did.

    ``heartbeat`` is called before each request (the worker renews its lease there: it may
    raise :class:`~django_sendflare.queue.LeaseLost`, which ends the run at once, nothing in
    flight); ``stop`` returning True ends the run before the next request, the rest queued.
    """

    def __init__(
        self,
        message: QueuedMessage,
        *,
        client: SendflareClient,
        queue: WorkQueue[QueuedMessage],
        heartbeat: Callable[[], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.message = message
        self.client = client
        self.queue = queue
        self.using = queue.using
        self.heartbeat = heartbeat
        self.stop = stop
        self.result = MessageResult(message.pk)
        self.errors: dict[int, SendflareAPIError] = {}
        self.transient_error: SendflareAPIError | None = None

    def run(self) -> MessageResult:
        self._settle_lost_requests()
        for recipient in self._queued():
            if self.result.stopped_by is not None or (self.stop and self.stop()):
                break
            if self.heartbeat is not None:
                self.heartbeat()
            if not self._start(recipient):
                continue  # discarded (or delivered) by someone else meanwhile
            result = attempt(
                functools.partial(
                    self.client.send,
                    from_email=self.message.from_email,
                    to=recipient.email,
                    subject=self.message.subject,
                    body=self.message.body,
                ),
                doing="sending",
            )
            if result.error is None:
                self._sent(recipient, result.answer.request_id if result.answer else None)
            else:
                self._failed(recipient, result.error)
        if self.result.sent:
            release_account(self.message.mailer, using=self.using)
        self._reschedule()
        self._signal()
        return self.result

    # Steps.

    def _recipients(self) -> list[QueuedRecipient]:
        return list(
            QueuedRecipient.objects.using(self.using)
            .filter(message_id=self.message.pk)
            .order_by("position")
        )

    def _settle_lost_requests(self) -> None:
        self.result.unknown += settle_lost_requests(self.message.pk, using=self.using)

    def _queued(self) -> list[QueuedRecipient]:
        return [r for r in self._recipients() if r.state == State.QUEUED]

    def _start(self, recipient: QueuedRecipient) -> bool:
        recipient.attempts += 1
        return bool(
            QueuedRecipient.objects.using(self.using)
            .filter(pk=recipient.pk, state=State.QUEUED)
            .update(state=State.SENDING, attempts=F("attempts") + 1, updated_at=timezone.now())
        )

    def _update(self, recipient: QueuedRecipient, **values: object) -> None:
        QueuedRecipient.objects.using(self.using).filter(pk=recipient.pk).update(
            **values, updated_at=timezone.now()
        )

    def _sent(self, recipient: QueuedRecipient, request_id: str | None) -> None:
        self.result.sent += 1
        observe.recipient("sent")
        self._update(
            recipient,
            state=State.SENT,
            request_id=request_id or "",
            error="",
            error_code=None,
            sent_at=timezone.now(),
        )

    def _failed(self, recipient: QueuedRecipient, error: SendflareAPIError) -> None:
        self.errors[recipient.pk] = error
        kind = outcome_of(error)
        if stops_account(error):
            # Every later request of this account would fail the same way (the token refused,
            # the API down, the limiter's store gone): this run stops after this one. (A 429
            # does not: the client has already paused the account's limiter for it.)
            self.result.stopped_by = error
        details = {
            "error": str(error)[:2000],
            "error_code": error.code,
            "request_id": error.request_id or "",
        }
        if kind is Outcome.HELD:
            self._update(recipient, state=State.QUEUED, **details)
            hold_account(self.message.mailer, error, using=self.using)
            observe.recipient("held")
            logger.error(
                "Sendflare: the account cannot send (%s); queued mail waits %.0fs",
                error,
                ACCOUNT_ERROR_WAIT,
            )
            return
        if kind is Outcome.RETRY:
            self.result.retry += 1
            observe.recipient("retry")
            self.transient_error = error
            self._update(recipient, state=State.QUEUED, **details)
            logger.warning(
                "Sendflare: sending queued message %s to %s failed (attempt %d): %s",
                self.message.pk,
                recipient.email,
                recipient.attempts,
                error,
            )
            return
        if kind is Outcome.UNKNOWN:
            self.result.unknown += 1
            state = State.UNKNOWN
        else:
            self.result.failed += 1
            state = State.FAILED
        self._update(recipient, state=state, **details)
        observe.recipient(str(state))
        logger.error(
            "Sendflare: queued message %s to %s is %s after %d attempt(s): %s",
            self.message.pk,
            recipient.email,
            state,
            recipient.attempts,
            error,
        )

    def _reschedule(self) -> None:
        """Tell the queue: done (nothing queued), retry after a backoff or park, or wait."""
        pk = self.message.pk
        queued = QueuedRecipient.objects.using(self.using).filter(message_id=pk, state=State.QUEUED)
        if not queued.exists():
            self.queue.done([pk])
        elif self.transient_error is None and self.result.stopped_by is not None:
            # The account cannot send: wait, without counting it against the message.
            self.queue.postpone([pk], ACCOUNT_ERROR_WAIT)
        elif self.transient_error is not None:
            verdict = self.queue.failed([pk], str(self.transient_error), transient=True)
            if verdict is Verdict.FAILED:
                # MAIL_MAX_ATTEMPTS runs met transient failures: these recipients are failed.
                parked = queued.update(state=State.FAILED, updated_at=timezone.now())
                self.result.retry = max(0, self.result.retry - parked)
                self.result.failed += parked
        # Otherwise the run was stopped: the rest stays due now, for the next worker.

    def _signal(self) -> None:
        """``post_send`` with the message's statuses, once per run that made a request."""
        recipients = self._recipients()
        status = MessageStatus(queued_id=self.message.pk)
        for row in recipients:
            state: RecipientState = "queued" if row.state == State.SENDING else _STATES[row.state]
            status.recipients[row.email] = RecipientStatus(
                row.email,
                state,
                request_id=row.request_id or None,
                error=self.errors.get(row.pk),
            )
        self.result.status = status
        if not self.result.requests:
            return
        message = EmailMessage(
            self.message.subject,
            self.message.body,
            self.message.from_email,
            [row.email for row in recipients],
        )
        message.sendflare_status = status  # type: ignore[attr-defined]
        # A receiver that raises must not stop the worker (the message is recorded already).
        for receiver, outcome in post_send.send_robust(
            sender=QueuedEmailBackend,
            message=message,
            status=status,
            backend=None,
            queued_message=self.message,
        ):
            if isinstance(outcome, Exception):
                logger.error(
                    "Sendflare: a post_send receiver (%r) raised %s for queued message %s",
                    receiver,
                    type(outcome).__name__,
                    self.message.pk,
                )


#: Row states -> the states of :class:`~django_sendflare.results.RecipientStatus`.
_STATES: dict[str, RecipientState] = {
    "queued": "queued",
    "sent": "sent",
    "failed": "failed",
    "unknown": "unknown",
    "discarded": "cancelled",
}
