"""The one mapping from what a request did to what becomes of the work that made it.

A call to the API ends in an answer or an exception. :func:`attempt` makes the call and never
raises: an exception of ours (:class:`~.exceptions.SendflareAPIError`) is kept, any other (a
bug, the shared limiter's store down, a library's error) becomes a
:class:`~.exceptions.SendflareUnexpectedError` whose text is scrubbed of secrets, so that no raw
third-party error reaches a caller and no traceback (whose frames may hold credentials) is kept.
:func:`outcome_of` then says what the work becomes, from the error model's flags alone:

==============  ===============================================================================
``SENT``        the API accepted it
``RETRY``       not processed (the API down, a 429, a timeout before the request left): try
                again later
``FAILED``      refused (scopes ``"message"`` and ``"sender"``): trying again cannot help
``UNKNOWN``     the API may have acted although no usable answer came (a read timeout, a 5xx,
                an unexpected error after the request left): never repeated automatically
``HELD``        the account cannot send (scope ``"account"``: a bad token, a used-up quota):
                the work is not at fault and waits :data:`ACCOUNT_ERROR_WAIT`
==============  ===============================================================================

:func:`stops_account` says whether every later request of the same account would meet
the same error (scope ``"account"``, or an API that cannot be reached): a run stops there rather
than spend its other requests on it.

The immediate backend and the mail delivery use it; the contact sync is meant to (its outcomes
add a user held by another worker, which is no request's outcome).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.views.decorators.debug import sensitive_variables

from .exceptions import SendflareAPIError, SendflareUnexpectedError
from .redaction import error_text

T = TypeVar("T")

#: Seconds a worker waits, after an account error, before it tries that account again.
ACCOUNT_ERROR_WAIT = 60.0


class Outcome(str, enum.Enum):
    """What becomes of the work after one request (see the module's table)."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNKNOWN = "unknown"
    HELD = "held"


def outcome_of(error: SendflareAPIError) -> Outcome:
    """The outcome of a failed request, by the error model's flags and ``scope``."""
    if error.may_have_been_processed:
        return Outcome.UNKNOWN
    if error.retryable:
        return Outcome.RETRY  # scope "rate" (429), or "account" (the API is unreachable)
    if error.scope == "account":
        return Outcome.HELD
    return Outcome.FAILED  # scope "message" or "sender"


def stops_account(error: SendflareAPIError) -> bool:
    """Whether every later request of the same account would fail as this one did.

    Scope ``"account"``, or an API that cannot be reached (retryable, but not a 429: the client
    has already slowed the account's limiter down for that).
    """
    return error.scope == "account" or (
        outcome_of(error) is Outcome.RETRY and error.scope != "rate"
    )


def unexpected(error: BaseException, doing: str, *secrets: str) -> SendflareUnexpectedError:
    """Our error for an exception nobody expected, with no secret in its text.

    Built from the exception's type and scrubbed text (URL credentials and each of ``secrets``
    masked): the exception itself is neither chained nor kept.
    """
    text = error_text(error, *secrets)
    return SendflareUnexpectedError(f"Unexpected {type(error).__name__} while {doing}: {text}")


@dataclass(frozen=True)
class Attempt(Generic[T]):
    """One call's result: its answer, or the error it ended with, and what that means."""

    outcome: Outcome
    answer: T | None = None
    error: SendflareAPIError | None = None

    @property
    def stops_account(self) -> bool:
        """Whether every later request of this account would fail the same way."""
        return self.error is not None and stops_account(self.error)

    @classmethod
    def failed(cls, error: SendflareAPIError) -> Attempt[T]:
        """The attempt that ended with ``error``."""
        return cls(outcome_of(error), error=error)


# The error's traceback holds this frame: an error report must not print the secrets.
@sensitive_variables("secrets")
def attempt(call: Callable[[], T], *, doing: str, secrets: tuple[str, ...] = ()) -> Attempt[T]:
    """Make ``call``; return its answer (``SENT``) or the outcome of its error. Never raises.

    ``doing`` completes "Unexpected ValueError while ..." in the text of an unexpected error;
    ``secrets`` (the API token) are masked in that text.
    """
    try:
        answer = call()
    except SendflareAPIError as error:
        return Attempt.failed(error)
    except Exception as error:  # no raw third-party error may reach the caller
        return Attempt.failed(unexpected(error, doing, *secrets))
    return Attempt(Outcome.SENT, answer=answer)
