"""What happened to each message and each recipient: ``message.sendflare_status``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .exceptions import SendflareAPIError

RecipientState = Literal["sent", "failed", "cancelled", "queued", "unknown"]


@dataclass
class RecipientStatus:
    """The outcome for one recipient of one message.

    ``sent``: the API accepted it (``request_id`` is its requestId). ``failed``: it was refused,
    could not be sent, or was not tried because an earlier request of the batch showed that it
    would fail the same way (the account, or its sender, is refused: ``error.scope`` says
    which, and ``error`` is that earlier request's error). ``cancelled``: a ``pre_send``
    receiver cancelled it.
    With the ``QueuedEmailBackend``: ``queued``: stored, waiting for the worker (after a
    transient failure too); ``unknown``: the request may have been processed but no answer
    came back (never re-sent automatically).
    """

    email: str
    status: RecipientState
    request_id: str | None = None
    error: SendflareAPIError | None = None


@dataclass
class MessageStatus:
    """The outcome of one message, recipient by recipient (in to, cc, bcc order)."""

    recipients: dict[str, RecipientStatus] = field(default_factory=dict)
    #: The id of the :class:`~django_sendflare.mail.models.QueuedMessage` (queued mail only).
    queued_id: int | None = None

    @property
    def status(self) -> set[RecipientState]:
        """The distinct recipient states: ``{"sent"}`` means every recipient was sent to."""
        return {r.status for r in self.recipients.values()}

    @property
    def sent(self) -> bool:
        """True when every recipient was sent to."""
        return bool(self.recipients) and self.status == {"sent"}

    @property
    def request_ids(self) -> list[str]:
        """The API's requestIds of the accepted requests."""
        return [r.request_id for r in self.recipients.values() if r.request_id]

    @property
    def failed(self) -> list[RecipientStatus]:
        """The recipients that were not sent to (and not cancelled)."""
        return [r for r in self.recipients.values() if r.status == "failed"]
